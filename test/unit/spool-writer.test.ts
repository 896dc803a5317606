// The two spool writers, the stream (one file at a time) and the direct one (partition-scan.ts,
// hundreds at once): the same content makes the same file, manifest hash and byte count, however
// it is cut into writes, since an upload is skipped when the hash is the one stored last. A big
// file's write-back is started while it is written (sync_file_range) and it is flushed to the disk
// every 32 MiB of the spool (fdatasync on a pool thread, disk-flush.ts), which changes no byte; a
// file closed while the flush runs on it is closed by the flush.
import { afterEach, expect, test } from "bun:test";
import {
  closeSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  writeSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { diskFlushes } from "../../src/datalake/disk-flush.ts";
import { SpoolWriter } from "../../src/datalake/spool.ts";
import { startWriteback } from "../../src/state/libc.ts";

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function content(bytes: number, seed: number): Buffer {
  const out = Buffer.alloc(bytes);
  let s = seed;
  for (let i = 0; i < bytes; i++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    out[i] = 32 + ((s >>> 24) % 90);
  }
  return out;
}

async function written(open: typeof SpoolWriter.open, data: Buffer, maxPiece: number, seed: number) {
  const spool = mkdtempSync(join(tmpdir(), "panorama-test-"));
  dirs.push(spool);
  const key = "openedx/t/lms=x/course_id=c/t.csv";
  const writer = await open(spool, key);
  let s = seed;
  for (let at = 0; at < data.length; ) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    const n = 1 + (s % maxPiece);
    // A view of a buffer the caller reuses at once: the writer must copy what it keeps.
    const piece = Buffer.from(data.subarray(at, at + n));
    writer.write(piece, 1);
    piece.fill(0);
    at += n;
  }
  const entry = await writer.commit({ table: "t", partitions: [["course_id", "c"]] });
  const file = readFileSync(join(spool, key));
  const mode = statSync(join(spool, key)).mode & 0o777;
  const leftovers = (readdirSync(spool, { recursive: true }) as string[]).filter((n) =>
    n.includes(".partial-"),
  );
  return { entry, file, mode, leftovers };
}

test("a direct writer's file, hash and bytes are a stream writer's, for every way of cutting the writes", async () => {
  const open = SpoolWriter.open.bind(SpoolWriter);
  const direct = SpoolWriter.openDirect.bind(SpoolWriter);
  // Empty, under one piece, exactly one 256 KiB hash piece, and several with a tail.
  for (const size of [0, 100, 1 << 18, 3 * (1 << 18) + 12_345]) {
    const data = content(size, size + 1);
    const reference = await written(open, data, 70_000, 1);
    expect(reference.file.equals(data)).toBe(true);
    for (const [maxPiece, seed] of [
      [1_000, 2],
      [9_000, 3],
      [40_000, 4],
      [300_000, 5],
    ] as const) {
      const got = await written(direct, data, maxPiece, seed);
      expect(got.file.equals(data)).toBe(true);
      expect(got.entry.hash).toBe(reference.entry.hash);
      expect(got.entry.bytes).toBe(size);
      expect(got.mode).toBe(0o600);
      expect(got.leftovers).toEqual([]);
    }
  }
});

test("an aborted direct writer leaves nothing", async () => {
  const spool = mkdtempSync(join(tmpdir(), "panorama-test-"));
  dirs.push(spool);
  const writer = await SpoolWriter.openDirect(spool, "openedx/t/lms=x/t.csv");
  writer.write(content(100_000, 9), 10);
  await writer.abort();
  expect(
    (readdirSync(spool, { recursive: true }) as string[]).filter(
      (n) => n.endsWith(".csv") || n.includes(".partial-"),
    ),
  ).toEqual([]);
});

test("a file written past write-back starts (every 8 MiB) and a flush to the disk (32 MiB) keeps every byte, by both writers", async () => {
  const data = content(40 * (1 << 20) + 1_234, 13);
  const reference = await written(SpoolWriter.open.bind(SpoolWriter), data, 1 << 20, 8);
  expect(reference.file.equals(data)).toBe(true);
  expect(reference.entry.bytes).toBe(data.length);
  const direct = await written(SpoolWriter.openDirect.bind(SpoolWriter), data, 300_000, 9);
  expect(direct.file.equals(data)).toBe(true);
  expect(direct.entry.hash).toBe(reference.entry.hash);
  expect(direct.leftovers).toEqual([]);
});

/** What this process's descriptors have open under `dir` (other tests' descriptors are elsewhere). */
function openUnder(dir: string): string[] {
  const open: string[] = [];
  for (const fd of readdirSync("/proc/self/fd")) {
    try {
      const target = readlinkSync(`/proc/self/fd/${fd}`);
      if (target.startsWith(`${dir}/`)) open.push(target);
    } catch {
      // closed since it was listed (the listing's own descriptor, for one)
    }
  }
  return open;
}

async function flushDone(): Promise<void> {
  for (let i = 0; i < 500 && diskFlushes().running; i++) await Bun.sleep(10);
  expect(diskFlushes().running).toBe(false);
}

test("a file committed or aborted while the disk flush runs on it is closed by the flush, and nothing else is", async () => {
  await flushDone();
  const spool = mkdtempSync(join(tmpdir(), "panorama-test-"));
  dirs.push(spool);
  const piece = content(1 << 20, 14);
  for (const end of ["commit", "abort"] as const) {
    const key = `openedx/t/lms=x/${end}.csv`;
    const writer = await SpoolWriter.open(spool, key);
    // 33 MiB: the write-back started at 32 MiB sets off the flush, on this file's descriptor.
    for (let i = 0; i < 33; i++) writer.write(piece, 1);
    expect(diskFlushes().running).toBe(true);
    if (end === "commit") {
      const entry = await writer.commit({ table: "t", partitions: [] });
      expect(entry.bytes).toBe(33 << 20);
      expect(statSync(join(spool, key)).size).toBe(33 << 20);
    } else {
      await writer.abort();
      expect(readdirSync(spool, { recursive: true }).filter((n) => String(n).includes(".partial-"))).toEqual(
        [],
      );
    }
    // Still open while the flush runs on it: its number is not free for the next file yet.
    if (diskFlushes().running) expect(openUnder(spool)).toHaveLength(1);
    await flushDone();
    expect(openUnder(spool)).toEqual([]);
  }
});

test("small files add up to a flush of the disk: every file whole, no descriptor left open", async () => {
  await flushDone();
  // 24 partition files of 1.5 MiB: 36 MiB started at their commits, one flush on the way.
  const flushes = diskFlushes().started;
  const spool = mkdtempSync(join(tmpdir(), "panorama-test-"));
  dirs.push(spool);
  for (let i = 0; i < 24; i++) {
    const data = content(3 << 19, 100 + i);
    const key = `openedx/t/lms=x/course_id=c${i}/t.csv`;
    const writer = await SpoolWriter.openDirect(spool, key);
    writer.write(data, 1);
    const entry = await writer.commit({ table: "t", partitions: [["course_id", `c${i}`]] });
    expect(entry.bytes).toBe(data.length);
    expect(readFileSync(join(spool, key)).equals(data)).toBe(true);
  }
  expect(diskFlushes().started).toBe(flushes + 1);
  await flushDone();
  expect(openUnder(spool)).toEqual([]);
});

test("startWriteback starts a regular file's write-back, and says -1 where it cannot", () => {
  const dir = mkdtempSync(join(tmpdir(), "panorama-test-"));
  dirs.push(dir);
  const fd = openSync(join(dir, "f"), "w");
  writeSync(fd, content(1 << 20, 12));
  expect(startWriteback(fd, 0, 1 << 20)).toBe(0);
  closeSync(fd);
  // A closed descriptor: an error code, never an exception (the write-back is only a head start).
  expect(startWriteback(fd, 0, 1 << 20)).toBe(-1);
});
