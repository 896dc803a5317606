// Reads of a big streamed result gathered into a few large ones. A server that sends rows as fast
// as it can write them woke this process at every 16 KiB it sent (MariaDB's net_buffer_length):
// 6,000 to 15,000 wake-ups for 1 M rows, each a read, a JS call and a write of a few rows, and a
// wake-up the server paid for on its side of the loopback. Once a result has brought
// START_AFTER_BYTES, the socket's low-water mark is set and the kernel reports it readable once
// LOW_WATER_BYTES have arrived: the same 1 M rows cost 1,700 wake-ups and a quarter less CPU
// here. A tick of the timer without a read lowers the mark back to a byte, so that the end of the
// result, or a server slower than the mark, is read at once; the next read raises it again. A
// smaller result (one partition of a watermark window, a probe) is read as before: its end would
// wait for a tick, query after query.
import { setReceiveLowWater } from "../state/libc.ts";

export const LOW_WATER_BYTES = 256 << 10;
/** what a result brings, read a packet at a time, before its reads are gathered */
export const START_AFTER_BYTES = 1 << 20;
/** how long a read may wait for the low-water mark */
export const WAIT_MS = 2;

export interface ReadBatching {
  /** `bytes` were read from the socket. */
  read(bytes: number): void;
  /** Back to a read at every packet (the connection goes on with other queries). */
  stop(): void;
}

/**
 * Gather the reads of `socket` (a node:net socket, whose descriptor Bun has at `_handle.fd`)
 * once `startAfter` bytes were read, or null when its descriptor is not known, or (`startAfter`
 * 0) the mark cannot be set on it: reads then stay as they are, as they do when a later mark is
 * refused. A Unix socket takes the mark but its poll does not heed it: nothing changes there.
 */
export function batchReads(
  socket: unknown,
  lowWater = LOW_WATER_BYTES,
  waitMs = WAIT_MS,
  startAfter = START_AFTER_BYTES,
): ReadBatching | null {
  const fd = (socket as { _handle?: { fd?: unknown } } | null)?._handle?.fd;
  if (typeof fd !== "number" || fd < 0) return null;
  let mark = 1;
  let bytesRead = 0;
  let reads = 0;
  let readsAtLastTick = 0;
  let stopped = false;
  let timer: ReturnType<typeof setInterval> | null = null;
  const lower = () => {
    if (mark !== 1) setReceiveLowWater(fd, 1);
    mark = 1;
  };
  const raise = () => {
    // A socket that refuses the mark is read as it was (a timer started by an earlier mark ends).
    if (!setReceiveLowWater(fd, lowWater)) {
      batching.stop();
      return;
    }
    mark = lowWater;
    if (timer !== null) return;
    timer = setInterval(() => {
      if (reads === readsAtLastTick) lower();
      readsAtLastTick = reads;
    }, waitMs);
    // A read in progress keeps the process alive, never this timer.
    timer.unref();
  };
  const batching: ReadBatching = {
    read(bytes) {
      reads++;
      bytesRead += bytes;
      if (!stopped && mark !== lowWater && bytesRead >= startAfter) raise();
    },
    stop() {
      if (stopped) return;
      stopped = true;
      if (timer) clearInterval(timer);
      lower();
    },
  };
  if (startAfter <= 0) {
    raise();
    if (stopped) return null;
  }
  return batching;
}
