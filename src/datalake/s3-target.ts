// The S3 datalake (target = "s3"): the same keys in the configured bucket.
import { AwsClient } from "../aws/client.ts";
import { S3Client } from "../aws/s3.ts";
import type { Config } from "../config/types.ts";
import type { StoredObject, Target } from "./targets.ts";

export class S3Target implements Target {
  readonly description: string;
  private readonly bucket: string;

  constructor(
    config: Config,
    readonly s3: S3Client = new S3Client(new AwsClient(config), config),
  ) {
    this.bucket = config.datalake.bucket;
    this.description = `s3://${this.bucket}`;
  }

  /** Small files in one PUT, large ones as multipart uploads; both all-or-nothing in S3. */
  put(key: string, path: string, bytes: number): Promise<void> {
    return this.s3.putFile(this.bucket, key, path, bytes);
  }

  delete(key: string): Promise<void> {
    return this.s3.deleteObject(this.bucket, key);
  }

  list(prefix: string): Promise<StoredObject[]> {
    return this.s3.listObjects(this.bucket, prefix);
  }

  listDirectories(prefix: string): Promise<string[]> {
    return this.s3.listDirectories(this.bucket, prefix);
  }

  /** Abort the multipart uploads a killed run left open, before this run starts its own. */
  async recover(): Promise<void> {
    await this.s3.abortOrphanedUploads();
  }
}
