// The log shipper in-process on temporary files and a local datalake: formats end to end,
// batching, partial lines, rotation of both kinds, truncation, deletion, replacement, failed
// uploads, --follow, --dry-run and the status figures.
import { afterAll, describe, expect, spyOn, test } from "bun:test";
import {
  appendFileSync,
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  truncateSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { log, setupLogging } from "../../src/log.ts";
import { logShipStatus, readCheckpoints } from "../../src/logship/checkpoint.ts";
import { type ShipOptions, shipLogs } from "../../src/logship/ship.ts";
import { LocalLogSink, type LogSink } from "../../src/logship/upload.ts";
import {
  asBytes,
  dockerWrapped,
  fixtureEvents,
  type LogShipSetup,
  logShipSetup,
  prefixed,
  removeLogShipSetups,
  shippedLines,
  shippedObjects,
  writerEvent,
} from "../support/log-writer.ts";

setupLogging({ level: "error" });
afterAll(removeLogShipSetups);

const events = (from: number, to: number) =>
  Array.from({ length: to - from + 1 }, (_, i) => writerEvent(from + i));
const text = (lines: string[]) => lines.map((l) => `${l}\n`).join("");

/** What logrotate's compress does: FILE.gz written whole, then FILE removed. */
function compress(path: string): void {
  writeFileSync(`${path}.gz`, gzipSync(readFileSync(path)));
  rmSync(path);
}

function ship(setup: LogShipSetup, options: ShipOptions = {}) {
  return shipLogs(setup.config, { retryMs: 5, pollMs: 50, ...options });
}

/** A sink that fails when `fail(n)` says so for the n-th put (0-based), else stores locally. */
function flakySink(
  setup: LogShipSetup,
  fail: (n: number) => "before" | "after" | null,
): LogSink & { puts: number } {
  const local = new LocalLogSink(setup.datalake);
  return {
    description: "flaky",
    puts: 0,
    async put(key, body) {
      const what = fail(this.puts++);
      if (what === "before") throw new Error("connection refused");
      await local.put(key, body);
      if (what === "after") throw new Error("connection reset after the object was stored");
    },
  };
}

describe("formats, end to end", () => {
  test("json, prefixed and docker lines: each event in the target equals the source event", async () => {
    const source = fixtureEvents();
    const big = `{"name": "big", "time": "2024-03-01T10:00:00.000000+00:00", "data": "${"Ωμέγα ✓ 😀 ".repeat(6000)}"}`;
    const invalid = Buffer.concat([
      Buffer.from('{"name": "bad \xff\xfe bytes", "v": "'),
      Buffer.from([0xc3, 0x28]),
      Buffer.from('"}'),
    ]);
    const wanted: string[] = [];
    const body: Buffer[] = [];
    const line = (raw: string | Buffer) => body.push(Buffer.concat([Buffer.from(raw), Buffer.from("\n")]));
    source.forEach((event, i) => {
      const form = i % 3;
      line(form === 0 ? event : form === 1 ? prefixed(event, i) : dockerWrapped(prefixed(event, i)));
      wanted.push(asBytes(event));
    });
    line("");
    line("2024-03-01 10:00:00,000 INFO 7 [django.request] not an event");
    line(dockerWrapped('2024-03-01 10:00:00,000 INFO 7 [django.request] {"a": 1}'));
    line(big);
    line(prefixed(big));
    // Docker splits a message of more than 16 KiB into wrappers; only the last ends with \n.
    const message = `${prefixed(big)}\n`;
    for (let i = 0; i < message.length; i += 16384) {
      line(
        JSON.stringify({ log: message.slice(i, i + 16384), stream: "stdout", time: "2024-03-01T10:00:00Z" }),
      );
    }
    wanted.push(asBytes(big), asBytes(big), asBytes(big));
    line(invalid);
    wanted.push(invalid.toString("latin1"));
    const setup = logShipSetup({ logs: 'max_file_size = "64K"' });
    writeFileSync(setup.file, Buffer.concat(body));

    const result = await ship(setup);
    expect(result.ok).toBe(true);
    expect(result.skipped).toBe(3);
    expect(result.events).toBe(wanted.length);
    expect(shippedLines(setup.datalake)).toEqual(wanted);
    const checkpoint = readCheckpoints(setup.stateDir);
    expect(checkpoint.map((c) => c.offset)).toEqual([Buffer.concat(body).length]);
  });

  test("a format set explicitly reads only that format", async () => {
    const [a, b, c] = [writerEvent(1), writerEvent(2), writerEvent(3)];
    const json = logShipSetup({ logs: 'format = "json"' });
    writeFileSync(json.file, text([a, prefixed(b)]));
    expect((await ship(json)).skipped).toBe(1);
    expect(shippedLines(json.datalake)).toEqual([a]);
    const docker = logShipSetup({ logs: 'format = "docker"' });
    writeFileSync(docker.file, text([a, prefixed(b), dockerWrapped(prefixed(c))]));
    expect((await ship(docker)).skipped).toBe(2);
    expect(shippedLines(docker.datalake)).toEqual([c]);
  });
});

describe("each format set explicitly", () => {
  const big = `{"name": "big", "time": "2024-03-01T10:00:00.000000+00:00", "data": "${"Ωμέγα ✓ 😀 ".repeat(7000)}"}`;
  const invalid = Buffer.concat([
    Buffer.from('{"time": "2024-03-01T10:00:02Z", "v": "'),
    Buffer.from([0xff, 0xfe, 0xc3, 0x28]),
    Buffer.from('"}'),
  ]);
  const wrap: Record<"json" | "prefixed" | "docker", (event: string) => string> = {
    json: (event) => event,
    prefixed: (event) => prefixed(event),
    docker: (event) => dockerWrapped(prefixed(event)),
  };
  for (const format of ["json", "prefixed", "docker"] as const) {
    test(`${format}: every real event, a long unicode one${format === "docker" ? "" : " and invalid UTF-8"} byte-identical`, async () => {
      const setup = logShipSetup({ logs: `format = "${format}"\nmax_file_size = "32K"` });
      const source = [...fixtureEvents(), big];
      const lines = source.map((e) => Buffer.from(`${wrap[format](e)}\n`));
      const wanted = source.map(asBytes);
      // A Docker wrapper is JSON: its log string cannot hold bytes that are not UTF-8.
      if (format !== "docker") {
        lines.push(
          Buffer.concat([
            Buffer.from(format === "prefixed" ? "2024-03-01 10:00:02,000 INFO [tracking] - " : ""),
            invalid,
            Buffer.from("\n"),
          ]),
        );
        wanted.push(invalid.toString("latin1"));
      }
      writeFileSync(setup.file, Buffer.concat(lines));
      const result = await ship(setup);
      expect(result).toMatchObject({ ok: true, skipped: 0, events: wanted.length });
      expect(shippedLines(setup.datalake)).toEqual(wanted);
    });
  }

  test("a line longer than 16 MiB is counted and skipped; what follows ships", async () => {
    const setup = logShipSetup();
    const long = `{"time": "2024-03-01T10:00:00Z", "x": "${"x".repeat(17 * 1024 * 1024)}"}`;
    writeFileSync(setup.file, text([writerEvent(1), long, writerEvent(2)]));
    const result = await ship(setup);
    expect(result).toMatchObject({ ok: true, events: 2, skipped: 1 });
    expect(shippedLines(setup.datalake)).toEqual([writerEvent(1), writerEvent(2)]);
    expect(readCheckpoints(setup.stateDir)[0]!.offset).toBe(
      Buffer.byteLength(text([writerEvent(1), long, writerEvent(2)])),
    );
  });
});

describe("batches and keys", () => {
  test("split at max_file_size and at each UTC day; keys and partitions per day", async () => {
    const setup = logShipSetup({ logs: 'max_file_size = "8K"' });
    const lines: string[] = [];
    for (const [day, count] of [
      ["01", 7],
      ["02", 1],
      ["03", 3],
    ] as const) {
      for (let i = 0; i < count; i++) {
        lines.push(
          `{"name": "x", "time": "2024-03-${day}T23:59:5${i}.000000+00:00", "pad": "${"p".repeat(2000)}"}`,
        );
      }
    }
    writeFileSync(setup.file, text(lines));
    const seen: string[] = [];
    const result = await ship(setup, { onPartition: (p) => void seen.push(p.values.join("/")) });
    const objects = shippedObjects(setup.datalake);
    // each line is 2069 bytes: 3 fit in 8 KiB
    expect(objects.map((o) => [o.day, o.lines.length])).toEqual([
      ["20240301", 3],
      ["20240301", 3],
      ["20240301", 1],
      ["20240302", 1],
      ["20240303", 3],
    ]);
    for (const o of objects) {
      expect(
        o.key.startsWith(
          `openedx/tracking_logs/lms=lms.example.com/year=2024/month=03/day=${o.day.slice(6)}/`,
        ),
      ).toBe(true);
      expect(o.lines.join("\n").length + 1).toBeLessThanOrEqual(8192);
    }
    expect(objects[0]!.key).toMatch(/\/tracking\.log-20240301-235950-[0-9a-f]{12}-0\.gz$/);
    expect(result.partitions.map((p) => p.values.join("/"))).toEqual([
      "lms.example.com/2024/03/01",
      "lms.example.com/2024/03/02",
      "lms.example.com/2024/03/03",
    ]);
    expect(seen).toEqual(result.partitions.map((p) => p.values.join("/")));
  });

  test("a separate logs bucket: keys without base_prefix", async () => {
    const setup = logShipSetup({ datalake: 'bucket = "data"\nlogs_bucket = "logs"' });
    writeFileSync(setup.file, text([writerEvent(1)]));
    await ship(setup);
    expect(shippedObjects(setup.datalake)[0]!.key).toMatch(
      /^tracking_logs\/lms\.example\.com\/year=2024\/month=03\/day=01\/tracking\.log-20240301-100001-[0-9a-f]{12}-0\.gz$/,
    );
  });

  test("globs and excludes", async () => {
    const setup = logShipSetup();
    const config = {
      ...setup.config,
      logs: {
        ...setup.config.logs,
        paths: [join(setup.logs, "*.log")],
        exclude: [join(setup.logs, "debug*")],
      },
    };
    writeFileSync(join(setup.logs, "a.log"), text([writerEvent(1)]));
    writeFileSync(join(setup.logs, "b.log"), text([writerEvent(2)]));
    writeFileSync(join(setup.logs, "debug.log"), text([writerEvent(3)]));
    writeFileSync(join(setup.logs, "c.txt"), text([writerEvent(4)]));
    await shipLogs(config, {});
    expect(shippedLines(setup.datalake).sort()).toEqual([writerEvent(1), writerEvent(2)].sort());
  });
});

describe("offsets", () => {
  test("a last line without its newline waits; nothing is shipped twice", async () => {
    const setup = logShipSetup();
    const [a, b, c] = [writerEvent(1), writerEvent(2), writerEvent(3)];
    writeFileSync(setup.file, `${a}\n${b.slice(0, 100)}`);
    expect((await ship(setup)).events).toBe(1);
    appendFileSync(setup.file, `${b.slice(100)}\n${c}`);
    expect((await ship(setup)).events).toBe(1);
    appendFileSync(setup.file, "\n");
    expect((await ship(setup)).events).toBe(1);
    expect((await ship(setup)).events).toBe(0);
    expect(shippedLines(setup.datalake)).toEqual([a, b, c]);
    expect(shippedObjects(setup.datalake)).toHaveLength(3);
  });

  test("rename-and-create: the old file is finished from its checkpoint, then the new one from 0", async () => {
    const setup = logShipSetup();
    writeFileSync(setup.file, text(events(1, 10)));
    await ship(setup);
    appendFileSync(setup.file, text(events(11, 20)));
    renameSync(setup.file, `${setup.file}.1`);
    writeFileSync(setup.file, text(events(21, 25)));
    await ship(setup);
    expect(shippedLines(setup.datalake).sort()).toEqual(events(1, 25).sort());
    // Rotated again (to .2) and then compressed: followed by inode, then in its .gz copy, then
    // forgotten once deleted.
    appendFileSync(`${setup.file}.1`, text(events(26, 27)));
    renameSync(`${setup.file}.1`, `${setup.file}.2`);
    await ship(setup);
    expect(readCheckpoints(setup.stateDir).map((c) => c.path)).toEqual([`${setup.file}.2`, setup.file]);
    compress(`${setup.file}.2`);
    await ship(setup);
    expect(readCheckpoints(setup.stateDir).map((c) => c.path)).toEqual([`${setup.file}.2.gz`, setup.file]);
    rmSync(`${setup.file}.2.gz`);
    await ship(setup);
    expect(readCheckpoints(setup.stateDir).map((c) => c.path)).toEqual([setup.file]);
    expect(shippedLines(setup.datalake).sort()).toEqual(events(1, 27).sort());
  });

  test("rotation to a dated name (tracking.log-20240301)", async () => {
    const setup = logShipSetup();
    writeFileSync(setup.file, text(events(1, 3)));
    await ship(setup);
    appendFileSync(setup.file, text(events(4, 5)));
    renameSync(setup.file, `${setup.file}-20240301`);
    await ship(setup);
    expect(shippedLines(setup.datalake)).toEqual(events(1, 5));
  });

  test("copytruncate: the unread end is read from the copy, the file again from 0", async () => {
    const setup = logShipSetup();
    writeFileSync(setup.file, text(events(1, 10)));
    await ship(setup);
    appendFileSync(setup.file, text(events(11, 20)));
    copyFileSync(setup.file, `${setup.file}.1`);
    truncateSync(setup.file, 0);
    appendFileSync(setup.file, text(events(21, 60))); // longer than before: size alone would not tell
    await ship(setup);
    expect(shippedLines(setup.datalake).sort()).toEqual(events(1, 60).sort());
    await ship(setup);
    expect(shippedLines(setup.datalake)).toHaveLength(60);
  });

  test("truncation without a copy: read again from 0", async () => {
    const setup = logShipSetup();
    writeFileSync(setup.file, text(events(1, 10)));
    await ship(setup);
    truncateSync(setup.file, 0);
    appendFileSync(setup.file, text(events(11, 12)));
    await ship(setup);
    expect(shippedLines(setup.datalake).sort()).toEqual(events(1, 12).sort());
  });

  test("the same inode with other content (inode reuse) is a new file", async () => {
    const setup = logShipSetup();
    writeFileSync(setup.file, text(events(1, 3)));
    await ship(setup);
    const before = readCheckpoints(setup.stateDir)[0]!;
    writeFileSync(setup.file, text(events(4, 9))); // same inode, longer, other first bytes
    await ship(setup);
    const after = readCheckpoints(setup.stateDir)[0]!;
    expect(after.ino).toBe(before.ino);
    expect(after.file_id).not.toBe(before.file_id);
    expect(shippedLines(setup.datalake).sort()).toEqual(events(1, 9).sort());
  });

  test("deletion, then a new file with the same name", async () => {
    const setup = logShipSetup();
    writeFileSync(setup.file, text(events(1, 3)));
    await ship(setup);
    rmSync(setup.file);
    // Nothing to read at all: the run fails (and says which path), the checkpoint is dropped.
    expect((await said(() => ship(setup))).result.ok).toBe(false);
    expect(readCheckpoints(setup.stateDir)).toEqual([]);
    writeFileSync(setup.file, text(events(4, 5)));
    await ship(setup);
    expect(shippedLines(setup.datalake).sort()).toEqual(events(1, 5).sort());
  });

  test("a rotated file shipped whole, then removed (logrotate's compress or rotate count): said calmly; one with unshipped bytes warned about", async () => {
    const setup = logShipSetup();
    writeFileSync(setup.file, text(events(1, 3)));
    await ship(setup);
    renameSync(setup.file, `${setup.file}.1`);
    writeFileSync(setup.file, text(events(4, 5)));
    await ship(setup);
    const info = spyOn(log, "info").mockImplementation(() => {});
    try {
      rmSync(`${setup.file}.1`);
      const quiet = await said(() => ship(setup));
      expect(quiet.result.ok).toBe(true);
      expect(quiet.warnings).toEqual([]);
      expect(info.mock.calls.map(([m]) => m)).toContain(
        `${setup.file}.1 was removed after all ${Buffer.byteLength(text(events(1, 3)))} bytes seen in it were shipped`,
      );
      // A partial last line is never shipped: removing the file loses it, and that is said.
      appendFileSync(setup.file, '{"partial": ');
      await ship(setup);
      renameSync(setup.file, `${setup.file}.1`);
      writeFileSync(setup.file, "");
      await ship(setup);
      rmSync(`${setup.file}.1`);
      const loud = await said(() => ship(setup));
      expect(loud.warnings).toEqual([
        expect.stringMatching(
          /tracking\.log\.1 is gone .* before log-ship finished it: 1 line\(s\) \(12 bytes\) seen in it were not shipped$/,
        ),
      ]);
    } finally {
      info.mockRestore();
    }
    expect(shippedLines(setup.datalake).sort()).toEqual(events(1, 5).sort());
  });

  test("replacement: another file renamed over the name is read from 0", async () => {
    const setup = logShipSetup();
    writeFileSync(setup.file, text(events(1, 3)));
    await ship(setup);
    writeFileSync(join(setup.logs, "new"), text(events(4, 8)));
    renameSync(join(setup.logs, "new"), setup.file);
    await ship(setup);
    expect(shippedLines(setup.datalake).sort()).toEqual(events(1, 8).sort());
  });
});

describe("failures", () => {
  test("--once: a failed upload ends the run, commits nothing past the last success; the retry overwrites", async () => {
    const setup = logShipSetup({ logs: 'max_file_size = "8K"' });
    writeFileSync(setup.file, text(events(1, 40)));
    // The 2nd object is stored but its answer lost; the 3rd is refused.
    const sink = flakySink(setup, (n) => (n === 1 ? "after" : n === 2 ? "before" : null));
    const failed = await ship(setup, { sink });
    expect(failed.ok).toBe(false);
    expect(failed.objects).toBe(1);
    const [first] = shippedObjects(setup.datalake);
    expect(readCheckpoints(setup.stateDir)[0]!.offset).toBe(Buffer.byteLength(text(first!.lines)));
    expect(shippedObjects(setup.datalake)).toHaveLength(2);

    const again = await ship(setup);
    expect(again.ok).toBe(true);
    expect(shippedLines(setup.datalake)).toEqual(events(1, 40));
  });

  test("--follow: a failing target is retried with backoff until it works", async () => {
    const setup = logShipSetup({ logs: 'max_file_size = "8K"' });
    writeFileSync(setup.file, text(events(1, 30)));
    const sink = flakySink(setup, (n) => (n < 4 ? "before" : n === 5 ? "after" : null));
    const stop = new AbortController();
    const running = ship(setup, { follow: true, sink, signal: stop.signal });
    for (
      let i = 0;
      i < 200 && readCheckpoints(setup.stateDir)[0]?.offset !== Buffer.byteLength(text(events(1, 30)));
      i++
    ) {
      await Bun.sleep(20);
    }
    stop.abort();
    const result = await running;
    expect(result.ok).toBe(true);
    expect(sink.puts).toBeGreaterThan(5);
    expect(shippedLines(setup.datalake)).toEqual(events(1, 30));
  });
});

/** The setup's config with other `logs.paths`. */
function withPaths(setup: LogShipSetup, paths: string[]) {
  return { ...setup.config, logs: { ...setup.config.logs, paths } };
}

/** What `work` logs as errors and warnings, one string each. */
async function said<T>(work: () => Promise<T>): Promise<{ result: T; errors: string[]; warnings: string[] }> {
  const error = spyOn(log, "error").mockImplementation(() => {});
  const warn = spyOn(log, "warn").mockImplementation(() => {});
  try {
    const result = await work();
    return {
      result,
      errors: error.mock.calls.map(([m]) => m),
      warnings: warn.mock.calls.map(([m]) => m),
    };
  } finally {
    error.mockRestore();
    warn.mockRestore();
  }
}

describe("configured paths with nothing to read", () => {
  test("--once: a missing path, a directory and a glob matching nothing fail the run; the other file ships", async () => {
    const setup = logShipSetup();
    writeFileSync(setup.file, text(events(1, 3)));
    const missing = join(setup.logs, "nonexistent.log");
    const dir = join(setup.logs, "a-directory");
    mkdirSync(dir);
    const glob = join(setup.logs, "nothing-*.log");
    const config = withPaths(setup, [missing, dir, glob, setup.file]);
    const { result, errors } = await said(() => shipLogs(config, {}));
    expect(result).toMatchObject({ ok: false, events: 3 });
    expect(shippedLines(setup.datalake)).toEqual(events(1, 3));
    expect(errors).toEqual([
      `${missing} (in logs.paths) does not exist: it is not shipped`,
      `${dir} (in logs.paths) is a directory: it is not shipped`,
      `${glob} (in logs.paths) matches no file: it is not shipped`,
    ]);
  });

  test("--once: a glob whose fixed directory does not exist says which", async () => {
    const setup = logShipSetup();
    const glob = join(setup.logs, "pods", "*", "tracking.log");
    const { result, errors } = await said(() => shipLogs(withPaths(setup, [glob]), {}));
    expect(result).toMatchObject({ ok: false, events: 0 });
    expect(errors).toEqual([
      `${glob} (in logs.paths) matches no file: its directory ${join(setup.logs, "pods")} does not exist: it is not shipped`,
    ]);
  });

  test.skipIf(process.getuid?.() === 0)(
    "--once: a file that cannot be opened fails the run (skipped as root, who can open it anyway)",
    async () => {
      const setup = logShipSetup();
      writeFileSync(setup.file, text(events(1, 3)));
      chmodSync(setup.file, 0o000);
      const { result, errors } = await said(() => ship(setup));
      expect(result.ok).toBe(false);
      expect(errors).toEqual([expect.stringContaining(`cannot open ${setup.file}: `)]);
    },
  );

  test("--once: a glob whose files are all there, and a directory it matches, are fine", async () => {
    const setup = logShipSetup();
    writeFileSync(setup.file, text(events(1, 2)));
    mkdirSync(join(setup.logs, "tracking.log.d"));
    const { result, errors } = await said(() =>
      shipLogs(withPaths(setup, [join(setup.logs, "tracking.log*")]), {}),
    );
    expect(result).toMatchObject({ ok: true, events: 2 });
    expect(errors).toEqual([]);
  });

  test("--once: between a rotation's rename and the new file, the name is missing but the run is fine", async () => {
    for (const glob of [false, true]) {
      const setup = logShipSetup();
      const config = glob ? withPaths(setup, [join(setup.logs, "*.log")]) : setup.config;
      writeFileSync(setup.file, text(events(1, 3)));
      await shipLogs(config, {});
      appendFileSync(setup.file, text(events(4, 5)));
      renameSync(setup.file, `${setup.file}.1`);
      const rotated = await said(() => shipLogs(config, {}));
      expect(rotated.result.ok).toBe(true);
      expect(rotated.errors).toEqual([]);
      expect(shippedLines(setup.datalake)).toEqual(events(1, 5));
      // Compressed too: nothing to read at all is a failure again.
      compress(`${setup.file}.1`);
      const gone = await said(() => shipLogs(config, {}));
      expect(gone.result.ok).toBe(false);
      expect(gone.errors).toEqual([expect.stringContaining("(in logs.paths)")]);
    }
  });

  test("--follow: a missing path is a warning, said once; it ships when the file appears", async () => {
    const setup = logShipSetup();
    const stop = new AbortController();
    const { result, errors, warnings } = await said(async () => {
      const running = ship(setup, { follow: true, signal: stop.signal });
      await Bun.sleep(200);
      writeFileSync(setup.file, text(events(1, 4)));
      for (let i = 0; i < 100 && shippedLines(setup.datalake).length < 4; i++) await Bun.sleep(30);
      stop.abort();
      return running;
    });
    expect(result).toMatchObject({ ok: true, events: 4 });
    expect(shippedLines(setup.datalake)).toEqual(events(1, 4));
    expect(errors).toEqual([]);
    expect(warnings).toEqual([
      expect.stringMatching(
        new RegExp(
          `^${setup.file} \\(in logs\\.paths\\) does not exist: it is shipped as soon as it can be read \\(check logs\\.paths`,
        ),
      ),
    ]);
  });
});

describe("--follow", () => {
  test("tails appends and a rotation, flushes on upload_timeout and on stop", async () => {
    const setup = logShipSetup();
    writeFileSync(setup.file, text(events(1, 5)));
    const stop = new AbortController();
    const running = ship(setup, { follow: true, signal: stop.signal });
    await Bun.sleep(300);
    appendFileSync(setup.file, text(events(6, 8)));
    // upload_timeout is 1 s: the batch goes up while the shipper keeps running
    for (let i = 0; i < 100 && shippedLines(setup.datalake).length < 8; i++) await Bun.sleep(30);
    expect(shippedLines(setup.datalake)).toEqual(events(1, 8));
    appendFileSync(setup.file, text(events(9, 10)));
    renameSync(setup.file, `${setup.file}.1`);
    writeFileSync(setup.file, text(events(11, 12)));
    await Bun.sleep(300);
    stop.abort();
    const result = await running;
    expect(result.ok).toBe(true);
    expect(shippedLines(setup.datalake).sort()).toEqual(events(1, 12).sort());
  });
});

describe("--dry-run and status", () => {
  test("--dry-run prints the keys and counts, writes nothing", async () => {
    const setup = logShipSetup();
    writeFileSync(setup.file, text([...events(1, 3), "junk"]));
    const printed: string[] = [];
    const result = await ship(setup, { dryRun: true, print: (s) => void printed.push(s) });
    expect(result).toMatchObject({ ok: true, objects: 1, events: 3, skipped: 1 });
    // A file not shipped before: its id is drawn at its first upload, so none is made up here.
    expect(printed).toEqual([
      expect.stringMatching(
        /^upload\topenedx\/tracking_logs\/lms=lms\.example\.com\/year=2024\/month=03\/day=01\/tracking\.log-20240301-100001-<new-file-id>-0\.gz\t3 events\t\d+ bytes\n$/,
      ),
    ]);
    expect(existsSync(setup.datalake)).toBe(false);
    expect(existsSync(setup.stateDir)).toBe(false);
  });

  test("--dry-run after a real ship shows the key the next upload takes", async () => {
    const setup = logShipSetup();
    writeFileSync(setup.file, text(events(1, 3)));
    await ship(setup);
    const [first] = readdirSync(setup.datalake, { recursive: true }).filter((f) => String(f).endsWith(".gz"));
    const fileId = String(first).match(/-([0-9a-f]{12})-0\.gz$/)![1];
    const size = readFileSync(setup.file).length;
    appendFileSync(setup.file, text(events(4, 5)));
    const printed: string[] = [];
    await ship(setup, { dryRun: true, print: (s) => void printed.push(s) });
    await ship(setup, { dryRun: true, print: (s) => void printed.push(s) });
    const line = expect.stringContaining(`-${fileId}-${size}.gz\t2 events\t`);
    expect(printed).toEqual([line, line]);
    await ship(setup);
    const keys = readdirSync(setup.datalake, { recursive: true }).map(String);
    expect(keys.some((k) => k.endsWith(`-${fileId}-${size}.gz`))).toBe(true);
  });

  test("logShipStatus: size, committed and unshipped bytes per file, last upload", async () => {
    const setup = logShipSetup();
    expect(logShipStatus(setup.config)).toEqual([]);
    writeFileSync(setup.file, text(events(1, 3)));
    const size = readFileSync(setup.file).length;
    expect(logShipStatus(setup.config)).toEqual([
      { path: setup.file, size, committed: 0, unshipped: size, last_upload: null },
    ]);
    await ship(setup);
    appendFileSync(setup.file, "partial");
    const [status] = logShipStatus(setup.config);
    expect(status).toMatchObject({ path: setup.file, size: size + 7, committed: size, unshipped: 7 });
    expect(Date.now() - Date.parse(status!.last_upload!)).toBeLessThan(60_000);
  });
});
