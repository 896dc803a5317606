// The run lock (DESIGN §9): flock(2) on `state_dir/panorama.lock`. The kernel drops the lock when
// its holder dies, even by SIGKILL, so a lock left by a dead process is taken over at once; the
// file's text (pid, start time) only serves the message a second run prints.
import { closeSync, ftruncateSync, mkdirSync, openSync, readFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import { LockedError } from "../errors.ts";
import { PRIVATE_DIR, PRIVATE_FILE } from "./atomic.ts";
import { flock, LOCK_EX, LOCK_NB } from "./libc.ts";

export interface Lock {
  release(): void;
}

export function lockPath(stateDir: string): string {
  return join(stateDir, "panorama.lock");
}

/** Take the exclusive lock or throw LockedError (exit 3) naming the holder. */
export function acquireLock(stateDir: string, command: string): Lock {
  mkdirSync(stateDir, { recursive: true, mode: PRIVATE_DIR });
  const path = lockPath(stateDir);
  const fd = openSync(path, "a+", PRIVATE_FILE);
  if (flock(fd, LOCK_EX | LOCK_NB) !== 0) {
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
