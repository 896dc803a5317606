// The spool on its way to the disk while it is written, so that the syncfs before a watermark
// moves waits for little: each plain file's write-back is started as it grows and when it is
// complete (sync_file_range), and every 32 MiB so started the disk is flushed by an fdatasync on
// a pool thread, one at a time. A virtual disk keeps what it is given in its host's cache until
// such a flush; the syncfs at the end waited for all of it (1 M rows, 384 MB: 0.2 s in one file,
// 0.4 s in 200). Only a head start: the syncfs makes the spool durable, and reports any
// write-back error (Linux 5.8 and later: the file system's own record of it, which a flush here
// does not clear).
import { closeSync, fdatasync } from "node:fs";
import { startWriteback } from "../state/libc.ts";

/** how much write-back is started between two flushes of the disk */
const FLUSH_BYTES = 32 << 20;

/** bytes whose write-back started since the last flush began */
let started = 0;
/** the flush running (one at a time), on the descriptor of the file that set it off */
let flushing: { fd: number; closeAfter: boolean } | null = null;
/** flushes started by this process */
let flushes = 0;

/** Start writing `length` bytes of `fd` at `offset` to the disk; a flush may follow. */
export function writeBack(fd: number, offset: number, length: number): void {
  if (length <= 0) return;
  startWriteback(fd, offset, length);
  started += length;
  if (flushing === null && started >= FLUSH_BYTES) flush(fd);
}

function flush(fd: number): void {
  started = 0;
  flushes++;
  const running = { fd, closeAfter: false };
  flushing = running;
  fdatasync(fd, () => {
    // Closed before the flush counts as done, so that a caller who waits for it finds the
    // descriptor gone (a close after fdatasync writes nothing: it is quick).
    try {
      if (running.closeAfter) closeSync(fd);
    } catch {
      // the syncfs before the watermark moves reports a write-back error; a flush is a head start
    }
    flushing = null;
  });
}

/**
 * Close a file the writers are done with. The flush using it closes it when it returns: its
 * number, closed sooner, could be given to the next file opened while the flush still runs.
 */
export function closeWritten(fd: number): void {
  if (flushing?.fd === fd) flushing.closeAfter = true;
  else closeSync(fd);
}

/** Whether a flush is running, and how many were started (tests). */
export function diskFlushes(): { running: boolean; started: number } {
  return { running: flushing !== null, started: flushes };
}
