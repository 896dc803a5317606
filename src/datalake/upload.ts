// Spool → target. Each complete spool file is stored under its key, the other compression
// variant of that key is removed, the content hash is remembered, and only then is the file
// removed from the spool. A crash anywhere re-uploads the same key next time: same object, no
// duplicate. A file whose content equals what was last stored under its key is not sent again;
// a key is forgotten durably before anything is sent under it (DESIGN §9, upload-state.ts).
import { AwsError } from "../aws/client.ts";
import type { Config } from "../config/types.ts";
import { messageOf } from "../errors.ts";
import { log } from "../log.ts";
import { otherVariantKey } from "./layout.ts";
import { type ManifestEntry, removeFromSpool, spoolDir, spoolPath } from "./spool.ts";
import type { Target } from "./targets.ts";
import { type Stored, UploadState } from "./upload-state.ts";

export interface TableUploads {
  objects: number;
  bytes: number;
  skipped: number;
}

export interface UploadOptions {
  dryRun?: boolean;
  /** files uploaded at the same time */
  concurrency?: number;
  /** enqueue() waits while this many files are queued or in flight (keeps the spool small) */
  queueLimit?: number;
  /** told of each file once stored or found unchanged (error null), or once its upload failed */
  onSettled?: (entry: ManifestEntry, error: unknown) => void;
}

const FLUSH_EVERY = 50;

export class Uploader {
  private readonly state: UploadState;
  private readonly spool: string;
  private readonly queue: ManifestEntry[] = [];
  private readonly waiters: (() => void)[] = [];
  private readonly idle: (() => void)[] = [];
  private inFlight = 0;
  /** the first failure: later files stay in the spool for the next run */
  failure: { key: string; table: string; error: unknown } | null = null;
  readonly tables = new Map<string, TableUploads>();
  /** the entries stored or found unchanged, and removed from the spool (none in a dry run) */
  readonly done: ManifestEntry[] = [];
  /**
   * Stored, recorded in memory, still in the spool: a file leaves the spool once its record is on
   * disk, or a run killed in between would leave an object that no state describes (its rows
   * unknown to `verify`), with nothing left for the next run to store again.
   */
  private unflushed: ManifestEntry[] = [];

  constructor(
    config: Config,
    private readonly target: Target,
    private readonly options: UploadOptions = {},
  ) {
    this.state = new UploadState(config.state_dir, target.description);
    this.spool = spoolDir(config.state_dir);
  }

  private tally(table: string): TableUploads {
    let t = this.tables.get(table);
    if (!t) {
      t = { objects: 0, bytes: 0, skipped: 0 };
      this.tables.set(table, t);
    }
    return t;
  }

  /** Queue a complete spool file; waits while the queue is full. Throws once an upload failed. */
  async enqueue(entry: ManifestEntry): Promise<void> {
    if (this.failure) throw this.failedError();
    this.queue.push(entry);
    this.pump();
    const limit = this.options.queueLimit ?? 8;
    while (this.queue.length + this.inFlight >= limit && !this.failure) {
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
    if (this.failure) throw this.failedError();
  }

  /**
   * The failure as the run says it, once. A datalake that cannot be reached is no object's
   * problem: said without a key, which would blame that file's table for every table's failure.
   */
  failureMessage(): string | null {
    if (!this.failure) return null;
    const { key, error } = this.failure;
    if (error instanceof AwsError && error.unreachable) {
      return `the datalake ${this.target.description} cannot be reached: ${error.reason}`;
    }
    return `upload of ${key} failed: ${messageOf(error)}`;
  }

  /** What a table still extracting is stopped with; the reason goes with the failing file's table. */
  private failedError(): Error {
    return new Error(`stopped: the upload of ${this.failure!.key} failed`);
  }

  private pump(): void {
    const concurrency = this.options.concurrency ?? 4;
    while (this.inFlight < concurrency && this.queue.length > 0 && !this.failure) {
      const entry = this.queue.shift()!;
      this.inFlight++;
      this.uploadOne(entry)
        .then(
          () => this.options.onSettled?.(entry, null),
          (error) => {
            this.failure ??= { key: entry.key, table: entry.table, error };
            this.options.onSettled?.(entry, error);
          },
        )
        .finally(() => {
          this.inFlight--;
          for (const wake of this.waiters.splice(0)) wake();
          this.pump();
          if (this.inFlight === 0 && (this.queue.length === 0 || this.failure)) {
            for (const done of this.idle.splice(0)) done();
          }
        });
    }
  }

  /** Wait for every queued upload; flushes the upload state. */
  async drain(): Promise<void> {
    if (this.inFlight > 0 || (this.queue.length > 0 && !this.failure)) {
      await new Promise<void>((resolve) => this.idle.push(resolve));
    }
    await this.flush();
  }

  /** The state on disk, then the spool files it now describes out of the spool. */
  private async flush(): Promise<void> {
    if (this.options.dryRun) return;
    this.state.flush();
    const recorded = this.unflushed;
    this.unflushed = [];
    for (const entry of recorded) {
      await removeFromSpool(this.spool, entry);
      this.done.push(entry);
    }
  }

  private async uploadOne(entry: ManifestEntry): Promise<void> {
    const tally = this.tally(entry.table);
    const previous = this.state.get(entry.key);
    if (previous && previous.hash === entry.hash) {
      tally.skipped++;
      // A state from before `verify` learns the rows of the objects it already has.
      if (previous.rows === undefined && !this.options.dryRun) {
        this.state.record(entry.key, { ...previous, rows: entry.rows });
      }
      if (this.options.dryRun) {
        process.stdout.write(`unchanged\t${entry.key}\n`);
        return;
      }
      await this.settled(entry);
      return;
    }
    if (this.options.dryRun) {
      process.stdout.write(`upload\t${entry.key}\t${entry.bytes} bytes\n`);
      tally.objects++;
      tally.bytes += entry.bytes;
      return;
    }
    const started = performance.now();
    const other = otherVariantKey(entry.key);
    const deleteOther = this.mustDeleteOtherVariant(entry.key);
    // Neither this key nor the variant about to be deleted may be trusted from here on, whatever
    // happens to this process: see upload-state.ts.
    this.state.forgetDurably([entry.key, other]);
    await this.target.put(entry.key, spoolPath(this.spool, entry.key), entry.bytes);
    if (deleteOther) await this.target.delete(other);
    this.state.record(entry.key, {
      hash: entry.hash,
      bytes: entry.bytes,
      rows: entry.rows,
      uploaded_at: new Date().toISOString(),
    });
    await this.settled(entry);
    tally.objects++;
    tally.bytes += entry.bytes;
    log.debug("uploaded", {
      table: entry.table,
      key: entry.key,
      bytes: entry.bytes,
      seconds: Math.round(performance.now() - started) / 1000,
    });
  }

  /** `entry` is stored (or was already): out of the spool once the state saying so is on disk. */
  private async settled(entry: ManifestEntry): Promise<void> {
    this.unflushed.push(entry);
    if (this.state.pending >= FLUSH_EVERY || this.unflushed.length >= FLUSH_EVERY) await this.flush();
  }

  /** What was stored under `key` last, as this state knows it. */
  storedAt(key: string): Readonly<Stored> | undefined {
    return this.state.get(key);
  }

  /**
   * Keys deleted from the datalake, or whose object differs from what was stored: forgotten at
   * once (durably), so that the next file for such a key is sent whatever its content.
   */
  forget(keys: Iterable<string>): void {
    this.state.forgetDurably([...keys]);
    this.state.flush();
  }

  /**
   * Writing x.csv removes x.csv.gz of the same partition and the reverse, or Athena would count
   * the rows twice. Not only when the state says this host wrote the other variant (the state
   * may be lost, an earlier configuration or tool may have written it): whenever this state
   * stores `key` for the first time, which a switch of compression and a lost state both imply.
   * Once stored, the key was cleared then, so a steady hourly run sends no DELETE. (Deleting a
   * missing key succeeds; the IAM policy grants DeleteObject on the other variant's objects.)
   */
  private mustDeleteOtherVariant(key: string): boolean {
    return !this.state.has(key) || this.state.has(otherVariantKey(key));
  }
}
