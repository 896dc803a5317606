// Open multipart uploads, recorded in state_dir so that a killed process leaves none behind: S3
// keeps (and bills) the parts of an upload that was neither completed nor aborted. One small
// file per upload, written atomically before the first part is sent and removed once the upload
// is completed or aborted; the next `upload`/`run` aborts what a dead process left.
import { readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { readJson, removeAbandonedTemps, writeJsonAtomic } from "../state/atomic.ts";
import { OWN_START, processAlive } from "../state/process-identity.ts";

export interface OpenUpload {
  bucket: string;
  key: string;
  /** empty while CreateMultipartUpload is in flight: its id is not known yet */
  uploadId: string;
  pid: number;
  /** the process's start time (process-identity.ts); absent in entries of earlier versions */
  pid_start?: number;
  started_at: string;
}

export class MultipartJournal {
  readonly dir: string;
  /** this process's entries, by name */
  private readonly open = new Map<string, OpenUpload>();

  constructor(stateDir: string) {
    this.dir = join(stateDir, "multipart");
  }

  /** Record the intent to upload `key` (before CreateMultipartUpload); returns its entry name. */
  begin(bucket: string, key: string): string {
    const name = `${process.pid}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 10)}.json`;
    const entry: OpenUpload = {
      bucket,
      key,
      uploadId: "",
      pid: process.pid,
      ...(OWN_START === undefined ? {} : { pid_start: OWN_START }),
      started_at: new Date().toISOString(),
    };
    this.write(name, entry);
    this.open.set(name, entry);
    return name;
  }

  /** The upload id is known: record it before any part is sent. */
  started(name: string, uploadId: string): void {
    const entry = this.open.get(name);
    if (!entry) throw new Error(`multipart journal: no entry ${name}`);
    entry.uploadId = uploadId;
    this.write(name, entry);
  }

  end(name: string): void {
    rmSync(join(this.dir, name), { force: true });
    this.open.delete(name);
  }

  /** Entries left by processes that are no longer alive: their uploads will never finish. */
  orphans(): { name: string; upload: OpenUpload }[] {
    removeAbandonedTemps(this.dir);
    let names: string[];
    try {
      names = readdirSync(this.dir);
    } catch {
      return [];
    }
    const out: { name: string; upload: OpenUpload }[] = [];
    for (const name of names) {
      if (!name.endsWith(".json") || name.startsWith(".")) continue;
      const upload = readJson<OpenUpload | null>(join(this.dir, name), null);
      if (upload && !processAlive(upload.pid, upload.pid_start)) out.push({ name, upload });
    }
    return out;
  }

  private write(name: string, entry: OpenUpload): void {
    writeJsonAtomic(join(this.dir, name), entry);
  }
}
