// CRI log lines (containerd, Kubernetes nodes): records parsed, `P` records joined with the next
// ones of the same stream while the other stream interleaves, and the shipper in-process on
// such files: every real event once and byte-identical, checkpoints only where no joined line
// is open, a rotation of the CRI file, and the symbolic links of /var/log/containers.
import { afterAll, describe, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import {
  appendFileSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { parseConfig } from "../../src/config/load.ts";
import { setupLogging } from "../../src/log.ts";
import { readCheckpoints } from "../../src/logship/checkpoint.ts";
import { CriJoiner } from "../../src/logship/cri.ts";
import { criEvent, parseLine } from "../../src/logship/parse.ts";
import { shipLogs } from "../../src/logship/ship.ts";
import { Pseudonymizer } from "../../src/privacy/pseudonym.ts";
import {
  asBytes,
  criRecord,
  criRecords,
  fixtureEvents,
  type LogShipSetup,
  logShipSetup as newSetup,
  prefixed,
  recordLines,
  seededRandom,
  shippedLines,
  shippedObjects,
  writerEvent,
} from "../support/log-writer.ts";

setupLogging({ level: "error" });

const setups: LogShipSetup[] = [];
/** A log-ship set-up on a temporary directory, removed after the tests. */
function logShipSetup(options: Parameters<typeof newSetup>[0] = {}): LogShipSetup {
  const setup = newSetup(options);
  setups.push(setup);
  return setup;
}
afterAll(() => {
  for (const setup of setups) rmSync(setup.dir, { recursive: true, force: true });
});

const bytes = (s: string) => Buffer.from(s);
const text = (b: Uint8Array | null) => (b === null ? null : Buffer.from(b).toString());

function ship(setup: LogShipSetup) {
  return shipLogs(setup.config, { retryMs: 5, pollMs: 50 });
}

/** Every event of the fixture (and a long unicode one) as CRI records of both streams. */
function criFile(seed: number): { records: Buffer[]; wanted: string[] } {
  const big = `{"name": "big", "time": "2024-03-01T10:00:00.000000+00:00", "data": "${"Ωμέγα ✓ 😀 ".repeat(3000)}"}`;
  const source = [...fixtureEvents(), big];
  const random = seededRandom(seed);
  const records = source.flatMap((event, i) =>
    criRecords(prefixed(event, i), i % 2 === 0 ? "stdout" : "stderr", random),
  );
  return { records, wanted: source.map(asBytes) };
}

describe("CRI records", () => {
  test("time, stream, tag and text; the text's bytes unchanged", () => {
    const line = bytes("2024-03-01T10:00:00.123456789Z stderr P 2024-03-01 INFO [tracking] {");
    for (const format of ["cri", "auto"] as const) {
      const parsed = parseLine(line, format);
      expect(parsed.kind).toBe("cri");
      if (parsed.kind !== "cri") continue;
      expect(parsed.stream).toBe("stderr");
      expect(parsed.partial).toBe(true);
      expect(text(parsed.text)).toBe("2024-03-01 INFO [tracking] {");
    }
    const full = parseLine(bytes("2024-03-01T10:00:00+01:00 stdout F:x-tag {}"), "cri");
    expect(full).toMatchObject({ kind: "cri", stream: "stdout", partial: false });
    if (full.kind === "cri") expect(text(full.text)).toBe("{}");
    const empty = parseLine(bytes("2024-03-01T10:00:00.1Z stdout F"), "cri");
    expect(empty.kind === "cri" && empty.text.length).toBe(0);
  });

  test("what is not a CRI record: none in cri, read as before in auto", () => {
    const tutor = prefixed('{"time": "2024-03-01T10:00:00Z"}');
    expect(parseLine(bytes(tutor), "cri")).toEqual({ kind: "none" });
    expect(parseLine(bytes(tutor), "auto").kind).toBe("event");
    for (const bad of [
      "2024-03-01T10:00:00Z stdin F {}",
      "2024-03-01T10:00:00Z stdout X {}",
      "2024-03-01T10:00:00Z stdout Fx {}",
      "yesterday stdout F {}",
      "",
    ]) {
      expect(parseLine(bytes(bad), "cri")).toEqual({ kind: "none" });
    }
  });

  test("the event of a joined text: only [tracking] lines, from the first { to the last }", () => {
    expect(text(criEvent(bytes(prefixed('{"a": {"b": 1}}'))))).toBe('{"a": {"b": 1}}');
    expect(criEvent(bytes('2024-03-01 INFO [django.request] {"a": 1}'))).toBeNull();
    expect(criEvent(bytes("[tracking] no event"))).toBeNull();
  });
});

describe("joining", () => {
  const joiner = () => new CriJoiner(1024, () => {});

  test("P records join with the next of their stream; the other stream waits with them", () => {
    const j = joiner();
    expect(j.record(0, 10, "stdout", true, bytes("ab"))).toBeNull();
    expect(j.pending).toBe(true);
    // a whole stderr line, inside the open stdout one: not handed over alone
    expect(j.record(10, 20, "stderr", false, bytes("err"))).toBeNull();
    expect(j.record(20, 30, "stderr", true, bytes("x"))).toBeNull();
    expect(j.record(30, 40, "stdout", false, bytes("cd"))).toBeNull();
    expect(j.records).toBe(4);
    const group = j.record(40, 50, "stderr", false, bytes("y"));
    expect(group?.end).toBe(50);
    expect(group?.messages.map((m) => [m.start, text(m.text)])).toEqual([
      [0, "abcd"],
      [10, "err"],
      [20, "xy"],
    ]);
    expect(j.pending).toBe(false);
    expect(j.records).toBe(0);
  });

  test("an F alone is a group at once; a line that is not CRI waits only while one is open", () => {
    const j = joiner();
    expect(j.record(0, 5, "stdout", false, bytes("a"))?.messages).toEqual([{ start: 0, text: bytes("a") }]);
    expect(j.other(5, 9, null)?.messages).toEqual([{ start: 5, text: null }]);
    j.record(9, 12, "stdout", true, bytes("b"));
    expect(j.other(12, 20, bytes("{}"))).toBeNull();
    const group = j.record(20, 25, "stdout", false, bytes("c"));
    expect(group?.messages.map((m) => [m.start, text(m.text), text(m.event ?? null)])).toEqual([
      [9, "bc", null],
      [12, null, "{}"],
    ]);
  });

  test("a joined text past the limit is dropped whole, once told", () => {
    let told = 0;
    const j = new CriJoiner(4, () => told++);
    j.record(0, 1, "stdout", true, bytes("abc"));
    j.record(1, 2, "stdout", true, bytes("def"));
    j.record(2, 3, "stdout", true, bytes("ghi"));
    const group = j.record(3, 4, "stdout", false, bytes("j"));
    expect(group?.messages).toEqual([{ start: 0, text: null }]);
    expect(told).toBe(1);
  });
});

/**
 * A node's layout: the LMS container's log in /var/log/pods, linked from /var/log/containers;
 * `logs` gives the [logs] paths (and other keys) from the links' directory.
 */
function podLayout(logs: (containers: string) => string) {
  const setup = logShipSetup();
  const pods = join(setup.dir, "pods", "openedx_lms-7d9c-abcde_0123", "lms");
  const containers = join(setup.dir, "containers");
  mkdirSync(pods, { recursive: true });
  mkdirSync(containers);
  const live = join(pods, "0.log");
  symlinkSync(live, join(containers, "lms-7d9c-abcde_openedx_lms-0123abcd.log"));
  const toml = setup.toml.replace(`paths = ["${setup.file}"]`, logs(containers));
  return { setup, config: parseConfig(toml, setup.configFile, {}).config, pods, containers, live };
}

describe("log-ship on CRI files", () => {
  for (const format of ["cri", "auto"] as const) {
    test(`${format}: every real event, split at random bytes on both streams, once and byte-identical`, async () => {
      const setup = logShipSetup({ logs: `format = "${format}"\nmax_file_size = "16K"` });
      const { records, wanted } = criFile(format === "cri" ? 1 : 2);
      writeFileSync(setup.file, recordLines(records));
      const result = await ship(setup);
      // one noise line of the other stream per event
      expect(result).toMatchObject({ ok: true, events: wanted.length, skipped: wanted.length });
      expect(shippedLines(setup.datalake)).toEqual(wanted);
      expect(shippedObjects(setup.datalake).length).toBeGreaterThan(3);
    });
  }

  test("a checkpoint never splits a joined line: the file read a record at a time ships each event once", async () => {
    const setup = logShipSetup({ logs: 'format = "cri"\nmax_file_size = "2K"' });
    const { records, wanted } = criFile(3);
    const quiet: number[] = [];
    let offset = 0;
    for (const [i, record] of records.slice(0, 120).entries()) {
      appendFileSync(setup.file, recordLines([record]));
      offset += record.length + 1;
      await ship(setup);
      // Where it committed no message is open: reading on from there joins whole lines only.
      const committed = readCheckpoints(setup.stateDir)[0]?.offset ?? 0;
      expect(committed).toBeLessThanOrEqual(offset);
      if (i % 10 === 0) quiet.push(committed);
    }
    appendFileSync(setup.file, recordLines(records.slice(120)));
    await ship(setup);
    expect(shippedLines(setup.datalake)).toEqual(wanted);
    // Commits lag behind open messages, never ahead: they did move on along the way.
    expect(new Set(quiet).size).toBeGreaterThan(3);
  });

  test("an open P record at the end of the file waits; a last record without its newline too", async () => {
    const setup = logShipSetup({ logs: 'format = "cri"' });
    const [a, b] = [prefixed(writerEvent(1)), prefixed(writerEvent(2))];
    const cut = a.length - 10;
    writeFileSync(
      setup.file,
      recordLines([criRecord("stdout", false, bytes(b)), criRecord("stderr", true, bytes(a.slice(0, cut)))]),
    );
    expect(await ship(setup)).toMatchObject({ events: 1 });
    const committed = readCheckpoints(setup.stateDir)[0]!.offset;
    expect(committed).toBe(criRecord("stdout", false, bytes(b)).length + 1);
    appendFileSync(setup.file, criRecord("stderr", false, bytes(a.slice(cut))));
    expect(await ship(setup)).toMatchObject({ events: 0 });
    appendFileSync(setup.file, "\n");
    expect(await ship(setup)).toMatchObject({ events: 1 });
    expect(shippedLines(setup.datalake)).toEqual([writerEvent(2), writerEvent(1)].map(asBytes));
  });

  test("/var/log/containers links into /var/log/pods: followed, and through a rotation of the CRI file", async () => {
    const { setup, config, pods, containers, live } = podLayout(
      (containers) => `paths = ["${containers}/lms-*.log"]\nformat = "cri"`,
    );
    symlinkSync(join(pods, "..", "..", "nope.log"), join(containers, "cms-1_openedx_cms-99.log"));
    const random = seededRandom(4);
    const records = (from: number, to: number) =>
      recordLines(
        Array.from({ length: to - from + 1 }, (_, i) => from + i).flatMap((seq) =>
          criRecords(prefixed(writerEvent(seq)), seq % 2 ? "stderr" : "stdout", random),
        ),
      );
    writeFileSync(live, records(1, 20));
    expect(await shipLogs(config, { retryMs: 5, pollMs: 50 })).toMatchObject({ ok: true, events: 20 });
    // containerd rotates by renaming 0.log to 0.log.<time> and starting a new 0.log
    appendFileSync(live, records(21, 30));
    renameSync(live, `${live}.20240301-100000`);
    writeFileSync(live, records(31, 40));
    expect(await shipLogs(config, { retryMs: 5, pollMs: 50 })).toMatchObject({ ok: true, events: 20 });
    const seqs = shippedLines(setup.datalake).map((l) => Number(/"seq": (\d+)/.exec(l)?.[1]));
    expect(seqs.sort((a, b) => a - b)).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
    expect(shippedLines(setup.datalake).every((l, i, all) => all.indexOf(l) === i)).toBe(true);
  });
});

describe("Kubernetes nodes: log-ship down while the kubelet rotates", () => {
  function nodeSetup() {
    const { setup, config, live } = podLayout(
      (containers) => `paths = ["${containers}/lms-*_openedx_lms-[0-9a-f]*.log"]\nformat = "auto"`,
    );
    const random = seededRandom(7);
    const records = (from: number, to: number) =>
      recordLines(
        Array.from({ length: to - from + 1 }, (_, i) => from + i).flatMap((seq) =>
          criRecords(prefixed(writerEvent(seq)), seq % 2 ? "stderr" : "stdout", random),
        ),
      );
    const seqs = () =>
      shippedLines(setup.datalake)
        .map((l) => Number(/"seq": (\d+)/.exec(l)?.[1]))
        .sort((a, b) => a - b);
    return { setup, config, live, records, seqs };
  }
  const upTo = (n: number) => Array.from({ length: n }, (_, i) => i + 1);

  test("the files rotated beside the linked file while down are shipped, the compressed one too, each once", async () => {
    const { config, live, records, seqs } = nodeSetup();
    writeFileSync(live, records(1, 10));
    expect(await shipLogs(config, { retryMs: 5, pollMs: 50 })).toMatchObject({ ok: true, events: 10 });
    // Two rotations while log-ship is down: 0.log.<time>, then the older one compressed.
    appendFileSync(live, records(11, 20));
    renameSync(live, `${live}.20240301-100000`);
    writeFileSync(live, records(21, 30));
    writeFileSync(`${live}.20240301-100000.gz`, gzipSync(readFileSync(`${live}.20240301-100000`)));
    rmSync(`${live}.20240301-100000`);
    renameSync(live, `${live}.20240301-110000`);
    writeFileSync(live, records(31, 40));
    expect(await shipLogs(config, { retryMs: 5, pollMs: 50 })).toMatchObject({ ok: true, events: 30 });
    expect(seqs()).toEqual(upTo(40));
  });

  test("the kubelet compressing a rotated file through <name>.tmp: its gzip bytes are never read as lines", async () => {
    const { setup, config, live, records, seqs } = nodeSetup();
    writeFileSync(live, records(1, 10));
    expect(await shipLogs(config, { retryMs: 5, pollMs: 50 })).toMatchObject({ ok: true, events: 10 });
    renameSync(live, `${live}.20240301-100000`);
    writeFileSync(live, records(11, 20));
    expect(await shipLogs(config, { retryMs: 5, pollMs: 50 })).toMatchObject({ ok: true, events: 10 });
    // The next rotation: the older file's .gz being written under its temporary name.
    renameSync(live, `${live}.20240301-110000`);
    writeFileSync(live, records(21, 30));
    const compressed = gzipSync(readFileSync(`${live}.20240301-100000`));
    writeFileSync(`${live}.20240301-100000.tmp`, compressed.subarray(0, compressed.length >> 1));
    expect(await shipLogs(config, { retryMs: 5, pollMs: 50 })).toMatchObject({ ok: true, events: 10 });
    writeFileSync(`${live}.20240301-100000.tmp`, compressed);
    expect(await shipLogs(config, { retryMs: 5, pollMs: 50 })).toMatchObject({ ok: true, events: 0 });
    renameSync(`${live}.20240301-100000.tmp`, `${live}.20240301-100000.gz`);
    rmSync(`${live}.20240301-100000`);
    expect(await shipLogs(config, { retryMs: 5, pollMs: 50 })).toMatchObject({ ok: true, events: 0 });
    expect(seqs()).toEqual(upTo(30));
    expect(shippedLines(setup.datalake)).toHaveLength(30);
  });

  test("the link dangling between the rename and the new file: the rotated file is shipped, and no error", async () => {
    const { config, live, records, seqs } = nodeSetup();
    writeFileSync(live, records(1, 10));
    expect(await shipLogs(config, { retryMs: 5, pollMs: 50 })).toMatchObject({ ok: true, events: 10 });
    renameSync(live, `${live}.20240301-100000`);
    writeFileSync(live, records(11, 20));
    renameSync(live, `${live}.20240301-110000`);
    expect(await shipLogs(config, { retryMs: 5, pollMs: 50 })).toMatchObject({ ok: true, events: 10 });
    writeFileSync(live, records(21, 30));
    expect(await shipLogs(config, { retryMs: 5, pollMs: 50 })).toMatchObject({ ok: true, events: 10 });
    expect(seqs()).toEqual(upTo(30));
  });
});

describe("a line cut by a kubelet rotation: containerd writes its rest into the new file", () => {
  /** The records of events `from`..`to` (both streams, cut at random) as one list. */
  function eventRecords(from: number, to: number, seed: number): Buffer[] {
    const random = seededRandom(seed);
    return Array.from({ length: to - from + 1 }, (_, i) => from + i).flatMap((seq) =>
      criRecords(prefixed(writerEvent(seq)), seq % 2 ? "stderr" : "stdout", random),
    );
  }
  /** Event `seq` on stdout as a P record of its first half, and the F of the rest. */
  function cutEvent(seq: number): [Buffer, Buffer] {
    const line = bytes(prefixed(writerEvent(seq)));
    const half = line.length >> 1;
    return [
      criRecord("stdout", true, line.subarray(0, half)),
      criRecord("stdout", false, line.subarray(half)),
    ];
  }
  function podSetup() {
    const { setup, config, pods, live } = podLayout(
      (containers) => `paths = ["${containers}/lms-*.log"]\nformat = "cri"\nmax_file_size = "4K"`,
    );
    const once = () => shipLogs(config, { retryMs: 5, pollMs: 50 });
    return { setup, pods, live, once };
  }
  const upTo = (n: number) => Array.from({ length: n }, (_, i) => asBytes(writerEvent(i + 1)));
  const sorted = (lines: string[]) =>
    [...lines].sort((a, b) => Number(/"seq": (\d+)/.exec(a)?.[1]) - Number(/"seq": (\d+)/.exec(b)?.[1]));

  test("the rotated file's open message is joined with the new file's first record of its stream, once", async () => {
    const { setup, live, once } = podSetup();
    const [head, rest] = cutEvent(11);
    // The other stream's record between them waits with the open message, in both files.
    const noise = criRecord("stderr", false, bytes("2024-03-01 10:00:00,000 INFO 7 [django.request] GET /x"));
    writeFileSync(live, recordLines([...eventRecords(1, 10, 1), head, noise]));
    expect(await once()).toMatchObject({ ok: true, events: 10 });
    renameSync(live, `${live}.20240301-100000`);
    writeFileSync(live, recordLines([noise, rest, ...eventRecords(12, 20, 2)]));
    expect(await once()).toMatchObject({ ok: true, events: 10 });
    expect(sorted(shippedLines(setup.datalake))).toEqual(upTo(20));
    // Both checkpoints moved on: the rotated file is done, nothing waits in it.
    const rotated = readCheckpoints(setup.stateDir).find((cp) => cp.path.endsWith(".20240301-100000"))!;
    expect(rotated.offset).toBe(readFileSync(`${live}.20240301-100000`).length);
    // A later run reads nothing again.
    expect(await once()).toMatchObject({ ok: true, events: 0 });
    expect(shippedLines(setup.datalake)).toHaveLength(20);
  });

  test("read a record at a time, rotated in the middle of a line: each event once, the cut one whole", async () => {
    const { setup, live, once } = podSetup();
    const [head, rest] = cutEvent(21);
    const before = [...eventRecords(1, 20, 3), head];
    const after = [rest, ...eventRecords(22, 40, 4)];
    for (const record of before) {
      appendFileSync(live, recordLines([record]));
      expect((await once()).ok).toBe(true);
    }
    renameSync(live, `${live}.20240301-100000`);
    // The link dangles until the new file is created: the run in between finds nothing new.
    expect(await once()).toMatchObject({ ok: true, events: 0 });
    for (const record of after) {
      appendFileSync(live, recordLines([record]));
      expect((await once()).ok).toBe(true);
    }
    expect(sorted(shippedLines(setup.datalake))).toEqual(upTo(40));
  });

  test("log-ship down across the rotation and the compression of the rotated file: joined all the same", async () => {
    const { setup, live, once } = podSetup();
    const [head, rest] = cutEvent(11);
    writeFileSync(live, recordLines(eventRecords(1, 10, 5)));
    expect(await once()).toMatchObject({ ok: true, events: 10 });
    appendFileSync(live, recordLines([head]));
    renameSync(live, `${live}.20240301-100000`);
    writeFileSync(live, recordLines([rest, ...eventRecords(12, 20, 6)]));
    writeFileSync(`${live}.20240301-100000.gz`, gzipSync(readFileSync(`${live}.20240301-100000`)));
    rmSync(`${live}.20240301-100000`);
    expect(await once()).toMatchObject({ ok: true, events: 10 });
    expect(sorted(shippedLines(setup.datalake))).toEqual(upTo(20));
  });

  test("a restarted container's new log (1.log) does not continue the old one's open line", async () => {
    const { setup, pods, live, once } = podSetup();
    const [head] = cutEvent(11);
    writeFileSync(live, recordLines([...eventRecords(1, 10, 7), head]));
    expect(await once()).toMatchObject({ ok: true, events: 10 });
    // The container died mid-line; its successor logs to 1.log, linked under a new name.
    const restarted = join(pods, "1.log");
    symlinkSync(restarted, join(setup.dir, "containers", "lms-7d9c-abcde_openedx_lms-4567cdef.log"));
    const [, other] = cutEvent(12);
    writeFileSync(restarted, recordLines([other, ...eventRecords(13, 20, 8)]));
    expect(await once()).toMatchObject({ ok: true, events: 8 });
    const shipped = shippedLines(setup.datalake);
    expect(shipped).toHaveLength(18);
    expect(shipped.some((line) => line.includes('"seq": 11') || line.includes('"seq": 12'))).toBe(false);
  });
});

describe("CRI files with pseudonyms (DESIGN §11)", () => {
  test("events joined across interleaved streams are pseudonymized exactly as plain JSON lines are", async () => {
    const keyDir = mkdtempSync(join(tmpdir(), "panorama-cri-key-"));
    try {
      const keyFile = join(keyDir, "pseudonym.key");
      writeFileSync(keyFile, randomBytes(32), { mode: 0o600 });
      const privacy = `[privacy]\npseudonymize = true\nkey_file = "${keyFile}"\n`;
      const cri = logShipSetup({ top: privacy, logs: 'format = "cri"\nmax_file_size = "16K"' });
      const { records, wanted } = criFile(4);
      writeFileSync(cri.file, recordLines(records));
      expect(await ship(cri)).toMatchObject({ ok: true, events: wanted.length });
      const json = logShipSetup({ top: privacy, logs: 'format = "json"\nmax_file_size = "16K"' });
      // `wanted` holds the latin1 view of the UTF-8 bytes (asBytes): written back as those bytes.
      writeFileSync(json.file, Buffer.from(wanted.map((line) => `${line}\n`).join(""), "latin1"));
      expect(await ship(json)).toMatchObject({ ok: true, events: wanted.length });
      const shipped = shippedLines(cri.datalake);
      expect(shipped).toEqual(shippedLines(json.datalake));
      // The fixture's learner "edx" is gone, replaced by its pseudonym.
      const pseudonym = new Pseudonymizer(readFileSync(keyFile)).of("edx");
      expect(shipped.some((line) => line.includes(`"${pseudonym}"`))).toBe(true);
      expect(shipped.some((line) => /"username": ?"edx"/.test(line))).toBe(false);
    } finally {
      rmSync(keyDir, { recursive: true, force: true });
    }
  });
});
