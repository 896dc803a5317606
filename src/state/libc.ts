// The C library calls Bun does not expose: flock(2) for the run lock, syncfs(2) to make a whole
// spool durable with one call instead of one fsync per file, sync_file_range(2) to start the
// write-back of a big file while it is still being written, and setsockopt(2) for a socket's
// low-water mark (read-batching.ts).
import { dlopen, FFIType } from "bun:ffi";

const NAMES = ["libc.so.6", "libc.musl-x86_64.so.1", "libc.musl-aarch64.so.1", "libc.so"];

const SYMBOLS = {
  flock: { args: [FFIType.i32, FFIType.i32], returns: FFIType.i32 },
  syncfs: { args: [FFIType.i32], returns: FFIType.i32 },
} as const;

type Symbols<T extends Parameters<typeof dlopen>[1]> = ReturnType<typeof dlopen<T>>["symbols"];
let libc: Symbols<typeof SYMBOLS> | undefined;

/** `symbols` from the first C library that has them all; null when none does. */
function open<T extends Parameters<typeof dlopen>[1]>(symbols: T): Symbols<T> | null {
  for (const name of NAMES) {
    try {
      return dlopen(name, symbols).symbols;
    } catch {
      // try the next name
    }
  }
  return null;
}

function load(): Symbols<typeof SYMBOLS> {
  libc ??= open(SYMBOLS) ?? undefined;
  if (!libc) throw new Error(`cannot load the C library (tried ${NAMES.join(", ")})`);
  return libc;
}

export const LOCK_SH = 1;
export const LOCK_EX = 2;
export const LOCK_NB = 4;
export const LOCK_UN = 8;

export function flock(fd: number, operation: number): number {
  return load().flock(fd, operation);
}

export function syncfs(fd: number): number {
  return load().syncfs(fd);
}

const SYNC_FILE_RANGE_WRITE = 2;
const WRITEBACK_SYMBOLS = {
  sync_file_range: { args: [FFIType.i32, FFIType.i64, FFIType.i64, FFIType.u32], returns: FFIType.i32 },
} as const;
/** null: this C library has no sync_file_range, and write-back starts at the sync */
let writeback: Symbols<typeof WRITEBACK_SYMBOLS> | null | undefined;

/**
 * Start writing `length` bytes of the file at `offset` to disk, without waiting for it
 * (SYNC_FILE_RANGE_WRITE). Only a head start: the spool's syncfs still makes the file durable.
 * Returns -1 when it could not (no such call in this C library, or not a regular file).
 */
export function startWriteback(fd: number, offset: number, length: number): number {
  if (writeback === undefined) writeback = open(WRITEBACK_SYMBOLS);
  return writeback ? writeback.sync_file_range(fd, offset, length, SYNC_FILE_RANGE_WRITE) : -1;
}

// Linux's values, the same on x86-64 and arm64.
const SOL_SOCKET = 1;
const SO_RCVLOWAT = 18;
const SOCKET_SYMBOLS = {
  setsockopt: {
    args: [FFIType.i32, FFIType.i32, FFIType.i32, FFIType.ptr, FFIType.u32],
    returns: FFIType.i32,
  },
} as const;
/** null: no setsockopt in this C library */
let sockets: Symbols<typeof SOCKET_SYMBOLS> | null | undefined;
const option = new Int32Array(1);

/**
 * SO_RCVLOWAT: a TCP socket is reported readable once `bytes` have arrived (or at its end), not
 * at every packet; setting it reports one that already holds as much at once. False when it could
 * not be set (no such call, not a socket).
 */
export function setReceiveLowWater(fd: number, bytes: number): boolean {
  if (sockets === undefined) sockets = open(SOCKET_SYMBOLS);
  if (!sockets) return false;
  option[0] = bytes;
  return sockets.setsockopt(fd, SOL_SOCKET, SO_RCVLOWAT, option, 4) === 0;
}
