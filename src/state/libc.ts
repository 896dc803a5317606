// The two C library calls Bun does not expose: flock(2) for the run lock and syncfs(2) to make a
// whole spool durable with one call instead of one fsync per file.
import { dlopen, FFIType } from "bun:ffi";

const NAMES = ["libc.so.6", "libc.musl-x86_64.so.1", "libc.musl-aarch64.so.1", "libc.so"];

const SYMBOLS = {
  flock: { args: [FFIType.i32, FFIType.i32], returns: FFIType.i32 },
  syncfs: { args: [FFIType.i32], returns: FFIType.i32 },
} as const;

type Libc = ReturnType<typeof dlopen<typeof SYMBOLS>>["symbols"];
let libc: Libc | undefined;

function load(): Libc {
  if (libc) return libc;
  for (const name of NAMES) {
    try {
      libc = dlopen(name, SYMBOLS).symbols;
      return libc;
    } catch {
      // try the next name
    }
  }
  throw new Error(`cannot load the C library (tried ${NAMES.join(", ")})`);
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
