// Files that are either wholly old or wholly new: write a temporary file beside the target,
// fsync it, rename it into place, then fsync the directory so the rename survives a power cut.
import {
  chmodSync,
  closeSync,
  constants,
  fchmodSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  unlinkSync,
  writeSync,
} from "node:fs";
import { open } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { log } from "../log.ts";
import { syncfs } from "./libc.ts";
import { OWN_WRITER, processAlive } from "./process-identity.ts";

/**
 * Files holding extracted data or state are created 0600 in directories created 0700 (DESIGN §9):
 * learner data is not readable by other users of the host. A mode given at creation can only be
 * narrowed by the umask, never widened.
 */
export const PRIVATE_FILE = 0o600;
export const PRIVATE_DIR = 0o700;

const OPEN_FLAGS = {
  a: constants.O_WRONLY | constants.O_CREAT | constants.O_APPEND,
  "a+": constants.O_RDWR | constants.O_CREAT | constants.O_APPEND,
  w: constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC,
  "w+": constants.O_RDWR | constants.O_CREAT | constants.O_TRUNC,
  wx: constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL,
} as const;

/**
 * openSync() of a file panorama writes in its own directories, never through a symbolic link:
 * one planted there by another user while the directory was open to others (tightenDirectory)
 * would make a run as root truncate or append to the file it names (/etc/shadow).
 */
export function openOwnFile(path: string, flags: keyof typeof OPEN_FLAGS, mode = PRIVATE_FILE): number {
  try {
    return openSync(path, OPEN_FLAGS[flags] | constants.O_NOFOLLOW, mode);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ELOOP") throw error;
    throw Object.assign(
      new Error(
        `ELOOP: ${path} is a symbolic link, which panorama never makes: it does not write through one (another user may have planted it); remove it`,
      ),
      { code: "ELOOP", path, syscall: "open" },
    );
  }
}

/**
 * Makes an existing directory private when group or others may enter it: one a version before
 * these modes made (0755 under the usual umask), whose files are then out of other users' reach
 * whatever their own modes. Said once, as a warning; a directory that is not there or not ours to
 * change is left as it is.
 */
export function tightenDirectory(dir: string): void {
  let mode: number;
  try {
    mode = statSync(dir).mode & 0o777;
    if ((mode & 0o077) === 0) return;
    chmodSync(dir, PRIVATE_DIR);
  } catch {
    return;
  }
  log.warn(`${dir} was open to other users (mode ${mode.toString(8)}): made 0700, as it holds learner data`, {
    dir,
  });
}

/**
 * `durable: false` skips the fsyncs, for files whose durability is ensured later in one
 * syncFilesystem() call (the spool's manifests). `tempDir` (which must exist) holds the temporary
 * file instead of the target's directory; a rename out of it to another filesystem fails (EXDEV).
 */
export function atomicWrite(
  path: string,
  data: string | Uint8Array,
  mode = PRIVATE_FILE,
  durable = true,
  tempDir?: string,
): void {
  const dir = dirname(path);
  mkdirSync(dir, { recursive: true, mode: PRIVATE_DIR });
  const temp = join(
    tempDir ?? dir,
    `.${basename(path)}.${OWN_WRITER}.${Math.random().toString(36).slice(2)}.tmp`,
  );
  const fd = openOwnFile(temp, "wx", mode);
  try {
    // The umask may have narrowed the mode (a textfile that node_exporter must read).
    fchmodSync(fd, mode);
    writeSync(fd, typeof data === "string" ? Buffer.from(data) : data);
    if (durable) fsyncSync(fd);
  } catch (error) {
    closeSync(fd);
    unlinkSync(temp);
    throw error;
  }
  closeSync(fd);
  try {
    renameSync(temp, path);
  } catch (error) {
    // Not left behind: a long run failing again and again would fill the directory with them.
    rmSync(temp, { force: true });
    throw error;
  }
  if (durable) syncDirectory(dir);
}

/**
 * The writer of an atomicWrite() temporary file, from its name (`pid` or `pid-start`, see
 * process-identity.ts), or undefined for other names.
 */
export function atomicTempWriter(name: string): { pid: number; start?: number } | undefined {
  const match = /^\..+\.(\d+)(?:-(\d+))?\.[a-z0-9]*\.tmp$/.exec(name);
  if (!match) return undefined;
  return match[2] === undefined
    ? { pid: Number(match[1]) }
    : { pid: Number(match[1]), start: Number(match[2]) };
}

/**
 * Remove from `dir` the temporary files of atomicWrite() calls whose process died before the
 * rename (killed mid-write): the file each was replacing, if any, is intact.
 */
export function removeAbandonedTemps(dir: string): void {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return;
  }
  for (const name of names) {
    const writer = atomicTempWriter(name);
    if (writer !== undefined && !processAlive(writer.pid, writer.start))
      rmSync(join(dir, name), { force: true });
  }
}

export function syncDirectory(dir: string): void {
  const fd = openSync(dir, "r");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Flush a file's data, or a directory's entries, to disk without holding the event loop. */
export async function syncPath(path: string): Promise<void> {
  const handle = await open(path, "r");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

export function writeJsonAtomic(path: string, value: unknown, durable = true): void {
  atomicWrite(path, `${JSON.stringify(value, null, 2)}\n`, PRIVATE_FILE, durable);
}

/** The JSON in `path`, or `fallback` when the file does not exist yet. */
export function readJson<T>(path: string, fallback: T): T {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return fallback;
    throw error;
  }
  try {
    return JSON.parse(text) as T;
  } catch {
    throw new Error(`${path}: state file is not valid JSON; move it aside to start that state afresh`);
  }
}

/** Flush every file of the filesystem holding `path` to disk: one call for a whole spool. */
export function syncFilesystem(path: string): void {
  const fd = openSync(path, "r");
  try {
    if (syncfs(fd) !== 0) throw new Error(`syncfs failed on ${path}`);
  } finally {
    closeSync(fd);
  }
}
