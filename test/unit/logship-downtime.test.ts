// DESIGN §8 "Downtime loses nothing that is still on disk": log-ship stopped while the log was
// rotated several times, in each rotation scheme (test/support/log-writer.ts's rotateLog); the
// compressed rotations, a gzip file still being written, an inode taken over by a new copy,
// history and --backfill, and the lines lost in files removed before they were shipped.
import { afterAll, describe, expect, spyOn, test } from "bun:test";
import {
  appendFileSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  truncateSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { parseConfig } from "../../src/config/load.ts";
import { log, setupLogging } from "../../src/log.ts";
import { checkpointPath, logShipStatus, readCheckpoints } from "../../src/logship/checkpoint.ts";
import { type ShipOptions, shipLogs } from "../../src/logship/ship.ts";
import { createLogSink, type LogSink } from "../../src/logship/upload.ts";
import { collectStatus, formatStatus } from "../../src/status.ts";
import {
  type LogShipSetup,
  linesOnDisk,
  logShipSetup,
  type Rotation,
  removeLogShipSetups,
  rotateLog,
  shippedLines,
  shippedObjects,
  writerEvent,
} from "../support/log-writer.ts";

setupLogging({ level: "error" });

afterAll(removeLogShipSetups);

const newSetup = () => logShipSetup();

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);
const text = (seqs: number[]) => seqs.map((seq) => `${writerEvent(seq)}\n`).join("");
const write = (setup: LogShipSetup, from: number, to: number) =>
  appendFileSync(setup.file, text(range(from, to)));

function ship(setup: LogShipSetup, options: ShipOptions = {}) {
  return shipLogs(setup.config, { retryMs: 5, pollMs: 50, ...options });
}

/** The sequence numbers shipped, sorted: a number twice is a line shipped twice. */
function shipped(setup: LogShipSetup): number[] {
  return shippedLines(setup.datalake)
    .map((line) => Number(/"seq": (\d+)/.exec(line)?.[1]))
    .sort((a, b) => a - b);
}

/** What `work` logs at info and warn level, one string each. */
async function said<T>(work: () => Promise<T>): Promise<{ result: T; infos: string[]; warnings: string[] }> {
  const info = spyOn(log, "info").mockImplementation(() => {});
  const warn = spyOn(log, "warn").mockImplementation(() => {});
  try {
    const result = await work();
    return { result, infos: info.mock.calls.map(([m]) => m), warnings: warn.mock.calls.map(([m]) => m) };
  } finally {
    info.mockRestore();
    warn.mockRestore();
  }
}

/** Writes seqs [from, to] in `rotations` files, rotating by `kind` after each but the last. */
function rotations(setup: LogShipSetup, kind: Rotation, keep: number, files: [number, number][]): number[] {
  const destroyed: number[] = [];
  files.forEach(([from, to], i) => {
    if (i > 0) destroyed.push(...rotateLog(setup.file, kind, keep, i).destroyed);
    write(setup, from, to);
  });
  return destroyed;
}

describe("log-ship down across several rotations: every line still on disk shipped once", () => {
  test("rename-and-create with delaycompress, rotate 2: the files that came and went are shipped oldest first; the file live at the stop, removed since, is a warning", async () => {
    const setup = newSetup();
    write(setup, 1, 3);
    await ship(setup);
    // Down: 4-5 end the live file, three rotations follow.
    const destroyed = rotations(setup, "delaycompress", 2, [
      [4, 5],
      [6, 8],
      [9, 11],
      [12, 14],
    ]);
    expect(destroyed).toEqual(range(1, 5));
    expect(linesOnDisk(setup.file).sort((a, b) => a - b)).toEqual(range(6, 14));
    const run = await said(() => ship(setup));
    expect(run.result.ok).toBe(true);
    expect(shipped(setup)).toEqual([...range(1, 3), ...range(6, 14)]);
    expect(run.infos.filter((m) => m.includes("while log-ship was not running"))).toEqual([
      `${setup.file}.2.gz was written while log-ship was not running: shipping it from its start`,
      `${setup.file}.1 was written while log-ship was not running: shipping it from its start`,
    ]);
    expect(run.warnings).toEqual([
      expect.stringMatching(
        // "is gone", or "was deleted" when the new live file took its inode
        new RegExp(`^${setup.file} .* while log-ship was down, .* after the last run are lost$`),
      ),
    ]);
    expect((await ship(setup)).events).toBe(0);
  });

  for (const kind of ["rename", "copytruncate", "dateext"] as const) {
    test(`${kind}, rotate 3, four rotations while down: the unshipped end of the file live at the stop and every file since`, async () => {
      const setup = newSetup();
      write(setup, 1, 3);
      await ship(setup);
      const destroyed = rotations(setup, kind, 3, [
        [4, 5],
        [6, 8],
        [9, 11],
        [12, 14],
        [15, 16],
      ]);
      // The oldest rotation (1-5) is removed by the fourth: 4-5 could be read by no run.
      expect(destroyed).toEqual(range(1, 5));
      expect((await ship(setup)).ok).toBe(true);
      expect(shipped(setup)).toEqual([...range(1, 3), ...range(6, 16)]);
      expect((await ship(setup)).events).toBe(0);
    });
  }

  test("compress: the checkpointed file compressed while down is finished from its offset in the uncompressed stream; a compressed file never seen is shipped whole", async () => {
    const setup = newSetup();
    write(setup, 1, 3);
    await ship(setup);
    rotations(setup, "compress", 3, [
      [4, 5],
      [6, 8],
      [9, 10],
    ]);
    // .2.gz: 1-5 (the file shipped up to 3), .1.gz: 6-8 (never seen), live: 9-10
    const run = await said(() => ship(setup));
    expect(run.warnings).toEqual([]);
    expect(shipped(setup)).toEqual(range(1, 10));
    // 4-5 continue the first file: same file id, at the offset where 1-3 ended.
    const objects = shippedObjects(setup.datalake);
    const first = objects.find((o) => o.offset === 0 && o.lines[0]?.includes('"seq": 1,'))!;
    expect(objects.filter((o) => o.fileId === first.fileId).map((o) => o.offset)).toEqual([
      0,
      Buffer.byteLength(text(range(1, 3))),
    ]);
    const status = logShipStatus(setup.config).find((s) => s.path === `${setup.file}.2.gz`);
    expect(status).toMatchObject({ size: Buffer.byteLength(text(range(1, 5))), unshipped: 0 });
    expect((await ship(setup)).events).toBe(0);
    // Its rotations go on: followed by inode, never read again, forgotten once removed.
    rotations(setup, "compress", 3, [
      [11, 11],
      [12, 12],
    ]);
    await ship(setup);
    expect(shipped(setup)).toEqual(range(1, 12));
    expect(readCheckpoints(setup.stateDir).map((c) => c.path)).not.toContain(`${setup.file}.4.gz`);
  });

  test("compress: lines read but not shipped (the upload failed) before the file was compressed are shipped from the .gz", async () => {
    const setup = newSetup();
    const refused = { description: "down", put: () => Promise.reject(new Error("connection refused")) };
    write(setup, 1, 3);
    await ship(setup);
    write(setup, 4, 6);
    expect((await ship(setup, { sink: refused })).ok).toBe(false);
    expect(readCheckpoints(setup.stateDir)[0]).toMatchObject({
      offset: Buffer.byteLength(text(range(1, 3))),
      size_seen: Buffer.byteLength(text(range(1, 6))),
    });
    // Compressed as it was read: the .gz holds no byte more than what was read.
    rotateLog(setup.file, "compress", 3, 1);
    write(setup, 7, 8);
    expect((await ship(setup)).ok).toBe(true);
    expect(shipped(setup)).toEqual(range(1, 8));
  });

  test("copytruncate removing the oldest copy first: the copy on the removed copy's inode is matched by fingerprint, never read twice", async () => {
    const setup = newSetup();
    write(setup, 1, 5);
    await ship(setup);
    rotations(setup, "copytruncate-oldest-first", 1, [
      [6, 6],
      [7, 10],
    ]);
    await ship(setup);
    const copy = readCheckpoints(setup.stateDir).find((c) => c.path === `${setup.file}.1`)!;
    write(setup, 11, 12);
    rotations(setup, "copytruncate-oldest-first", 1, [
      [13, 13],
      [14, 15],
    ]);
    // .1 now holds 6-12 (copied from the live file), on the inode of the removed copy of 1-6
    // when the filesystem gave it back; else the checkpoint is made to claim it, as it would.
    const inode = String(statSync(`${setup.file}.1`).ino);
    if (inode !== copy.ino) {
      const state = JSON.parse(readFileSync(checkpointPath(setup.stateDir), "utf8"));
      state.files.find((c: { path: string }) => c.path === copy.path).ino = inode;
      writeFileSync(checkpointPath(setup.stateDir), JSON.stringify(state));
    }
    const run = await said(() => ship(setup));
    expect(run.warnings).toEqual([]);
    expect(run.infos).toContain(
      `${setup.file}.1 is a new file on the inode of ${setup.file}.1, which was deleted`,
    );
    expect(shipped(setup)).toEqual(range(1, 15));
    expect((await ship(setup)).events).toBe(0);
  });

  test("copytruncate caught copying: a copy shorter than the fingerprint is not a new file; once made, it is finished as the copy", async () => {
    const setup = newSetup();
    write(setup, 1, 10);
    await ship(setup);
    const copying = readFileSync(setup.file);
    writeFileSync(`${setup.file}.1`, copying.subarray(0, 500));
    expect((await ship(setup)).events).toBe(0);
    writeFileSync(`${setup.file}.1`, copying);
    truncateSync(setup.file, 0);
    write(setup, 11, 12);
    await ship(setup);
    expect(shipped(setup)).toEqual(range(1, 12));
    expect(readCheckpoints(setup.stateDir).map((c) => c.path)).toEqual([`${setup.file}.1`, setup.file]);
  });

  test("truncation by hand while down: the lines truncated away are gone, the rest shipped once", async () => {
    const setup = newSetup();
    write(setup, 1, 3);
    await ship(setup);
    const destroyed = rotations(setup, "truncate", 1, [
      [4, 5],
      [6, 30],
    ]);
    expect(destroyed).toEqual(range(1, 5));
    await ship(setup);
    expect(shipped(setup)).toEqual([...range(1, 3), ...range(6, 30)]);
  });
});

describe("compressed files being written, history, --backfill", () => {
  test("a .gz without its end (logrotate compressing) is not read, not half: it is shipped whole once complete", async () => {
    const setup = newSetup();
    write(setup, 1, 3);
    await ship(setup);
    const gzip = gzipSync(text(range(4, 400)));
    const half = Math.floor(gzip.length / 2);
    writeFileSync(`${setup.file}.1.gz`, gzip.subarray(0, half));
    write(setup, 401, 402);
    const early = await said(() => ship(setup));
    expect(early.result.ok).toBe(true);
    expect(early.infos).toContainEqual(
      expect.stringMatching(new RegExp(`^${setup.file}\\.1\\.gz is not a complete gzip file yet `)),
    );
    expect(shipped(setup)).toEqual([...range(1, 3), 401, 402]);
    appendFileSync(`${setup.file}.1.gz`, gzip.subarray(half));
    await ship(setup);
    expect(shipped(setup)).toEqual(range(1, 402));
    expect((await ship(setup)).events).toBe(0);
  });

  test("a shipped rotation removed while a .gz beside it is still being written: its removal is no loss, also a run later", async () => {
    const setup = newSetup();
    write(setup, 1, 3);
    await ship(setup);
    renameSync(setup.file, `${setup.file}.1`);
    write(setup, 4, 5);
    await ship(setup);
    expect(shipped(setup)).toEqual(range(1, 5));
    // logrotate removes the shipped rotation while it compresses another file: this run cannot
    // tell yet whether the .gz is that rotation's copy, so it leaves the rotation's record alone.
    const gzip = gzipSync(text(range(1, 3)));
    writeFileSync(`${setup.file}.2.gz`, gzip.subarray(0, Math.floor(gzip.length / 2)));
    rmSync(`${setup.file}.1`);
    const during = await said(() => ship(setup));
    expect(during.warnings).toEqual([]);
    // The half-written .gz goes too (rotate count): the rotation is gone, and was shipped whole.
    rmSync(`${setup.file}.2.gz`);
    const after = await said(() => ship(setup));
    expect(after.warnings).toEqual([]);
    expect(after.infos).toContainEqual(
      expect.stringMatching(
        new RegExp(`^${setup.file}\\.1 was removed after all \\d+ bytes seen in it were shipped`),
      ),
    );
    expect((await collectStatus(setup.config)).logs_lost).toEqual([]);
    expect(shipped(setup)).toEqual(range(1, 5));
  });

  test("rotated files older than the first run are history: left alone; --backfill ships them (plain, gzip, dated), once", async () => {
    const setup = newSetup();
    const hourAgo = Date.now() / 1000 - 3600;
    writeFileSync(`${setup.file}-20240227`, text(range(100, 102)));
    writeFileSync(`${setup.file}-20240228.gz`, gzipSync(text(range(103, 105))));
    // One cut short long ago: it will never be complete, said as a warning.
    writeFileSync(`${setup.file}-20240226.gz`, gzipSync(text(range(200, 300))).subarray(0, 200));
    for (const name of ["-20240226.gz", "-20240227", "-20240228.gz"]) {
      utimesSync(`${setup.file}${name}`, hourAgo, hourAgo);
    }
    write(setup, 1, 3);
    await ship(setup);
    expect(shipped(setup)).toEqual(range(1, 3));
    rotations(setup, "dateext", 5, [
      [4, 5],
      [6, 7],
    ]);
    await ship(setup);
    expect(shipped(setup)).toEqual(range(1, 7));
    const backfill = await said(() => ship(setup, { backfill: true }));
    expect(backfill.warnings).toEqual([
      expect.stringMatching(
        new RegExp(`^${setup.file}-20240226\\.gz is not a complete gzip file .* its lines cannot be read$`),
      ),
    ]);
    expect(shipped(setup)).toEqual([...range(1, 7), ...range(100, 105)]);
    expect((await ship(setup, { backfill: true })).events).toBe(0);
  });
});

describe("--follow", () => {
  test("a followed file compressed and deleted (compress): read to its end, then its .gz is followed, never shipped again", async () => {
    const setup = newSetup();
    write(setup, 1, 5);
    const stop = new AbortController();
    const running = ship(setup, { follow: true, signal: stop.signal });
    const until = async (n: number) => {
      for (let i = 0; i < 200 && shipped(setup).length < n; i++) await Bun.sleep(20);
    };
    await until(5);
    write(setup, 6, 7);
    rotateLog(setup.file, "compress", 3, 1);
    write(setup, 8, 9);
    await until(9);
    await Bun.sleep(300);
    stop.abort();
    expect((await running).ok).toBe(true);
    expect(readCheckpoints(setup.stateDir).map((c) => c.path)).toEqual([`${setup.file}.1.gz`, setup.file]);
    expect((await ship(setup)).events).toBe(0);
    expect(shipped(setup)).toEqual(range(1, 9));
  });
});

describe("lines lost", () => {
  test("files removed or truncated with lines read but not shipped: a warning with the count; status counts them per log (text and JSON)", async () => {
    const setup = newSetup();
    const refused = { description: "down", put: () => Promise.reject(new Error("connection refused")) };
    write(setup, 1, 3);
    await ship(setup);
    write(setup, 4, 9);
    appendFileSync(setup.file, '{"partial": ');
    expect((await said(() => ship(setup, { sink: refused }))).result.ok).toBe(false);
    expect(readCheckpoints(setup.stateDir)[0]).toMatchObject({
      offset: Buffer.byteLength(text(range(1, 3))),
      lines_seen: 7,
    });
    // Rotated, and the rotation removed while log-ship is down.
    renameSync(setup.file, `${setup.file}.1`);
    write(setup, 10, 11);
    rmSync(`${setup.file}.1`);
    const removedBytes = Buffer.byteLength(text(range(4, 9))) + 12;
    const removed = await said(() => ship(setup));
    expect(removed.warnings).toEqual([
      `${setup.file} is gone (deleted, or compressed after rotation) before log-ship finished it: 7 line(s) (${removedBytes} bytes) seen in it were not shipped`,
    ]);
    // Truncated by hand after a failed upload.
    write(setup, 12, 13);
    expect((await said(() => ship(setup, { sink: refused }))).result.ok).toBe(false);
    truncateSync(setup.file, 0);
    write(setup, 14, 30);
    const truncatedBytes = Buffer.byteLength(text(range(12, 13)));
    const truncated = await said(() => ship(setup));
    expect(truncated.warnings).toEqual([
      `${setup.file} was truncated or replaced: reading it again from its start; 2 line(s) (${truncatedBytes} bytes) seen in it before were not shipped`,
    ]);
    expect(shipped(setup)).toEqual([1, 2, 3, 10, 11, ...range(14, 30)]);
    const status = await collectStatus(setup.config);
    const bytes = removedBytes + truncatedBytes;
    expect(status.logs_lost).toEqual([
      { log: setup.file, lines: 9, bytes, files: 2, uncounted_files: 0, last: expect.any(String) },
    ]);
    expect(formatStatus(status)).toContain(
      `\n${setup.file}: 9 line(s) (${bytes.toLocaleString("en-US")} bytes) lost in 2 file(s) removed or truncated before they were shipped; the last `,
    );
  });
});

// Found under a writer, SIGKILLs and downtime (test/integration/logship-downtime.test.ts), each
// made to happen here at the moment it needs.
describe("exactly once under copytruncate, truncation and compression (issue 16)", () => {
  /** Stores each object, then fails: log-ship killed between an upload and its checkpoint. */
  const storedThenKilled = (setup: LogShipSetup): LogSink => {
    const local = createLogSink(setup.config);
    return {
      description: "killed after the upload",
      put: async (key, body) => {
        await local.put(key, body);
        throw new Error("killed before the checkpoint");
      },
    };
  };

  test("a file empty when first seen: its fingerprint grows with what is read before the first commit, so a copytruncate after it is found, not read from the middle", async () => {
    const setup = newSetup();
    const other = join(setup.logs, "other.log");
    const toml = setup.toml.replace(`paths = ["${setup.file}"]`, `paths = ["${other}", "${setup.file}"]`);
    const config = parseConfig(toml, setup.configFile, {}).config;
    writeFileSync(other, text(range(1001, 1003)));
    writeFileSync(setup.file, "");
    // other.log is read first; its upload is when the writer starts writing tracking.log, which
    // was found empty (its fingerprint: no byte) before any file was read.
    const local = createLogSink(config);
    let written = false;
    const sink: LogSink = {
      description: local.description,
      put: async (key, body) => {
        await local.put(key, body);
        if (!written) write(setup, 1, 10);
        written = true;
      },
    };
    await shipLogs(config, { sink });
    expect(shipped(setup)).toEqual([...range(1, 10), ...range(1001, 1003)]);
    expect(readCheckpoints(setup.stateDir).find((c) => c.path === setup.file)?.fingerprint_length).toBe(1024);
    rotateLog(setup.file, "copytruncate", 3, 1);
    write(setup, 11, 40);
    const run = await said(() => shipLogs(config, {}));
    expect(run.warnings).toEqual([]);
    expect(shippedLines(setup.datalake).filter((line) => !line.startsWith('{"name"'))).toEqual([]);
    expect(shipped(setup)).toEqual([...range(1, 40), ...range(1001, 1003)]);
  });

  test("compress: a file whose first batch was stored but not committed (killed between the two) is finished from its .gz under the same keys, not counted lost and shipped again", async () => {
    const setup = newSetup();
    writeFileSync(setup.file, "");
    await ship(setup);
    write(setup, 1, 3);
    expect((await ship(setup, { sink: storedThenKilled(setup) })).ok).toBe(false);
    expect(readCheckpoints(setup.stateDir)[0]).toMatchObject({ offset: 0, file_id: expect.any(String) });
    rotateLog(setup.file, "compress", 3, 1);
    write(setup, 4, 5);
    const run = await said(() => ship(setup));
    expect(run.warnings).toEqual([]);
    expect(shipped(setup)).toEqual(range(1, 5));
    expect(shippedObjects(setup.datalake)).toHaveLength(2);
  });

  test("compress: a .gz so new that not even the fingerprint's bytes are in it yet is waited for, not taken for another file (and the checkpointed one for lost)", async () => {
    const setup = newSetup();
    write(setup, 1, 3);
    await ship(setup);
    write(setup, 4, 6);
    // logrotate caught compressing while log-ship was down: .1 renamed, its .gz begun.
    renameSync(setup.file, `${setup.file}.1`);
    const gzip = gzipSync(readFileSync(`${setup.file}.1`));
    writeFileSync(`${setup.file}.1.gz`, gzip.subarray(0, 12));
    rmSync(`${setup.file}.1`);
    write(setup, 7, 8);
    const early = await said(() => ship(setup));
    expect(early.warnings).toEqual([]);
    // 7-8 too, unless the new live file took the inode of the one compressed: then it waits too.
    expect(shipped(setup).slice(0, 3)).toEqual(range(1, 3));
    writeFileSync(`${setup.file}.1.gz`, gzip);
    const late = await said(() => ship(setup));
    expect(late.warnings).toEqual([]);
    expect(shipped(setup)).toEqual(range(1, 8));
    expect((await ship(setup)).events).toBe(0);
  });

  test("truncated by hand and regrown past the offset with the same first bytes: new content (the bytes before the offset differ), read from its start under a file id of its own", async () => {
    const setup = newSetup();
    // A first line that fills the fingerprint and is no event: both contents start with it.
    const header = `${"-".repeat(2000)}\n`;
    writeFileSync(setup.file, header + text(range(1, 3)));
    await ship(setup);
    truncateSync(setup.file, 0);
    writeFileSync(setup.file, header + text(range(4, 20)));
    const run = await said(() => ship(setup));
    expect(run.warnings).toEqual([
      `${setup.file} was truncated or replaced: reading it again from its start`,
    ]);
    expect(shippedLines(setup.datalake).filter((line) => !line.startsWith('{"name"'))).toEqual([]);
    expect(shipped(setup)).toEqual(range(1, 20));
    const ids = shippedObjects(setup.datalake).map((o) => o.fileId);
    expect(new Set(ids).size).toBe(2);
    expect(readCheckpoints(setup.stateDir)[0]?.tail).toMatch(/^[0-9a-f]{64}$/);
  });
});

describe("a rotation under way while a run looks", () => {
  test("a file renamed between being found and being opened is looked for again, not a file that cannot be read", async () => {
    const setup = newSetup();
    write(setup, 1, 20);
    expect(await ship(setup)).toMatchObject({ ok: true, events: 20 });
    write(setup, 21, 30);
    renameSync(setup.file, `${setup.file}.1`);
    write(setup, 31, 40);
    expect(await ship(setup)).toMatchObject({ ok: true, events: 20 });
    // Another process renames the rotated file back and forth as fast as it can, while runs
    // find it by its inode and open it: now and then it has gone from the name just found.
    const flip = `${setup.file}.1.flip`;
    const rotator = Bun.spawn(
      [
        process.execPath,
        "-e",
        `const { renameSync } = require("node:fs"); const [a, b] = process.argv.slice(1); const end = Date.now() + 4000;
         while (Date.now() < end) { renameSync(a, b); renameSync(b, a); }`,
        `${setup.file}.1`,
        flip,
      ],
      { stdout: "ignore", stderr: "inherit" },
    );
    const failed: string[] = [];
    const error = spyOn(log, "error").mockImplementation((message: string) => {
      failed.push(message);
    });
    try {
      for (let run = 0; run < 400 && rotator.exitCode === null; run++) {
        if (run % 10 === 0) write(setup, 41 + run / 10, 41 + run / 10);
        const result = await ship(setup);
        if (!result.ok) failed.push(`run ${run} failed`);
      }
    } finally {
      error.mockRestore();
      rotator.kill();
      await rotator.exited;
    }
    expect(failed).toEqual([]);
    expect(await ship(setup)).toMatchObject({ ok: true });
    // Every line on disk shipped. (Renamed twice while a run lists the directory twice, a file
    // may be missed by both listings and taken for removed, then found again and shipped again:
    // no rotation renames a file twice within microseconds; this one does, to hit the window.)
    const sent = new Set(shipped(setup));
    expect(linesOnDisk(setup.file).filter((seq) => !sent.has(seq))).toEqual([]);
  }, 30_000);
});
