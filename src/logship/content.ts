// Whether one file holds another's content (DESIGN §8: a copy of a file already shipped is not
// shipped again). Their first bytes alone cannot say: plain JSON tracking events start with long
// `context` fields, so different files often share their first kilobyte. Compared byte for byte
// up to the shorter one: a copy being made (copytruncate copying, gzip compressing) is shorter.
import { readSync } from "node:fs";
import { gunzipChunks } from "./gzip.ts";

const CHUNK_BYTES = 256 * 1024;

/** The bytes of an open plain file from its start, chunk by chunk, to its end now. */
async function* plainChunks(fd: number): AsyncGenerator<Uint8Array> {
  let position = 0;
  for (;;) {
    const buffer = new Uint8Array(CHUNK_BYTES);
    const n = readSync(fd, buffer, 0, CHUNK_BYTES, position);
    if (n === 0) return;
    position += n;
    yield buffer.subarray(0, n);
  }
}

/** The uncompressed bytes of an open file from its start; a gzip cut short ends where it is cut. */
export async function* contentChunks(fd: number, gzip: boolean): AsyncGenerator<Uint8Array> {
  if (!gzip) {
    yield* plainChunks(fd);
    return;
  }
  try {
    yield* gunzipChunks(fd);
  } catch {
    // still being written (or damaged): the bytes decoded before are still its first bytes
  }
}

/** Whether two byte streams are equal up to the end of the shorter one (read no further). */
export async function sameUpToShorter(
  a: AsyncIterable<Uint8Array>,
  b: AsyncIterable<Uint8Array>,
): Promise<boolean> {
  const [left, right] = [a[Symbol.asyncIterator](), b[Symbol.asyncIterator]()];
  let x: Uint8Array = new Uint8Array(0);
  let y: Uint8Array = new Uint8Array(0);
  try {
    for (;;) {
      if (x.length === 0) {
        const next = await left.next();
        if (next.done) return true;
        x = next.value;
      } else if (y.length === 0) {
        const next = await right.next();
        if (next.done) return true;
        y = next.value;
      } else {
        const n = Math.min(x.length, y.length);
        if (!Buffer.from(x.buffer, x.byteOffset, n).equals(y.subarray(0, n))) return false;
        x = x.subarray(n);
        y = y.subarray(n);
      }
    }
  } finally {
    // Stopped before an end: release the files' streams.
    await left.return?.();
    await right.return?.();
  }
}
