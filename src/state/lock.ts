// The run lock (DESIGN §9): flock(2) on `state_dir/panorama.lock`. The kernel drops the lock when
// its holder dies, even by SIGKILL, so a lock left by a dead process is taken over at once; the
// file's text (pid, start time) only serves the message a second run prints.
import { closeSync, ftruncateSync, mkdirSync, openSync, readFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import { LockedError } from "../errors.ts";
import { openOwnFile, PRIVATE_DIR, removeAbandonedTemps, tightenDirectory } from "./atomic.ts";
import { flock, LOCK_EX, LOCK_NB, LOCK_SH, LOCK_UN } from "./libc.ts";
import { refuseRootInOthersStateDir, stateDirError } from "./state-dir.ts";

export interface Lock {
  release(): void;
}

export function lockPath(stateDir: string): string {
  return join(stateDir, "panorama.lock");
}

/**
 * Take the exclusive lock in `dir` or throw LockedError (exit 3) naming the holder. `stateDir` is
 * the configured state_dir that holds `dir` (log-ship locks a directory of its own in it): a
 * directory that cannot be used is an error naming it, with the fix. Once the lock is held, the
 * temporary files that writers killed mid-write left in `dir` are removed: a live writer's stay.
 */
export function acquireLock(dir: string, command: string, stateDir = dir): Lock {
  const path = lockPath(dir);
  refuseRootInOthersStateDir(stateDir, command);
  let fd: number;
  try {
    mkdirSync(dir, { recursive: true, mode: PRIVATE_DIR });
    tightenDirectory(dir);
    fd = openOwnFile(path, "a+");
  } catch (error) {
    throw stateDirError(stateDir, error, path);
  }
  if (flock(fd, LOCK_EX | LOCK_NB) !== 0) {
    const holder = holderLine(fd);
    closeSync(fd);
    throw new LockedError(
      `another panorama run holds the lock ${path}${holder ? ` (${holder})` : ""}`,
      "wait for it to finish; cron will start the next run on schedule",
    );
  }
  try {
    ftruncateSync(fd, 0);
    writeSync(fd, `pid ${process.pid}, ${command}, since ${new Date().toISOString()}\n`);
  } catch (error) {
    // Closing releases the lock: a run that cannot write its state does not start.
    closeSync(fd);
    throw stateDirError(stateDir, error, path);
  }
  removeAbandonedTemps(dir);
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

/** Who holds a lock: what its holder wrote when it took it. */
export interface LockHolder {
  /** null when the holder has not written its line yet (it took the lock a moment ago) */
  command: string | null;
  pid: number | null;
  /** ISO time the lock was taken */
  since: string | null;
}

/**
 * The holder of the lock in `stateDir`, or null when nobody holds it. Only looks: a shared lock
 * is tried and released at once, the file is not written.
 */
export function lockHolder(stateDir: string): LockHolder | null {
  let fd: number;
  try {
    fd = openSync(lockPath(stateDir), "r");
  } catch {
    return null;
  }
  try {
    if (flock(fd, LOCK_SH | LOCK_NB) === 0) {
      flock(fd, LOCK_UN);
      return null;
    }
    // The command may hold spaces ("verify --repair"): the time is the line's last word.
    const match = /^pid (\d+), (.+), since (\S+)$/.exec(holderLine(fd));
    return match
      ? { pid: Number(match[1]), command: match[2]!, since: match[3]! }
      : { pid: null, command: null, since: null };
  } finally {
    closeSync(fd);
  }
}

/** The line the holder wrote, read from the open lock file; "" when unreadable or not yet written. */
function holderLine(fd: number): string {
  try {
    return readFileSync(fd, "utf8").trim();
  } catch {
    return "";
  }
}
