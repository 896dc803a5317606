// Where spool files go: an S3 bucket or a local directory with the same tree.
import { chmod, copyFile, link, lstat, mkdir, readdir, realpath, rename, rm, rmdir } from "node:fs/promises";
import { basename, dirname, join, sep } from "node:path";
import { JobError, messageOf } from "../errors.ts";
import { PRIVATE_DIR, PRIVATE_FILE, syncPath, tightenDirectory } from "../state/atomic.ts";
import { OWN_WRITER } from "../state/process-identity.ts";
import { spoolTempPath } from "./spool.ts";

/** A copy into the local datalake in progress (another filesystem than the spool's). */
const COPY_MARK = ".partial-";

/**
 * The copies of `destination` that a run killed mid-copy left beside it. One key has one writer
 * at a time (under the run lock), so any such copy is abandoned.
 */
async function removeAbandonedCopies(destination: string): Promise<void> {
  const prefix = `${basename(destination)}${COPY_MARK}`;
  const dir = dirname(destination);
  for (const name of await readdir(dir)) {
    if (name.startsWith(prefix)) await rm(join(dir, name), { force: true });
  }
}

/** What an operator can do about a failed write into the local datalake at `root`. */
const LOCAL_HINTS: Record<string, string> = {
  ENOSPC:
    "free space on its filesystem (df -h shows how much is left); the files wait in the spool until then",
  EDQUOT:
    "free space under the disk quota of the user panorama runs as; the files wait in the spool until then",
  EACCES: "datalake.path must be writable by the user panorama runs as",
  EPERM: "datalake.path must be writable by the user panorama runs as",
  EROFS:
    "datalake.path is on a read-only filesystem: mount it writable, or set datalake.path to a writable one",
  ENAMETOOLONG:
    "a partition value too long for a file name once encoded (over 255 bytes): a file system cannot hold this object, S3 can; the file waits in the spool",
};

/**
 * A failed system call of a put as one line for the run's report: the code and what it means,
 * the datalake's directory, and the fix; not the temporary paths of the link or the copy.
 */
function localDatalakeError(root: string, error: unknown): unknown {
  const e = error as NodeJS.ErrnoException;
  if (typeof e.code !== "string") return error;
  const what = messageOf(error).replace(/, \w+ '.*$/, "");
  const hint = LOCAL_HINTS[e.code];
  return new JobError(`${what}, writing into the local datalake ${root}${hint ? ` (${hint})` : ""}`);
}

/** An object the datalake holds: its key and its size in bytes. */
export interface StoredObject {
  key: string;
  size: number;
}

export interface Target {
  /** "s3://bucket" or the local directory, for messages */
  readonly description: string;
  /** Store the file at `path` under `key`, replacing any object there. */
  put(key: string, path: string, bytes: number): Promise<void>;
  /** Remove the object at `key`; no error when it does not exist. */
  delete(key: string): Promise<void>;
  /** Every object whose key starts with `prefix` (a listing of the datalake itself). */
  list(prefix: string): Promise<StoredObject[]>;
  /** The names of the directories right under `prefix` (which ends with "/", or is ""). */
  listDirectories(prefix: string): Promise<string[]>;
  /** Clean up what a killed run left in the target (open multipart uploads), before uploading. */
  recover?(): Promise<void>;
}

/** The local datalake (target = "local"): same keys under a directory, written by atomic rename. */
export class LocalTarget implements Target {
  readonly description: string;
  private checkedRoot = false;
  /** the root's real path, once an object's directory has been resolved */
  private realRoot: string | null = null;
  constructor(private readonly root: string) {
    this.description = root;
  }

  /**
   * Puts the spool file in place, by a hard link where the filesystem is the same (else a copy),
   * renamed over the key: the spool keeps its file until the upload state that records it is on
   * disk (upload.ts), as it does for S3, so a run killed in between stores it again.
   */
  async put(key: string, path: string): Promise<void> {
    await this.store(key, path).catch((error: unknown) => {
      throw localDatalakeError(this.root, error);
    });
  }

  private async store(key: string, path: string): Promise<void> {
    if (!this.checkedRoot) {
      this.checkedRoot = true;
      tightenDirectory(this.root);
    }
    const destination = join(this.root, key);
    await mkdir(dirname(destination), { recursive: true, mode: PRIVATE_DIR });
    await this.refuseOutside(key);
    // The link is made in the spool (a killed run's is a temporary file cleanSpool removes), then
    // renamed over the key.
    const linked = spoolTempPath(path);
    try {
      await link(path, linked);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      // A filesystem without hard links: a copy.
      if (code !== "EXDEV" && code !== "EPERM" && code !== "ENOTSUP" && code !== "EOPNOTSUPP") throw error;
      await this.copyInto(destination, path);
      return;
    }
    try {
      await rename(linked, destination);
    } catch (error) {
      await rm(linked, { force: true });
      if ((error as NodeJS.ErrnoException).code !== "EXDEV") throw error;
      // The datalake is on another filesystem than the spool.
      await this.copyInto(destination, path);
    }
  }

  /**
   * The spool file copied beside its key (another filesystem), then renamed over it. The copy and
   * the rename are on disk before the upload state says it is stored: the spool's one flush of its
   * filesystem does not reach this one, and a power cut would otherwise leave an empty object.
   */
  private async copyInto(destination: string, path: string): Promise<void> {
    const temp = `${destination}${COPY_MARK}${OWN_WRITER}`;
    await removeAbandonedCopies(destination);
    try {
      await copyFile(path, temp);
      await chmod(temp, PRIVATE_FILE);
      await syncPath(temp);
      await rename(temp, destination);
      await syncPath(dirname(destination));
    } catch (error) {
      await rm(temp, { force: true });
      throw error;
    }
  }

  /**
   * Refuses a key whose directory is, through a symbolic link in the tree, outside the datalake:
   * another user who could write the tree (before tightenDirectory closed it) may have planted
   * one to make a put or a delete reach files elsewhere (a verify --repair removed them).
   */
  private async refuseOutside(key: string): Promise<void> {
    let dir: string;
    try {
      dir = await realpath(dirname(join(this.root, key)));
      // The root's real path does not change within a run: resolved once, not at every object.
      this.realRoot ??= await realpath(this.root);
    } catch {
      return; // not there: nothing to reach through it
    }
    const root = this.realRoot;
    if (dir === root || dir.startsWith(`${root}${sep}`)) return;
    throw new JobError(
      `${dirname(key)} of the local datalake ${this.root} leads out of it, to ${dir}, through a symbolic link panorama never makes: ${key} was not written or deleted`,
      "remove the symbolic link (another user may have planted it), then run again",
    );
  }

  /** Directories left empty go too, as they would from S3's listing: the tree stays a clean extraction's. */
  async delete(key: string): Promise<void> {
    await this.refuseOutside(key);
    await rm(join(this.root, key), { force: true });
    for (let dir = dirname(key); dir !== "." && dir !== "/"; dir = dirname(dir)) {
      try {
        await rmdir(join(this.root, dir));
      } catch {
        return; // not empty, or not there
      }
    }
  }

  /** `prefix` ends with "/" (a directory of the tree); a missing directory holds nothing. */
  async list(prefix: string): Promise<StoredObject[]> {
    const out: StoredObject[] = [];
    const walk = async (dir: string): Promise<void> => {
      let names: string[];
      try {
        names = await readdir(join(this.root, dir));
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === "ENOENT") return;
        throw error;
      }
      for (const name of names.sort()) {
        const key = `${dir}${name}`;
        // Not followed: a symbolic link is no object of the tree (see refuseOutside).
        const info = await lstat(join(this.root, key));
        if (info.isDirectory()) await walk(`${key}/`);
        else if (info.isFile()) out.push({ key, size: info.size });
      }
    };
    await walk(prefix);
    return out;
  }

  async listDirectories(prefix: string): Promise<string[]> {
    try {
      const entries = await readdir(join(this.root, prefix), { withFileTypes: true });
      return entries
        .filter((e) => e.isDirectory())
        .map((e) => e.name)
        .sort();
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return [];
      throw error;
    }
  }
}
