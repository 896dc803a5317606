// The S3 calls panorama makes, and only those. Every body carries a Content-MD5 that S3 verifies;
// files of 16 MiB and more go as multipart uploads read from disk part by part (never the whole
// file in memory), recorded in state_dir while open and aborted when they fail.
import { open } from "node:fs/promises";
import type { Config } from "../config/types.ts";
import { messageOf } from "../errors.ts";
import { log } from "../log.ts";
import { type AwsClient, AwsError, type AwsRequest } from "./client.ts";
import { MultipartJournal } from "./multipart-journal.ts";
import { xmlValues } from "./xml.ts";

export const MIB = 1024 * 1024;
/** Files this large and larger go as multipart uploads. */
export const MULTIPART_THRESHOLD = 16 * MIB;
/** Parts are at least this large (S3's minimum is 5 MiB); larger when a file needs > 10,000. */
export const PART_BYTES = 8 * MIB;
const MAX_PARTS = 10_000;
/** Parts of one file sent at the same time. */
const PARTS_IN_FLIGHT = 4;

/** S3's object keys in a URL path: each segment RFC 3986-encoded, "/" kept. */
export function encodeKey(key: string): string {
  return key
    .split("/")
    .map((segment) =>
      encodeURIComponent(segment).replace(
        /[!'()*]/g,
        (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
      ),
    )
    .join("/");
}

function encodeQuery(params: Record<string, string>): string {
  const pairs = Object.entries(params).map(([name, value]) =>
    value === "" ? encodeKey(name) : `${encodeKey(name)}=${encodeKey(value)}`,
  );
  return pairs.length > 0 ? `?${pairs.join("&")}` : "";
}

export interface Md5 {
  base64: string;
  hex: string;
}

function md5Of(hasher: Bun.CryptoHasher): Md5 {
  const digest = hasher.digest();
  return { base64: digest.toString("base64"), hex: digest.toString("hex") };
}

/** MD5 of bytes in memory (a file's is fileMd5's). */
export function contentMd5(body: Uint8Array): Md5 {
  return md5Of(new Bun.CryptoHasher("md5").update(body));
}

/**
 * fileMd5's read buffers, reused: a Blob's stream gives each chunk in fresh memory, and hashing
 * the upload's gigabyte that way left the collector tens of MB behind (512 MiB in 8 MiB parts:
 * 59 MB peak RSS against 32 MB, and 20% more CPU).
 */
const hashBuffers: Buffer[] = [];
const HASH_BUFFER_BYTES = 1 << 20;

/** MD5 of the bytes [start, end) of the file at `path`. */
export async function fileMd5(path: string, start: number, end: number): Promise<Md5> {
  const hasher = new Bun.CryptoHasher("md5");
  const buffer = hashBuffers.pop() ?? Buffer.allocUnsafe(HASH_BUFFER_BYTES);
  const handle = await open(path, "r");
  try {
    for (let at = start; at < end; ) {
      const { bytesRead } = await handle.read(buffer, 0, Math.min(buffer.length, end - at), at);
      if (bytesRead === 0) throw new Error(`${path} ends at byte ${at}, before ${end}`);
      hasher.update(buffer.subarray(0, bytesRead));
      at += bytesRead;
    }
  } finally {
    await handle.close();
    if (hashBuffers.length < 8) hashBuffers.push(buffer);
  }
  return md5Of(hasher);
}

/** The ETag S3 gives a multipart object: MD5 of the parts' binary MD5s, dash, part count. */
export function multipartEtag(partMd5Hex: readonly string[]): string {
  const hasher = new Bun.CryptoHasher("md5");
  for (const hex of partMd5Hex) hasher.update(Buffer.from(hex, "hex"));
  return `${hasher.digest("hex")}-${partMd5Hex.length}`;
}

/**
 * Whether a failed attempt may still have been carried out by S3: its answer was lost (network
 * error, timeout) or S3 failed after it may have acted (5xx). A 4xx refusal acted on nothing.
 */
function mayHaveCreated(error: AwsError): boolean {
  return error.status === 0 || error.status >= 500 || error.code === "MalformedResponse";
}

export class S3Client {
  readonly journal: MultipartJournal;
  /** datalake.endpoint without its trailing slashes; "" on AWS */
  private readonly endpoint: string;

  constructor(
    readonly client: AwsClient,
    private readonly config: Config,
  ) {
    this.journal = new MultipartJournal(config.state_dir);
    this.endpoint = config.datalake.endpoint.replace(/\/+$/, "");
  }

  /**
   * Path-style under a custom endpoint (tests, MinIO) and for bucket names with dots (DESIGN §9:
   * "a.b.s3.<region>.amazonaws.com" does not match the certificate's one-level wildcard, so TLS
   * fails); virtual-hosted on AWS otherwise.
   */
  url(bucket: string, key: string, query: Record<string, string> = {}): string {
    const path = key ? `/${encodeKey(key)}` : "/";
    const regional = `s3.${this.config.datalake.region}.amazonaws.com`;
    if (this.endpoint || bucket.includes(".")) {
      const base = this.endpoint || `https://${regional}`;
      return `${base}/${bucket}${key ? path : ""}${encodeQuery(query)}`;
    }
    return `https://${bucket}.${regional}${path}${encodeQuery(query)}`;
  }

  private call(
    operation: string,
    method: string,
    bucket: string,
    key: string,
    extra: Partial<AwsRequest> & { query?: Record<string, string> } = {},
  ): Promise<Response> {
    const { query, ...rest } = extra;
    return this.client.request({
      service: "s3",
      method,
      url: this.url(bucket, key, query),
      operation,
      resource: key ? `s3://${bucket}/${key}` : `s3://${bucket}`,
      ...rest,
    });
  }

  /** SSE-KMS headers when datalake.kms_key_arn is set. */
  private encryptionHeaders(): Record<string, string> {
    const arn = this.config.datalake.kms_key_arn;
    if (!arn) return {};
    return {
      "x-amz-server-side-encryption": "aws:kms",
      "x-amz-server-side-encryption-aws-kms-key-id": arn,
    };
  }

  async putObject(bucket: string, key: string, body: Uint8Array): Promise<void> {
    await this.put(bucket, key, body, contentMd5(body));
  }

  /** One PutObject of bytes, or of a file's slice (sent from the file), with its MD5. */
  private async put(bucket: string, key: string, body: Uint8Array | Blob, md5: Md5): Promise<void> {
    await this.call("PutObject", "PUT", bucket, key, {
      body,
      headers: { "Content-MD5": md5.base64, ...this.encryptionHeaders() },
    });
  }

  /** Store the file at `path` under `key`: one PUT below 16 MiB, else a multipart upload. */
  async putFile(bucket: string, key: string, path: string, bytes: number): Promise<void> {
    if (bytes < MULTIPART_THRESHOLD) {
      await this.put(bucket, key, Bun.file(path).slice(0, bytes), await fileMd5(path, 0, bytes));
      return;
    }
    await this.multipartUpload(bucket, key, path, bytes);
  }

  private async multipartUpload(bucket: string, key: string, path: string, bytes: number): Promise<void> {
    const file = Bun.file(path);
    const partBytes = Math.max(PART_BYTES, Math.ceil(bytes / MAX_PARTS / MIB) * MIB);
    const count = Math.ceil(bytes / partBytes);
    let entry = this.journal.begin(bucket, key);
    let uploadId = "";
    try {
      const created = await this.call("CreateMultipartUpload", "POST", bucket, key, {
        query: { uploads: "" },
        headers: this.encryptionHeaders(),
        // An attempt whose answer was lost may have created an upload nobody knows the id of
        // (DESIGN §9): abort it before creating another. If it cannot be aborted now, its
        // journal entry stays for the next run, and this upload gets an entry of its own.
        beforeRetry: async (error) => {
          if (!mayHaveCreated(error)) return;
          try {
            await this.abortUploadsOf(bucket, key);
          } catch (cleanupError) {
            log.warn(
              "could not abort a multipart upload whose creation answer was lost; the next run retries",
              {
                key,
                error: messageOf(cleanupError),
              },
            );
            entry = this.journal.begin(bucket, key);
          }
        },
      });
      uploadId = xmlValues(await created.text(), "UploadId")[0] ?? "";
      if (!uploadId) {
        throw new AwsError(
          "MalformedResponse",
          200,
          "CreateMultipartUpload",
          `s3://${bucket}/${key}`,
          "no UploadId",
        );
      }
      this.journal.started(entry, uploadId);

      const etags: string[] = new Array(count);
      const md5s: string[] = new Array(count);
      let next = 0;
      const worker = async (): Promise<void> => {
        while (next < count) {
          const index = next++;
          const start = index * partBytes;
          const end = Math.min(bytes, start + partBytes);
          const md5 = await fileMd5(path, start, end);
          const part = await this.uploadPart(bucket, key, uploadId, index + 1, file.slice(start, end), md5);
          etags[index] = part.etag;
          md5s[index] = part.md5;
        }
      };
      const workers = Array.from({ length: Math.min(PARTS_IN_FLIGHT, count) }, worker);
      // Stop handing out parts at the first failure, but let the parts in flight settle before
      // the upload is aborted.
      const results = await Promise.allSettled(
        workers.map((w) =>
          w.catch((error: unknown) => {
            next = count;
            throw error;
          }),
        ),
      );
      const failed = results.find((r) => r.status === "rejected");
      if (failed) throw (failed as PromiseRejectedResult).reason;

      await this.completeMultipartUpload(bucket, key, uploadId, path, bytes, etags, md5s);
      this.journal.end(entry);
    } catch (error) {
      if (!uploadId) {
        // Create failed: when its last answer may have been lost, the upload it may have made is
        // looked for and aborted now; if that fails too, the entry tells the next run to.
        if (!(error instanceof AwsError) || mayHaveCreated(error)) {
          try {
            await this.abortUploadsOf(bucket, key);
          } catch {
            throw error;
          }
        }
        this.journal.end(entry);
        throw error;
      }
      try {
        await this.abortMultipartUpload(bucket, key, uploadId);
        this.journal.end(entry);
      } catch (abortError) {
        log.warn("could not abort a failed multipart upload; the next run retries", {
          key,
          error: messageOf(abortError),
        });
      }
      throw error;
    }
  }

  /**
   * One part, with its Content-MD5 (S3 answers BadDigest when the bytes differ). Returns the ETag
   * S3 gave the part, which CompleteMultipartUpload must name (under SSE-KMS it is not the MD5),
   * and the part's MD5 (hex).
   */
  private async uploadPart(
    bucket: string,
    key: string,
    uploadId: string,
    partNumber: number,
    body: Blob,
    md5: Md5,
  ): Promise<{ etag: string; md5: string }> {
    const res = await this.call("UploadPart", "PUT", bucket, key, {
      query: { partNumber: String(partNumber), uploadId },
      body,
      headers: { "Content-MD5": md5.base64 },
    });
    // A server that gives no ETag: S3's ETag of an unencrypted part is its MD5.
    const etag = res.headers.get("etag")?.replace(/"/g, "") || md5.hex;
    return { etag, md5: md5.hex };
  }

  private async completeMultipartUpload(
    bucket: string,
    key: string,
    uploadId: string,
    path: string,
    bytes: number,
    etags: readonly string[],
    md5s: readonly string[],
  ): Promise<void> {
    const parts = etags
      .map((etag, i) => `<Part><PartNumber>${i + 1}</PartNumber><ETag>"${etag}"</ETag></Part>`)
      .join("");
    try {
      await this.call("CompleteMultipartUpload", "POST", bucket, key, {
        query: { uploadId },
        body: `<CompleteMultipartUpload>${parts}</CompleteMultipartUpload>`,
        headers: { "Content-Type": "application/xml" },
        errorIn200Body: true,
      });
    } catch (error) {
      // An earlier attempt completed the upload but its answer was lost: the object is there.
      if (
        error instanceof AwsError &&
        error.code === "NoSuchUpload" &&
        (await this.holds(bucket, key, path, bytes, md5s))
      ) {
        return;
      }
      throw error;
    }
  }

  /**
   * Whether `key` holds exactly the first `bytes` of the file at `path`: S3 gives a multipart
   * object the ETag of its parts' MD5s; S3-compatible servers that give the whole object's MD5
   * instead cost one more read of the file.
   */
  private async holds(
    bucket: string,
    key: string,
    path: string,
    bytes: number,
    md5s: readonly string[],
  ): Promise<boolean> {
    const head = await this.headObject(bucket, key);
    if (!head || head.size !== bytes) return false;
    if (head.etag === multipartEtag(md5s)) return true;
    return head.etag === (await fileMd5(path, 0, bytes)).hex;
  }

  /** Remove `key`; no error when it does not exist. */
  async deleteObject(bucket: string, key: string): Promise<void> {
    try {
      await this.call("DeleteObject", "DELETE", bucket, key);
    } catch (error) {
      if (error instanceof AwsError && (error.code === "NoSuchKey" || error.status === 404)) return;
      throw error;
    }
  }

  /** The object's ETag (without quotes) and size, or null when there is none. */
  async headObject(bucket: string, key: string): Promise<{ etag: string; size: number } | null> {
    try {
      const res = await this.call("HeadObject", "HEAD", bucket, key);
      return {
        etag: (res.headers.get("etag") ?? "").replace(/"/g, ""),
        size: Number(res.headers.get("content-length") ?? 0),
      };
    } catch (error) {
      if (error instanceof AwsError && error.status === 404) return null;
      throw error;
    }
  }

  /**
   * The objects under `prefix` (ListObjectsV2, page by page): key and size. Keys come back as
   * stored (no encoding-type), XML entities undone. `maxKeys`: one page of at most that many.
   * `pageSize`: the keys a page holds (S3's default, 1,000, when not given; tests page smaller).
   */
  async listObjects(
    bucket: string,
    prefix: string,
    maxKeys?: number,
    pageSize?: number,
  ): Promise<{ key: string; size: number }[]> {
    const out: { key: string; size: number }[] = [];
    let token = "";
    for (;;) {
      const query: Record<string, string> = { "list-type": "2", prefix };
      const keys = maxKeys ?? pageSize;
      if (keys !== undefined) query["max-keys"] = String(keys);
      if (token) query["continuation-token"] = token;
      const res = await this.call("ListObjectsV2", "GET", bucket, "", { query });
      const xml = await res.text();
      for (const item of xml.match(/<Contents>[\s\S]*?<\/Contents>/g) ?? []) {
        out.push({ key: xmlValues(item, "Key")[0] ?? "", size: Number(xmlValues(item, "Size")[0] ?? 0) });
      }
      token = xmlValues(xml, "NextContinuationToken")[0] ?? "";
      if (maxKeys !== undefined || xmlValues(xml, "IsTruncated")[0] !== "true" || !token) return out;
    }
  }

  /** The "directories" right under `prefix` (which ends with "/"): their names, without the slash. */
  async listDirectories(bucket: string, prefix: string): Promise<string[]> {
    const out: string[] = [];
    let token = "";
    for (;;) {
      const query: Record<string, string> = { "list-type": "2", prefix, delimiter: "/" };
      if (token) query["continuation-token"] = token;
      const res = await this.call("ListObjectsV2", "GET", bucket, "", { query });
      const xml = await res.text();
      for (const common of xml.match(/<CommonPrefixes>[\s\S]*?<\/CommonPrefixes>/g) ?? []) {
        const full = xmlValues(common, "Prefix")[0] ?? "";
        out.push(full.slice(prefix.length, -1));
      }
      token = xmlValues(xml, "NextContinuationToken")[0] ?? "";
      if (xmlValues(xml, "IsTruncated")[0] !== "true" || !token) return out;
    }
  }

  async listMultipartUploads(bucket: string, prefix = ""): Promise<{ key: string; uploadId: string }[]> {
    const out: { key: string; uploadId: string }[] = [];
    let markers: Record<string, string> = {};
    for (;;) {
      const query: Record<string, string> = { uploads: "", ...markers };
      if (prefix) query.prefix = prefix;
      const res = await this.call("ListMultipartUploads", "GET", bucket, "", { query });
      const xml = await res.text();
      for (const upload of xml.match(/<Upload>[\s\S]*?<\/Upload>/g) ?? []) {
        out.push({
          key: xmlValues(upload, "Key")[0] ?? "",
          uploadId: xmlValues(upload, "UploadId")[0] ?? "",
        });
      }
      if (xmlValues(xml, "IsTruncated")[0] !== "true") return out;
      markers = {
        "key-marker": xmlValues(xml, "NextKeyMarker")[0] ?? "",
        "upload-id-marker": xmlValues(xml, "NextUploadIdMarker")[0] ?? "",
      };
    }
  }

  /** Abort an open multipart upload; an upload already gone is fine. */
  async abortMultipartUpload(bucket: string, key: string, uploadId: string): Promise<void> {
    try {
      await this.call("AbortMultipartUpload", "DELETE", bucket, key, { query: { uploadId } });
    } catch (error) {
      if (error instanceof AwsError && error.code === "NoSuchUpload") return;
      throw error;
    }
  }

  /**
   * The open uploads of exactly `key`. The policy grants s3:ListBucketMultipartUploads for this;
   * credentials without it find none, and an upload left there is removed by the bucket's
   * lifecycle rule (AbortIncompleteMultipartUpload), as S3 recommends.
   */
  private async uploadIdsOf(bucket: string, key: string): Promise<string[]> {
    try {
      const uploads = await this.listMultipartUploads(bucket, key);
      return uploads.filter((u) => u.key === key).map((u) => u.uploadId);
    } catch (error) {
      if (!(error instanceof AwsError && error.status === 403)) throw error;
      log.warn(
        `a multipart upload may be left open on s3://${bucket}/${key} (its creation was interrupted), and these credentials cannot list them: grant s3:ListBucketMultipartUploads (see \`panorama iam-policy\`), or let a lifecycle rule aborting incomplete multipart uploads remove it`,
      );
      return [];
    }
  }

  /**
   * Abort every open upload of exactly `key`, for when a CreateMultipartUpload's id never reached
   * this process (the run lock says no other process writes the key). Returns how many.
   */
  private async abortUploadsOf(bucket: string, key: string): Promise<number> {
    const ids = await this.uploadIdsOf(bucket, key);
    for (const id of ids) await this.abortMultipartUpload(bucket, key, id);
    return ids.length;
  }

  /**
   * Abort the multipart uploads that killed processes left open (recorded in the journal). An
   * entry without an upload id died while CreateMultipartUpload was in flight: the uploads of
   * exactly that key are listed and aborted (the run lock says no other process writes it).
   * Returns how many were aborted.
   */
  async abortOrphanedUploads(): Promise<number> {
    let aborted = 0;
    for (const { name, upload } of this.journal.orphans()) {
      if (upload.uploadId) {
        await this.abortMultipartUpload(upload.bucket, upload.key, upload.uploadId);
        aborted++;
      } else {
        aborted += await this.abortUploadsOf(upload.bucket, upload.key);
      }
      this.journal.end(name);
    }
    if (aborted > 0) log.info(`aborted ${aborted} multipart upload(s) left open by an interrupted run`);
    return aborted;
  }
}
