// The run lock (DESIGN §9): flock(2) on `state_dir/panorama.lock`. The kernel drops the lock when
// its holder dies, even by SIGKILL, so a lock left by a dead process is taken over at once; the
// file's text (pid, start time) only serves the message a second run prints.
import { dlopen, FFIType } from "bun:ffi";
import { closeSync, ftruncateSync, mkdirSync, openSync, readFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import { LockedError } from "../errors.ts";

const LOCK_EX = 2;
const LOCK_NB = 4;
const LIBC_NAMES = ["libc.so.6", "libc.musl-x86_64.so.1", "libc.musl-aarch64.so.1", "libc.so"];

type Flock = (fd: number, operation: number) => number;
let flockFn: Flock | undefined;

function flock(): Flock {
  if (flockFn) return flockFn;
  for (const name of LIBC_NAMES) {
    try {
      const lib = dlopen(name, { flock: { args: [FFIType.i32, FFIType.i32], returns: FFIType.i32 } });
      flockFn = (fd, operation) => lib.symbols.flock(fd, operation);
      return flockFn;
    } catch {
      // try the next name
    }
  }
  throw new Error(`cannot load flock(2) from the C library (tried ${LIBC_NAMES.join(", ")})`);
}

export interface Lock {
  release(): void;
}

export function lockPath(stateDir: string): string {
  return join(stateDir, "panorama.lock");
}

/** Take the exclusive lock or throw LockedError (exit 3) naming the holder. */
export function acquireLock(stateDir: string, command: string): Lock {
  mkdirSync(stateDir, { recursive: true });
  const path = lockPath(stateDir);
  const fd = openSync(path, "a+", 0o644);
  if (flock()(fd, LOCK_EX | LOCK_NB) !== 0) {
    closeSync(fd);
    let holder = "";
    try {
      holder = readFileSync(path, "utf8").trim();
    } catch {
      // the message is still right without the holder's details
    }
    throw new LockedError(
      `another panorama run holds the lock ${path}${holder ? ` (${holder})` : ""}`,
      "wait for it to finish; cron will start the next run on schedule",
    );
  }
  ftruncateSync(fd, 0);
  writeSync(fd, `pid ${process.pid}, ${command}, since ${new Date().toISOString()}\n`);
  let held = true;
  return {
    release() {
      if (!held) return;
      held = false;
      ftruncateSync(fd, 0);
      closeSync(fd);
    },
  };
}
