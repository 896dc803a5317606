// Where spool files go: an S3 bucket or a local directory with the same tree.
import { chmod, copyFile, mkdir, rename, rm } from "node:fs/promises";
import { dirname, join } from "node:path";
import { PRIVATE_DIR, PRIVATE_FILE } from "../state/atomic.ts";

export interface Target {
  /** "s3://bucket" or the local directory, for messages */
  readonly description: string;
  /** Store the file at `path` under `key`, replacing any object there. */
  put(key: string, path: string, bytes: number): Promise<void>;
  /** Remove the object at `key`; no error when it does not exist. */
  delete(key: string): Promise<void>;
  /** Clean up what a killed run left in the target (open multipart uploads), before uploading. */
  recover?(): Promise<void>;
}

/** The local datalake (target = "local"): same keys under a directory, written by atomic rename. */
export class LocalTarget implements Target {
  readonly description: string;
  constructor(private readonly root: string) {
    this.description = root;
  }

  /** Moves the spool file into place (a rename when on the same filesystem, else copy + rename). */
  async put(key: string, path: string): Promise<void> {
    const destination = join(this.root, key);
    await mkdir(dirname(destination), { recursive: true, mode: PRIVATE_DIR });
    try {
      await rename(path, destination);
      return;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EXDEV") throw error;
    }
    const temp = `${destination}.partial-${process.pid}`;
    try {
      await copyFile(path, temp);
      await chmod(temp, PRIVATE_FILE);
      await rename(temp, destination);
    } catch (error) {
      await rm(temp, { force: true });
      throw error;
    }
  }

  async delete(key: string): Promise<void> {
    await rm(join(this.root, key), { force: true });
  }
}
