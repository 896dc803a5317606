// mongodb-read-release.ts against the pinned driver's own message framing (SizedMessageTransform):
// messages cut across socket reads at every kind of boundary come out byte for byte, a read is
// freed only once every byte of it has been copied out, and one still in the pool is left alone.
import { expect, test } from "bun:test";
// @ts-expect-error: the driver publishes no declarations for its internal modules
import * as driverConnection from "mongodb/lib/cmap/connection.js";
import { releaseConsumedReads } from "../../src/extract/mongodb-read-release.ts";

type Framing = {
  write(chunk: Buffer, callback: (error?: Error | null) => void): boolean;
  on(event: "data", listener: (message: Buffer) => void): void;
};
const { SizedMessageTransform } = driverConnection as {
  SizedMessageTransform: new (options: { connection: { delayedTimeoutId: null } }) => Framing;
};

/** A wire message: its int32 length, then bytes that name it. */
function message(n: number, size: number): Buffer {
  const bytes = Buffer.alloc(size, n);
  bytes.writeInt32LE(size, 0);
  return bytes;
}

/** A socket read of its own, as Bun hands them: a fresh buffer. */
const read = (bytes: Buffer) => Buffer.from(new Uint8Array(bytes));

async function feed(framing: Framing, reads: Buffer[]): Promise<void> {
  for (const chunk of reads)
    await new Promise<void>((resolve, reject) => framing.write(chunk, (e) => (e ? reject(e) : resolve())));
}

test("the pinned driver's framing is wrapped; wrapping twice is wrapping once", () => {
  expect(releaseConsumedReads()).toBe(true);
  expect(releaseConsumedReads()).toBe(true);
});

test("messages cut across reads come out whole; a read is freed once copied, not before", async () => {
  releaseConsumedReads();
  const framing = new SizedMessageTransform({ connection: { delayedTimeoutId: null } });
  const out: Buffer[] = [];
  framing.on("data", (m) => out.push(Buffer.from(m)));
  const messages = [message(1, 40), message(2, 3000), message(3, 7), message(4, 100_000), message(5, 9)];
  const stream = Buffer.concat(messages);
  // Cuts inside a length prefix (2 bytes in), mid-message, on a boundary, and one read holding
  // several messages and the start of the next.
  const cuts = [2, 40, 41, 1000, 3040, 3047 + 2, 3047 + 50_000, stream.length - 5, stream.length];
  const reads: Buffer[] = [];
  let from = 0;
  for (const cut of cuts) {
    reads.push(read(stream.subarray(from, cut)));
    from = cut;
  }
  // All but the last read: its first bytes (message 5's) are still waiting for the rest.
  await feed(framing, reads.slice(0, -1));
  const pendingRead = reads.at(-2)!;
  expect(pendingRead.buffer.byteLength).toBeGreaterThan(0);
  for (const done of reads.slice(0, -2)) expect(done.buffer.byteLength).toBe(0);
  await feed(framing, reads.slice(-1));
  expect(out.map((m) => m.toString("hex"))).toEqual(messages.map((m) => m.toString("hex")));
  for (const done of reads) expect(done.buffer.byteLength).toBe(0);
});

test("a read that is a view into a larger buffer is never freed", async () => {
  releaseConsumedReads();
  const framing = new SizedMessageTransform({ connection: { delayedTimeoutId: null } });
  const out: Buffer[] = [];
  framing.on("data", (m) => out.push(Buffer.from(m)));
  const shared = Buffer.concat([message(6, 64), Buffer.alloc(64, 0xee)]);
  const view = shared.subarray(0, 64);
  await feed(framing, [view]);
  expect(out.map((m) => m.toString("hex"))).toEqual([message(6, 64).toString("hex")]);
  expect(shared.buffer.byteLength).toBeGreaterThan(0);
  expect(shared.subarray(64).every((b) => b === 0xee)).toBe(true);
});
