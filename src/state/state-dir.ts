// What a failed system call on state_dir means for an operator. The first writes of a command
// (the lock, its directory) meet a state_dir that cannot be used before anything else does: the
// error names the key and the fix instead of bare errno text. The commands that only read it
// (status, verify, the dry runs) meet it at their first read: the same error, through inStateDir.
import { existsSync, statSync } from "node:fs";
import { sep } from "node:path";
import { ConfigError, JobError, messageOf } from "../errors.ts";
import { currentUser, userName } from "./users.ts";

const WRITABLE = "state_dir must be writable by the user panorama runs as";
const HINTS: Record<string, string> = {
  ENOTDIR:
    "a component of state_dir's path is a regular file, not a directory: set state_dir to a directory panorama may create",
  EEXIST: "state_dir is a file, not a directory: set state_dir to a directory panorama may create",
  EROFS: `${WRITABLE}: it is on a read-only filesystem; set state_dir to a directory on a writable one`,
  ENOSPC: "free space on state_dir's filesystem (df -h shows how much is left)",
  EDQUOT: "free space under the disk quota of the user panorama runs as, on state_dir's filesystem",
};

/**
 * The fix of a refusal, for the user this runs as: make state_dir for it when it is not there
 * (there is nothing to chown), else give it the whole tree (a file root left inside is enough).
 */
function permissionHint(stateDir: string): string {
  const user = currentUser();
  const dir = shellWord(stateDir);
  if (!existsSync(stateDir)) {
    return `state_dir does not exist and ${user} may not make it: make it for ${user} (sudo install -d -m 0700 -o ${user} ${dir}), or set state_dir to a directory ${user} may make`;
  }
  return `${WRITABLE} (${user}): give it the whole directory (sudo chown -R ${user} ${dir}), or run panorama as its owner`;
}

/** `word` as one word for a shell command an operator copies. */
function shellWord(word: string): string {
  return /^[A-Za-z0-9_/.,:@%+=-]+$/.test(word) ? word : `'${word.replaceAll("'", `'\\''`)}'`;
}

/** Codes where the configured path cannot be a directory at all: a configuration error (exit 2). */
const NOT_A_DIRECTORY = new Set(["ENOTDIR", "EEXIST"]);

/**
 * `error` from a system call on `path` under `stateDir` as an operator error: "cannot use
 * state_dir <dir>: <code>: <what>", the call and path when they are not state_dir itself, and a
 * hint for the codes an operator can fix. An error without a code (a bug) is returned unchanged.
 */
export function stateDirError(stateDir: string, error: unknown, path: string): unknown {
  const e = error as NodeJS.ErrnoException;
  if (typeof e.code !== "string") return error;
  // "ENOTDIR: not a directory, mkdir '/x/state'": the call and path are said below, as ours.
  const what = messageOf(error).replace(/, \w+ '.*'$/, "");
  const where = e.path ?? path;
  const call = where === stateDir ? "" : ` (${e.syscall ?? "using"} ${where})`;
  const message = `cannot use state_dir ${stateDir}: ${what}${call}`;
  const hint = e.code === "EACCES" || e.code === "EPERM" ? permissionHint(stateDir) : HINTS[e.code];
  return NOT_A_DIRECTORY.has(e.code) ? new ConfigError(message, hint) : new JobError(message, hint);
}

/** The state_dir of the configuration the command loaded, for inStateDir. */
let loadedStateDir: string | null = null;

export function setLoadedStateDir(stateDir: string): void {
  loadedStateDir = stateDir;
}

/**
 * `error` as stateDirError's when it is a failed system call on a path in the loaded state_dir
 * (a command that reads the state before, or without, taking the lock); any other unchanged.
 */
export function inStateDir(error: unknown): unknown {
  const path = (error as NodeJS.ErrnoException).path;
  if (loadedStateDir === null || typeof path !== "string") return error;
  if (path !== loadedStateDir && !path.startsWith(`${loadedStateDir}${sep}`)) return error;
  return stateDirError(loadedStateDir, error, path);
}

/**
 * Refuses root a state_dir another user owns: every file root wrote there (a state file replaced,
 * the run record) would be root's, 0600, and that user's cron jobs would fail on it from then on.
 * Seen when an operator tried `sudo panorama run` on a host whose jobs run as a service user.
 */
export function refuseRootInOthersStateDir(stateDir: string, command: string): void {
  if (process.geteuid?.() !== 0) return;
  let owner: number;
  try {
    owner = statSync(stateDir).uid;
  } catch {
    return; // not there yet (root makes it, root's), or unusable: the lock says why
  }
  if (owner === 0) return;
  const name = userName(owner);
  const user = name ?? `uid ${owner}`;
  throw new JobError(
    `state_dir ${stateDir} belongs to ${user}, and this command runs as root: the files it would write there would be root's, and ${user}'s scheduled jobs could not replace them`,
    `run it as that user, as the jobs do: sudo -u ${name ?? `'#${owner}'`} panorama ... ${command}`,
  );
}
