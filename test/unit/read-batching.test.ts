// The low-water mark on a real socket: a local TCP server (and a Unix one) in this process writes,
// a node:net client reads, as mysql2's socket does during a streamed result.
import { afterEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { connect, createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { batchReads, LOW_WATER_BYTES, START_AFTER_BYTES, WAIT_MS } from "../../src/extract/read-batching.ts";

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0)) cleanup();
});

/** A connected pair: the server's end (the writer) and the client's (the reader). */
async function pair(where: { port: 0 } | { path: string }): Promise<{ writer: Socket; reader: Socket }> {
  let accepted!: (socket: Socket) => void;
  const writerReady = new Promise<Socket>((resolve) => {
    accepted = resolve;
  });
  const server: Server = createServer(accepted);
  await new Promise<void>((resolve) => server.listen(where, resolve));
  const address = server.address();
  const reader =
    "path" in where ? connect(where.path) : connect((address as { port: number }).port, "127.0.0.1");
  await new Promise<void>((resolve) => reader.once("connect", resolve));
  const writer = await writerReady;
  cleanups.push(() => {
    reader.destroy();
    writer.destroy();
    server.close();
  });
  return { writer, reader };
}

/** Write `pieces` pieces of `size` bytes, one per turn of the event loop. */
async function writeInPieces(writer: Socket, pieces: number, size: number): Promise<void> {
  for (let i = 0; i < pieces; i++) {
    writer.write(Buffer.alloc(size, i));
    await new Promise((resolve) => setImmediate(resolve));
  }
}

/** Reads (data events) until `bytes` bytes have arrived. */
function readsUntil(reader: Socket, bytes: number, onRead = (_bytes: number) => {}): Promise<number> {
  return new Promise((resolve) => {
    let got = 0;
    let reads = 0;
    reader.on("data", (chunk: Buffer) => {
      onRead(chunk.length);
      reads++;
      got += chunk.length;
      if (got >= bytes) resolve(reads);
    });
  });
}

describe("reads gathered by the socket's low-water mark", () => {
  test("1 MiB written 16 KiB at a time arrives in a few reads, where it took one read a piece without the mark", async () => {
    const plain = await pair({ port: 0 });
    const plainReads = readsUntil(plain.reader, 1 << 20);
    await writeInPieces(plain.writer, 64, 16 << 10);
    expect(await plainReads).toBeGreaterThan(20);

    const batched = await pair({ port: 0 });
    // A timer of a second: a busy machine's slow turns of the loop do not lower the mark here.
    const batching = batchReads(batched.reader, LOW_WATER_BYTES, 1000, 0)!;
    expect(batching).not.toBeNull();
    const batchedReads = readsUntil(batched.reader, 1 << 20, (bytes) => batching.read(bytes));
    await writeInPieces(batched.writer, 64, 16 << 10);
    // 1 MiB / 256 KiB reads (one more when a read took more than the mark).
    expect(await batchedReads).toBeLessThanOrEqual(8);
    batching.stop();
  });

  test("less than the mark, the end of a result, is read within a few ticks of the timer", async () => {
    const { writer, reader } = await pair({ port: 0 });
    const batching = batchReads(reader, LOW_WATER_BYTES, WAIT_MS, 0)!;
    const arrived = readsUntil(reader, 1000, (bytes) => batching.read(bytes));
    const started = performance.now();
    writer.write(Buffer.alloc(1000, 1));
    await arrived;
    expect(performance.now() - started).toBeLessThan(20 * WAIT_MS + 50);
    batching.stop();
  });

  test("a result smaller than START_AFTER_BYTES (a partition, a probe) is read a packet at a time, its end at once", async () => {
    const { writer, reader } = await pair({ port: 0 });
    // With the mark up and a timer of a minute, the end of this result would wait a minute.
    const batching = batchReads(reader, LOW_WATER_BYTES, 60_000)!;
    const reads = readsUntil(reader, START_AFTER_BYTES / 2, (bytes) => batching.read(bytes));
    const started = performance.now();
    await writeInPieces(writer, 32, START_AFTER_BYTES / 64);
    expect(await reads).toBeGreaterThan(10);
    expect(performance.now() - started).toBeLessThan(1000);
    batching.stop();
  });

  test("stopped, a socket reports every packet at once again", async () => {
    const { writer, reader } = await pair({ port: 0 });
    const batching = batchReads(reader, LOW_WATER_BYTES, 60_000, 0)!;
    batching.stop();
    const arrived = readsUntil(reader, 100);
    const started = performance.now();
    writer.write(Buffer.alloc(100, 2));
    await arrived;
    // With the mark still up and a timer of a minute, this would wait a minute.
    expect(performance.now() - started).toBeLessThan(1000);
  });

  test("a Unix socket takes the mark and still reports what arrives; a socket without a descriptor is left alone", async () => {
    const dir = mkdtempSync(join(tmpdir(), "panorama-test-"));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const { writer, reader } = await pair({ path: join(dir, "s.sock") });
    const batching = batchReads(reader, LOW_WATER_BYTES, 60_000, 0);
    const arrived = readsUntil(reader, 1000, (bytes) => batching?.read(bytes));
    writer.write(Buffer.alloc(1000, 3));
    expect(await arrived).toBeGreaterThanOrEqual(1);
    batching?.stop();
    expect(batchReads({})).toBeNull();
    expect(batchReads(null)).toBeNull();
  });
});
