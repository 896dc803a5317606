// Frees the MongoDB driver's socket reads as soon as it has copied them into a message. Bun hands
// the driver a fresh buffer per read, and the driver copies the reads into one buffer per message
// (SizedMessageTransform and its BufferPool, mongodb/lib/cmap/connection.js); the reads then wait
// for the collector, and the allocator takes fresh pages meanwhile. Freed at once (the ArrayBuffer
// detached with transfer(0), as mysql.ts does), their memory serves the next reads: the course
// structures extract peaked at 147 MiB in most runs without this, 128-136 MiB with it.
// @ts-expect-error: the driver publishes no declarations for its internal modules
import * as driverConnection from "mongodb/lib/cmap/connection.js";

type Transform = (chunk: Buffer, encoding: string, callback: (error?: Error) => void) => void;
interface SizedMessageTransform {
  prototype: { _transform: Transform; bufferPool?: { length: number } };
}

/** Per transform: the reads not yet copied whole, oldest first, and the bytes copied of the first. */
const pending = new WeakMap<object, { reads: Buffer[]; copied: number }>();
let wrapped = false;

function release(read: Buffer): void {
  // Only a buffer of its own: a view into a larger one may share it with something else.
  if (read.byteOffset === 0 && read.buffer.byteLength === read.length) {
    (read.buffer as ArrayBuffer).transfer(0);
  }
}

/**
 * Wrap the driver's message framing once, so that every read it has consumed is freed. False
 * when the driver's internals are not what this expects (another version): nothing is wrapped,
 * and the reads are left to the collector, as without this module.
 */
export function releaseConsumedReads(): boolean {
  if (wrapped) return true;
  // A static import: the compiled executable bundles it with the driver, as the same module.
  const { SizedMessageTransform } = driverConnection as { SizedMessageTransform?: SizedMessageTransform };
  const proto = SizedMessageTransform?.prototype;
  if (typeof proto?._transform !== "function") return false;
  const frame = proto._transform;
  wrapped = true;
  proto._transform = function (this: { bufferPool: { length: number } }, chunk, encoding, callback) {
    const state = pending.get(this) ?? { reads: [], copied: 0 };
    pending.set(this, state);
    state.reads.push(chunk);
    const held = this.bufferPool.length + chunk.length;
    frame.call(this, chunk, encoding, callback);
    // The pool gives bytes out in arrival order: what left it finished the oldest reads first.
    let copied = state.copied + held - this.bufferPool.length;
    while (state.reads.length > 0 && state.reads[0]!.length <= copied) {
      const read = state.reads.shift()!;
      copied -= read.length;
      release(read);
    }
    state.copied = copied;
  };
  return true;
}
