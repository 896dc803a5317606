// Rotations compressed by logrotate (`tracking.log.2.gz`): told apart by their first bytes,
// read as a stream of their uncompressed bytes (DESIGN §8: offsets and fingerprints count those),
// and read only once whole. logrotate compresses while log-ship may run: a stream without its end
// is a file still being written, not one to ship half of and checkpoint as done.
// The platform's DecompressionStream: no zlib module to load, memory bounded by the stream.
import { readSync } from "node:fs";
import { FINGERPRINT_BYTES, FilePrefix, readPrefix, TAIL_BYTES, tailLength } from "./tail.ts";

const GZIP_MAGIC = [0x1f, 0x8b];
const GZIP_NAME = /\.gz$/;
const CHUNK_BYTES = 256 * 1024;

/** Whether a file of this name is to be read as gzip (when its first bytes say so). */
export function hasGzipName(path: string): boolean {
  return GZIP_NAME.test(path);
}

/**
 * What a `.gz` file is now: gzip, plain (a plain file renamed to a `.gz` name keeps being read
 * as it was), or empty (gzip has just created it: nothing to tell yet).
 */
export function gzipKind(fd: number): "gzip" | "plain" | "empty" {
  const head = readPrefix(fd, 2);
  if (head.length === 0) return "empty";
  return head[0] === GZIP_MAGIC[0] && head[1] === GZIP_MAGIC[1] ? "gzip" : "plain";
}

/** The compressed bytes of the open file, from its start, as a stream. */
function compressed(fd: number): ReadableStream<Uint8Array<ArrayBuffer>> {
  let position = 0;
  return new ReadableStream<Uint8Array<ArrayBuffer>>({
    pull(controller) {
      // A fresh buffer each time: the decompressor may still hold the previous one.
      const buffer = new Uint8Array(CHUNK_BYTES);
      const n = readSync(fd, buffer, 0, CHUNK_BYTES, position);
      position += n;
      if (n === 0) controller.close();
      else controller.enqueue(buffer.subarray(0, n));
    },
  });
}

/**
 * The uncompressed bytes of the open gzip file, from its start, chunk by chunk. Throws at the
 * end when the stream is cut short (still being written) or damaged.
 */
export async function* gunzipChunks(fd: number): AsyncGenerator<Uint8Array> {
  const reader = compressed(fd).pipeThrough(new DecompressionStream("gzip")).getReader();
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      if (value.length > 0) yield value;
    }
  } finally {
    // Stopped early (the caller broke off): release the file's stream.
    await reader.cancel().catch(() => {});
  }
}

/** The first FINGERPRINT_BYTES of the uncompressed content (fewer when shorter or cut short). */
export async function gzipPrefix(fd: number): Promise<FilePrefix> {
  const parts: Uint8Array[] = [];
  let length = 0;
  try {
    for await (const chunk of gunzipChunks(fd)) {
      parts.push(chunk);
      length += chunk.length;
      if (length >= FINGERPRINT_BYTES) break;
    }
  } catch {
    // cut short or damaged: the bytes decoded before are still the file's first bytes
  }
  return new FilePrefix(Buffer.concat(parts).subarray(0, FINGERPRINT_BYTES));
}

/**
 * A whole gzip file's uncompressed size, with the tailLength(`at`) uncompressed bytes before `at`
 * (null when it holds fewer than `at`), or why it cannot be read (yet).
 */
export type GzipMeasure =
  | { complete: true; content: number; before: Uint8Array | null }
  | { complete: false; why: string };

/** Reads the whole stream once: its uncompressed size when it is complete. */
export async function measureGzip(fd: number, at = 0): Promise<GzipMeasure> {
  let content = 0;
  let before: Uint8Array | null = at === 0 ? new Uint8Array(0) : null;
  // the last TAIL_BYTES before the chunk being read
  let last: Uint8Array = new Uint8Array(0);
  try {
    for await (const chunk of gunzipChunks(fd)) {
      const end = content + chunk.length;
      if (before === null && end >= at) {
        const joined = Buffer.concat([last, chunk.subarray(0, at - content)]);
        before = joined.subarray(joined.length - tailLength(at));
      }
      last =
        chunk.length >= TAIL_BYTES
          ? chunk.slice(chunk.length - TAIL_BYTES)
          : Buffer.concat([last, chunk]).subarray(-TAIL_BYTES);
      content = end;
    }
    return { complete: true, content, before };
  } catch (error) {
    return { complete: false, why: (error as Error).message };
  }
}
