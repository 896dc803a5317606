// The output side of log shipping: where a batch goes (object key, bucket, day partition) and
// the sink that stores it — the local datalake directory or S3.
import { mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { AwsClient, type AwsClientOptions } from "../aws/client.ts";
import { S3Client } from "../aws/s3.ts";
import type { Config } from "../config/types.ts";
import { trackingLogKey } from "../datalake/layout.ts";
import { atomicWrite, PRIVATE_DIR, PRIVATE_FILE } from "../state/atomic.ts";
import { logshipDir } from "./checkpoint.ts";

/** Stores gzip objects. Tests give their own, to fail on demand. */
export interface LogSink {
  /** "s3://bucket" or the local directory, for messages */
  readonly description: string;
  /** Store `body` under `key`, replacing any object there: the whole object or nothing. */
  put(key: string, body: Uint8Array): Promise<void>;
}

/**
 * target = "local": the same keys under the datalake directory, each object written in
 * `staging` (under the state directory) and renamed into place, so a crash leaves no partial
 * file in the datalake. Without staging, or across filesystems, the temporary file is a dot
 * file beside the object (Athena skips such names).
 */
export class LocalLogSink implements LogSink {
  readonly description: string;

  constructor(
    private readonly root: string,
    private readonly staging?: string,
  ) {
    this.description = root;
    if (!staging) return;
    // Left by a killed run: the lock says no other log-ship is writing here.
    rmSync(staging, { recursive: true, force: true });
    mkdirSync(staging, { recursive: true, mode: PRIVATE_DIR });
  }

  async put(key: string, body: Uint8Array): Promise<void> {
    const destination = join(this.root, key);
    try {
      atomicWrite(destination, body, PRIVATE_FILE, true, this.staging);
    } catch (error) {
      if (!this.staging || (error as NodeJS.ErrnoException).code !== "EXDEV") throw error;
      atomicWrite(destination, body);
    }
  }
}

/** The bucket tracking logs go to: `logs_bucket`, which defaults to the data bucket. */
export function logsBucket(config: Config): string {
  return config.datalake.logs_bucket || config.datalake.bucket;
}

/** Logs in the data bucket use the Hive layout under base_prefix; a separate bucket does not. */
function sameBucket(config: Config): boolean {
  return logsBucket(config) === config.datalake.bucket;
}

/**
 * The object key of a batch (DESIGN §8). Its `<id>` is the file's id and the offset of the
 * batch's first event: readable, stable across retries, unique per file.
 */
export function batchKey(config: Config, fileId: string, firstEventOffset: number, time: Date): string {
  return trackingLogKey({
    sameBucket: sameBucket(config),
    basePrefix: config.datalake.base_prefix,
    lmsHost: config.lms_host,
    time,
    id: `${fileId}-${firstEventOffset}`,
  });
}

/** A day partition of the `<base_prefix>_raw_tracking_logs` table. */
export interface TrackingLogPartition {
  /** partition values in the table's order: lms, year, month, day */
  values: [string, string, string, string];
  bucket: string;
  /** the key prefix of the partition's objects, ending with "/" (its location in the bucket) */
  prefix: string;
}

/** The partition of the objects of day `day` (YYYY-MM-DD). */
export function partitionOf(config: Config, day: string): TrackingLogPartition {
  const [year = "", month = "", dd = ""] = day.split("-");
  const key = batchKey(config, "x", 0, new Date(`${day}T00:00:00Z`));
  return {
    values: [config.lms_host, year, month, dd],
    bucket: logsBucket(config),
    prefix: key.slice(0, key.lastIndexOf("/") + 1),
  };
}

/**
 * target = "s3": each batch in one signed PUT with its Content-MD5 (a batch is at most
 * max_file_size before compression, far below the multipart threshold), retried by the client
 * on network errors, 5xx and throttling. A PUT is all or nothing, and the key of a retried
 * batch is the same, so an attempt whose answer was lost is overwritten, never doubled.
 */
export class S3LogSink implements LogSink {
  readonly description: string;
  private readonly bucket: string;

  constructor(
    config: Config,
    private readonly s3: S3Client,
  ) {
    this.bucket = logsBucket(config);
    this.description = `s3://${this.bucket}`;
  }

  put(key: string, body: Uint8Array): Promise<void> {
    return this.s3.putObject(this.bucket, key, body);
  }
}

/** The configured sink: the local datalake directory, or the logs bucket. */
export function createLogSink(config: Config, aws?: AwsClientOptions): LogSink {
  if (config.datalake.target === "s3") {
    return new S3LogSink(config, new S3Client(new AwsClient(config, aws), config));
  }
  return new LocalLogSink(config.datalake.path, join(logshipDir(config.state_dir), "staging"));
}
