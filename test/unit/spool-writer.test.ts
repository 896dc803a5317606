// The two spool writers, the stream (one file at a time) and the direct one (partition-scan.ts,
// hundreds at once): the same content makes the same file, manifest hash and byte count, however
// it is cut into writes, since an upload is skipped when the hash is the one stored last. A big
// file's write-back is started while it is written (sync_file_range) and it is flushed to the disk
// every 32 MiB (fdatasync on a pool thread), which changes no byte; a flush that fails fails the
// file's commit.
import { afterEach, expect, test } from "bun:test";
import {
  closeSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
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
  const direct = await written(SpoolWriter.openDirect.bind(SpoolWriter), data, 300_000, 9);
  expect(direct.file.equals(data)).toBe(true);
  expect(direct.entry.hash).toBe(reference.entry.hash);
  expect(direct.leftovers).toEqual([]);
});

test("a flush that fails fails the commit with the file's key, and the abort leaves nothing", async () => {
  const spool = mkdtempSync(join(tmpdir(), "panorama-test-"));
  dirs.push(spool);
  const key = "openedx/t/lms=x/t.csv";
  const writer = await SpoolWriter.open(spool, key);
  // The writer's descriptor swapped for one that cannot be synced (fdatasync on /dev/null says
  // EINVAL), as a disk's error would: the writes succeed, the flush does not.
  const inside = writer as unknown as { fd: number };
  closeSync(inside.fd);
  inside.fd = openSync("/dev/null", "w");
  const piece = content(1 << 20, 14);
  for (let i = 0; i < 33; i++) writer.write(piece, 1);
  await expect(writer.commit({ table: "t", partitions: [] })).rejects.toThrow(
    `${key}: cannot write to the spool: EINVAL`,
  );
  await writer.abort();
  expect(
    readdirSync(spool, { recursive: true }).filter(
      (n) => String(n).endsWith(".csv") || String(n).includes(".partial-"),
    ),
  ).toEqual([]);
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
