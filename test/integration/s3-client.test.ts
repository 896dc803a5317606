// The AWS client and the S3 calls against the real s3rver, behind the SigV4 and Content-MD5
// verifying proxy (test/support/s3-proxy.ts), which also injects the faults.
import { afterAll, beforeAll, describe, expect, spyOn, test } from "bun:test";
import { createHash, randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AwsClient, AwsError } from "../../src/aws/client.ts";
import { encodeKey, MIB, multipartEtag, S3Client } from "../../src/aws/s3.ts";
import { log } from "../../src/log.ts";
import { OWN_START } from "../../src/state/process-identity.ts";
import { makeCertificate } from "../support/certificate.ts";
import { skipWithoutTestEnv, type TestEnv, testEnv } from "../support/env.ts";
import { writeS3Config } from "../support/s3-config.ts";
import { type RecordedRequest, type S3Proxy, startS3Proxy } from "../support/s3-proxy.ts";
import { startSilentServer } from "../support/silent-server.ts";

const skip = skipWithoutTestEnv();
const credentials = { accessKeyId: "AKIACLIENTTEST000001", secretAccessKey: "client-test-secret-0123456789" };
const prefix = `s3-client/${Date.now()}-${Math.random().toString(36).slice(2)}`;
const work = mkdtempSync(join(tmpdir(), "panorama-s3-client-"));
let env: TestEnv;
let proxy: S3Proxy;
let bucket: string;

function md5(data: Uint8Array): { base64: string; hex: string } {
  return {
    base64: createHash("md5").update(data).digest("base64"),
    hex: createHash("md5").update(data).digest("hex"),
  };
}

function fileOf(name: string, bytes: number): { path: string; data: Buffer } {
  const data = randomBytes(bytes);
  const path = join(work, name);
  writeFileSync(path, data);
  return { path, data };
}

/** Straight from s3rver, past the proxy. */
async function stored(key: string): Promise<Buffer | null> {
  const res = await fetch(`${env.s3.directEndpoint}/${bucket}/${encodeKey(key)}`);
  if (res.status === 404) return null;
  expect(res.status).toBe(200);
  return Buffer.from(await res.arrayBuffer());
}

function s3(options: { secret?: string; timeoutMs?: number; attempts?: number } = {}): {
  s3: S3Client;
  stateDir: string;
} {
  const cfg = writeS3Config({
    endpoint: proxy.url,
    accessKeyId: credentials.accessKeyId,
    secretAccessKey: options.secret ?? credentials.secretAccessKey,
  });
  const client = new AwsClient(cfg.config, {
    retry: { attempts: options.attempts ?? 6, baseMs: 20, maxMs: 200 },
    timeoutMs: options.timeoutMs ?? 10_000,
  });
  return { s3: new S3Client(client, cfg.config), stateDir: cfg.stateDir };
}

const since = (first: number): RecordedRequest[] => proxy.requests.slice(first);

beforeAll(async () => {
  if (skip) return;
  env = testEnv();
  bucket = env.s3.bucket;
  proxy = await startS3Proxy({ upstream: env.s3.directEndpoint, credentials, sseKmsEtags: true });
});

afterAll(async () => {
  await proxy?.close();
  // The test files (tens of MiB) go with the run.
  rmSync(work, { recursive: true, force: true });
});

describe.skipIf(skip)("S3 client", () => {
  test("a small file is stored byte-identical, with a Content-MD5 the server checks", async () => {
    const { s3: client } = s3();
    const key = `${prefix}/lms=lms.example.com/course_id=course-v1%3AMITx%2B6.00x+2024 (a)/small.csv`;
    const { path, data } = fileOf("small.bin", 70_001);
    const first = proxy.requests.length;
    await client.putFile(bucket, key, path, data.length);
    expect(await stored(key)).toEqual(data);
    const [put] = since(first);
    expect(put).toMatchObject({ method: "PUT", auth: "ok", status: 200, bodyLength: data.length });
    expect(put?.headers["content-md5"]).toBe(md5(data).base64);
    expect(put?.headers["x-amz-server-side-encryption"]).toBeUndefined();
    expect(await client.headObject(bucket, key)).toEqual({ etag: md5(data).hex, size: data.length });
  });

  test("a listing longer than a page follows the continuation tokens to its end", async () => {
    // A datalake of 30,000 partitions lists in 31 pages of 1,000; here pages of 2.
    const { s3: client } = s3();
    const dir = `${prefix}/paged/lms=lms.example.com`;
    const keys = [0, 1, 2, 3, 4].map((i) => `${dir}/course_id=Org${i}/C/Run/t.csv`);
    const { path, data } = fileOf("page.bin", 10);
    for (const key of keys) await client.putFile(bucket, key, path, data.length);
    const first = proxy.requests.length;
    const listed = await client.listObjects(bucket, `${dir}/`, undefined, 2);
    expect(listed.map((o) => o.key).sort()).toEqual(keys);
    expect(listed.every((o) => o.size === 10)).toBe(true);
    expect(since(first).map((r) => r.status)).toEqual([200, 200, 200]);
  });

  test("a body that does not match its Content-MD5 is refused with BadDigest", async () => {
    const { s3: client } = s3();
    const aws = (client as unknown as { client: AwsClient }).client;
    const key = `${prefix}/bad-digest.txt`;
    const error = await aws
      .request({
        service: "s3",
        method: "PUT",
        url: client.url(bucket, key),
        headers: { "Content-MD5": md5(Buffer.from("something else")).base64 },
        body: "payload",
        operation: "PutObject",
        resource: `s3://${bucket}/${key}`,
      })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AwsError);
    expect((error as AwsError).code).toBe("BadDigest");
    expect(await stored(key)).toBeNull();
  });

  test("SSE-KMS headers are sent when kms_key_arn is set", async () => {
    const arn = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
    const cfg = writeS3Config({
      endpoint: proxy.url,
      ...credentials,
      datalake: `kms_key_arn = "${arn}"`,
    });
    const client = new S3Client(new AwsClient(cfg.config), cfg.config);
    const first = proxy.requests.length;
    await client.putObject(bucket, `${prefix}/kms.csv`, new TextEncoder().encode("a\r\n"));
    expect(since(first)[0]?.headers).toMatchObject({
      "x-amz-server-side-encryption": "aws:kms",
      "x-amz-server-side-encryption-aws-kms-key-id": arn,
    });
  });

  test("a 20 MiB file goes as a multipart upload of 8 MiB parts and reads back identical", async () => {
    const { s3: client, stateDir } = s3();
    const key = `${prefix}/big/course_id=a%2Bb/big.csv`;
    const { path, data } = fileOf("big.bin", 20 * MIB + 3);
    const first = proxy.requests.length;
    await client.putFile(bucket, key, path, data.length);
    expect(await stored(key)).toEqual(data);
    const parts = since(first)
      .filter((r) => r.method === "PUT")
      .sort((a, b) => Number(a.query.partNumber) - Number(b.query.partNumber));
    expect(parts.map((r) => [r.query.partNumber, r.bodyLength])).toEqual([
      ["1", 8 * MIB],
      ["2", 8 * MIB],
      ["3", 4 * MIB + 3],
    ]);
    for (const [i, part] of parts.entries()) {
      const slice = data.subarray(i * 8 * MIB, (i + 1) * 8 * MIB);
      expect(part.headers["content-md5"]).toBe(md5(slice).base64);
    }
    const uploads = proxy.multipartUploads.filter((u) => u.key === key);
    expect(uploads.map((u) => u.state)).toEqual(["completed"]);
    const partMd5s = [0, 1, 2].map((i) => md5(data.subarray(i * 8 * MIB, (i + 1) * 8 * MIB)).hex);
    expect((await client.headObject(bucket, key))?.size).toBe(data.length);
    expect(multipartEtag(partMd5s)).toMatch(/^[0-9a-f]{32}-3$/);
    // Completed uploads leave nothing in the journal.
    expect(readdirSync(join(stateDir, "multipart"))).toEqual([]);
  });

  test("over HTTPS a file's body goes as a stream with its length, not chunked, and again whole when a retry sends it again", async () => {
    // What S3 does over TLS that s3rver here does not: a stand-in answering HTTPS, a 500 to the
    // first PUT. (Over TLS, a Blob body is read whole into memory by Bun's fetch; streamed, a
    // part in flight costs its socket's buffers: bench-upload.ts measures it.)
    const tlsDir = join(work, "tls");
    mkdirSync(tlsDir);
    const { keyFile, certFile } = makeCertificate(tlsDir, "s3.test");
    const seen: { length: string | null; chunked: string | null; sha: string }[] = [];
    const server = Bun.serve({
      port: 0,
      hostname: "127.0.0.1",
      tls: { key: Bun.file(keyFile), cert: Bun.file(certFile) },
      async fetch(req) {
        const body = Buffer.from(await req.arrayBuffer());
        seen.push({
          length: req.headers.get("content-length"),
          chunked: req.headers.get("transfer-encoding"),
          sha: createHash("sha256").update(body).digest("hex"),
        });
        if (seen.length === 1) return new Response("", { status: 500 });
        return new Response("", { headers: { ETag: `"${md5(body).hex}"` } });
      },
    });
    try {
      const cfg = writeS3Config({ endpoint: `https://127.0.0.1:${server.port}`, ...credentials });
      const ca = readFileSync(certFile, "utf8");
      const client = new AwsClient(cfg.config, {
        retry: { attempts: 3, baseMs: 10, maxMs: 20 },
        fetch: ((url: string, init: RequestInit) => fetch(url, { ...init, tls: { ca } })) as typeof fetch,
      });
      const { path, data } = fileOf("tls.bin", 3 * MIB + 5);
      await new S3Client(client, cfg.config).putFile(bucket, `${prefix}/tls.csv`, path, data.length);
      const sha = createHash("sha256").update(data).digest("hex");
      expect(seen).toEqual([
        { length: String(data.length), chunked: null, sha },
        { length: String(data.length), chunked: null, sha },
      ]);
    } finally {
      server.stop(true);
    }
  });

  test("a file shorter than the bytes it was handed with is refused before anything is sent, saying where it ends", async () => {
    const { s3: client } = s3();
    const key = `${prefix}/short.csv`;
    const { path, data } = fileOf("short.bin", 1000);
    const first = proxy.requests.length;
    await expect(client.putFile(bucket, key, path, data.length + 10)).rejects.toThrow(
      `${path} ends at byte 1000, before 1010`,
    );
    expect(since(first)).toEqual([]);
    expect(await stored(key)).toBeNull();
  });

  test("under SSE-KMS the part ETags are not MD5s: Complete names the ETags S3 answered", async () => {
    const arn = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
    const cfg = writeS3Config({ endpoint: proxy.url, ...credentials, datalake: `kms_key_arn = "${arn}"` });
    const client = new S3Client(new AwsClient(cfg.config), cfg.config);
    const key = `${prefix}/kms/big.csv`;
    const { path, data } = fileOf("kms-big.bin", 17 * MIB);
    const first = proxy.requests.length;
    await client.putFile(bucket, key, path, data.length);
    expect(await stored(key)).toEqual(data);
    const requests = since(first);
    expect(requests[0]?.headers["x-amz-server-side-encryption"]).toBe("aws:kms");
    const parts = requests
      .filter((r) => r.method === "PUT")
      .sort((a, b) => Number(a.query.partNumber) - Number(b.query.partNumber));
    expect(parts).toHaveLength(3);
    for (const [i, part] of parts.entries()) {
      expect(part.etag).toMatch(/^[0-9a-f]{32}$/);
      expect(part.etag).not.toBe(md5(data.subarray(i * 8 * MIB, (i + 1) * 8 * MIB)).hex);
    }
    const complete = requests.filter((r) => r.method === "POST" && r.query.uploadId);
    expect(complete.map((r) => r.status)).toEqual([200]);
    expect(proxy.multipartUploads.filter((u) => u.key === key).map((u) => u.state)).toEqual(["completed"]);
  });

  test("the proxy refuses, as S3 does, a Complete naming a part's MD5 instead of its SSE-KMS ETag", async () => {
    const { s3: client } = s3();
    const aws = (client as unknown as { client: AwsClient }).client;
    const key = `${prefix}/kms/md5-named.csv`;
    const resource = `s3://${bucket}/${key}`;
    const created = await aws.request({
      service: "s3",
      method: "POST",
      url: client.url(bucket, key, { uploads: "" }),
      headers: { "x-amz-server-side-encryption": "aws:kms" },
      operation: "CreateMultipartUpload",
      resource,
    });
    const uploadId = /<UploadId>([^<]*)<\/UploadId>/.exec(await created.text())?.[1] ?? "";
    const part = randomBytes(1000);
    const put = await aws.request({
      service: "s3",
      method: "PUT",
      url: client.url(bucket, key, { partNumber: "1", uploadId }),
      headers: { "Content-MD5": md5(part).base64 },
      body: part,
      operation: "UploadPart",
      resource,
    });
    const etag = put.headers.get("etag")?.replace(/"/g, "");
    expect(etag).not.toBe(md5(part).hex);
    const complete = (named: string): Promise<unknown> =>
      aws
        .request({
          service: "s3",
          method: "POST",
          url: client.url(bucket, key, { uploadId }),
          headers: { "Content-Type": "application/xml" },
          body: `<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>"${named}"</ETag></Part></CompleteMultipartUpload>`,
          operation: "CompleteMultipartUpload",
          resource,
        })
        .catch((e: unknown) => e);
    expect(await complete(md5(part).hex)).toMatchObject({ code: "InvalidPart", status: 400 });
    expect(await complete(etag ?? "")).toBeInstanceOf(Response);
    expect(await stored(key)).toEqual(part);
  });

  test("a Complete answered 200 with an InternalError in its body is retried by the client", async () => {
    const { s3: client } = s3();
    const big = fileOf("complete-200-error.bin", 16 * MIB);
    const key = `${prefix}/complete-200-error.csv`;
    let failed = 0;
    proxy.setFaults((r) =>
      r.method === "POST" && r.query.uploadId && failed++ === 0
        ? { kind: "error", status: 200, code: "InternalError", message: "We encountered an internal error." }
        : undefined,
    );
    const first = proxy.requests.length;
    try {
      await client.putFile(bucket, key, big.path, big.data.length);
    } finally {
      proxy.setFaults(undefined);
    }
    expect(await stored(key)).toEqual(big.data);
    const completes = since(first).filter((r) => r.method === "POST" && r.query.uploadId);
    expect(completes.map((r) => [r.status, r.fault])).toEqual([
      [200, "error"],
      [200, "pass"],
    ]);
    expect(proxy.multipartUploads.filter((u) => u.key === key).map((u) => u.state)).toEqual(["completed"]);
  });

  test("a Complete answered 200 with an error every time: the error after the client's attempts, the upload aborted", async () => {
    const { s3: client, stateDir } = s3({ attempts: 2 });
    const big = fileOf("complete-200-errors.bin", 16 * MIB);
    const key = `${prefix}/complete-200-errors.csv`;
    proxy.setFaults((r) =>
      r.method === "POST" && r.query.uploadId
        ? { kind: "error", status: 200, code: "InternalError" }
        : undefined,
    );
    const first = proxy.requests.length;
    const error = await client
      .putFile(bucket, key, big.path, big.data.length)
      .catch((e: unknown) => e)
      .finally(() => proxy.setFaults(undefined));
    expect(error).toBeInstanceOf(AwsError);
    expect(error).toMatchObject({ code: "InternalError", operation: "CompleteMultipartUpload" });
    expect(since(first).filter((r) => r.method === "POST" && r.query.uploadId)).toHaveLength(2);
    expect(proxy.multipartUploads.filter((u) => u.key === key).map((u) => u.state)).toEqual(["aborted"]);
    expect(await stored(key)).toBeNull();
    expect(readdirSync(join(stateDir, "multipart"))).toEqual([]);
  });

  test("500s, 503 SlowDown, resets and stalls: the uploads complete with identical objects", async () => {
    const { s3: client } = s3({ timeoutMs: 1_000 });
    const small = fileOf("faults-small.bin", 300_000);
    const big = fileOf("faults-big.bin", 17 * MIB);
    const smallKey = `${prefix}/faults/small.csv`;
    const bigKey = `${prefix}/faults/big.csv`;
    let n = 0;
    let k = 0;
    // Every other request meets a fault, in turn each kind; the rest pass.
    const kinds = [
      { kind: "error", status: 500, code: "InternalError" },
      { kind: "error", status: 503, code: "SlowDown", message: "Reduce your request rate." },
      { kind: "reset" },
      { kind: "reset", after: "upstream" },
      { kind: "stall", ms: 1_500 },
      { kind: "stall", ms: 200 },
    ] as const;
    proxy.setFaults(() => (n++ % 2 === 0 ? kinds[k++ % kinds.length] : undefined));
    const first = proxy.requests.length;
    try {
      await Promise.all([
        client.putFile(bucket, smallKey, small.path, small.data.length),
        client.putFile(bucket, bigKey, big.path, big.data.length),
      ]);
    } finally {
      proxy.setFaults(undefined);
    }
    expect(await stored(smallKey)).toEqual(small.data);
    expect(await stored(bigKey)).toEqual(big.data);
    const faults = new Set(since(first).map((r) => r.fault));
    expect([...faults].sort()).toEqual(["error", "pass", "reset", "stall"]);
    expect(proxy.multipartUploads.filter((u) => u.key === bigKey && u.state === "open")).toEqual([]);
  }, 60_000);

  test("a Complete whose answer is lost: the retry sees NoSuchUpload, finds the object and succeeds", async () => {
    const { s3: client } = s3();
    const big = fileOf("lost-complete.bin", 16 * MIB);
    const key = `${prefix}/lost-complete.csv`;
    proxy.setFaults((r) =>
      r.method === "POST" && r.query.uploadId ? { kind: "reset", after: "upstream" } : undefined,
    );
    try {
      await client.putFile(bucket, key, big.path, big.data.length);
    } finally {
      proxy.setFaults(undefined);
    }
    expect(await stored(key)).toEqual(big.data);
  }, 30_000);

  test("a CreateMultipartUpload whose answer is lost (reset after S3 created it): the lost upload is aborted, none is left open", async () => {
    const { s3: client, stateDir } = s3();
    const big = fileOf("lost-create.bin", 17 * MIB);
    const key = `${prefix}/lost-create/big.csv`;
    let creates = 0;
    proxy.setFaults((r) =>
      r.method === "POST" && "uploads" in r.query && creates++ === 0
        ? { kind: "reset", after: "upstream" }
        : undefined,
    );
    const first = proxy.requests.length;
    try {
      await client.putFile(bucket, key, big.path, big.data.length);
    } finally {
      proxy.setFaults(undefined);
    }
    expect(await stored(key)).toEqual(big.data);
    // Two uploads were created: the one whose id never arrived was aborted, the other completed.
    expect(proxy.multipartUploads.filter((u) => u.key === key).map((u) => u.state)).toEqual([
      "aborted",
      "completed",
    ]);
    const calls = since(first).map((r) =>
      r.method === "GET" && "uploads" in r.query ? "list" : r.method === "DELETE" ? "abort" : r.fault,
    );
    expect(calls.slice(0, 4)).toEqual(["reset", "list", "abort", "pass"]);
    expect(await client.listMultipartUploads(bucket, `${prefix}/lost-create/`)).toEqual([]);
    expect(readdirSync(join(stateDir, "multipart"))).toEqual([]);
  }, 30_000);

  test("every CreateMultipartUpload answer lost: the error after the attempts, and still no upload left open", async () => {
    const { s3: client, stateDir } = s3({ attempts: 3 });
    const big = fileOf("lost-creates.bin", 16 * MIB);
    const key = `${prefix}/lost-creates/big.csv`;
    proxy.setFaults((r) =>
      r.method === "POST" && "uploads" in r.query ? { kind: "reset", after: "upstream" } : undefined,
    );
    const error = await client
      .putFile(bucket, key, big.path, big.data.length)
      .catch((e: unknown) => e)
      .finally(() => proxy.setFaults(undefined));
    expect(error).toBeInstanceOf(AwsError);
    expect((error as AwsError).message).toContain(
      `CreateMultipartUpload s3://${bucket}/${key} failed: NetworkError`,
    );
    expect(proxy.multipartUploads.filter((u) => u.key === key).map((u) => u.state)).toEqual([
      "aborted",
      "aborted",
      "aborted",
    ]);
    expect(await client.listMultipartUploads(bucket, `${prefix}/lost-creates/`)).toEqual([]);
    expect(await stored(key)).toBeNull();
    expect(readdirSync(join(stateDir, "multipart"))).toEqual([]);
  }, 30_000);

  test("a part refused for good: the upload is aborted, the error names operation, key and hint", async () => {
    const { s3: client, stateDir } = s3();
    const big = fileOf("denied.bin", 18 * MIB);
    const key = `${prefix}/denied/big.csv`;
    proxy.setFaults((r) =>
      r.query.partNumber === "2" ? { kind: "error", status: 403, code: "AccessDenied" } : undefined,
    );
    const error = await client
      .putFile(bucket, key, big.path, big.data.length)
      .catch((e: unknown) => e)
      .finally(() => proxy.setFaults(undefined));
    expect(error).toBeInstanceOf(AwsError);
    const message = (error as AwsError).message;
    expect(message).toContain(`UploadPart s3://${bucket}/${key} failed: AccessDenied (HTTP 403)`);
    expect(message).toContain("compare the permissions of these credentials with `panorama iam-policy`");
    expect(proxy.multipartUploads.filter((u) => u.key === key).map((u) => u.state)).toEqual(["aborted"]);
    expect(await stored(key)).toBeNull();
    expect(readdirSync(join(stateDir, "multipart"))).toEqual([]);
  });

  test("a wrong secret: SignatureDoesNotMatch, a hint about the secret, and no secret in the message", async () => {
    const wrong = "wrong-secret-value-9876543210";
    const { s3: client } = s3({ secret: wrong });
    const key = `${prefix}/wrong-secret.csv`;
    const error = await client.putObject(bucket, key, new Uint8Array([1, 2, 3])).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AwsError);
    const e = error as AwsError;
    expect(e).toMatchObject({ code: "SignatureDoesNotMatch", status: 403, operation: "PutObject" });
    expect(e.message).toContain(`PutObject s3://${bucket}/${key} failed: SignatureDoesNotMatch`);
    expect(e.message).toContain("check the secret access key");
    expect(e.message).not.toContain(wrong);
    expect(e.message).not.toContain(credentials.secretAccessKey);
    expect(await stored(key)).toBeNull();
  });

  test("retries stop at the configured attempts: S3 down gives a NetworkError naming the call", async () => {
    const cfg = writeS3Config({ endpoint: "http://127.0.0.1:9", ...credentials });
    const client = new S3Client(
      new AwsClient(cfg.config, { retry: { attempts: 3, baseMs: 10, maxMs: 20 } }),
      cfg.config,
    );
    const error = await client.deleteObject(bucket, "x/y.csv").catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AwsError);
    expect((error as AwsError).message).toMatch(/^DeleteObject s3:\/\/.*\/x\/y\.csv failed: NetworkError/);
  });

  test("HeadObject of a missing key is null; DeleteObject of it is fine; delete removes", async () => {
    const { s3: client } = s3();
    expect(await client.headObject(bucket, `${prefix}/missing.csv`)).toBeNull();
    await client.deleteObject(bucket, `${prefix}/missing.csv`);
    await client.putObject(bucket, `${prefix}/gone.csv`, new Uint8Array([1]));
    await client.deleteObject(bucket, `${prefix}/gone.csv`);
    expect(await stored(`${prefix}/gone.csv`)).toBeNull();
  });

  test("uploads left open by a dead process are listed and aborted on the next start", async () => {
    const { s3: client, stateDir } = s3();
    // Uploads opened by processes that died before completing them.
    const open = async (key: string): Promise<string> => {
      const res = await (client as unknown as { client: AwsClient }).client.request({
        service: "s3",
        method: "POST",
        url: client.url(bucket, key, { uploads: "" }),
        operation: "CreateMultipartUpload",
        resource: key,
      });
      return /<UploadId>([^<]*)<\/UploadId>/.exec(await res.text())?.[1] ?? "";
    };
    const key = `${prefix}/orphan/big.csv`;
    const uploadId = await open(key);
    // A killed pod's: panorama is pid 1 in every pod, so its pid is this process's; its start differs.
    const podKey = `${prefix}/orphan/pod.csv`;
    const podUploadId = await open(podKey);
    const other = `${prefix}/orphan/unknown-id.csv`;
    await open(other);
    expect((await client.listMultipartUploads(bucket, `${prefix}/orphan/`)).map((u) => u.key).sort()).toEqual(
      [key, podKey, other].sort(),
    );
    // A process that died after Create (id known) and one that died during it (id unknown).
    const dead = 999_999;
    const dir = join(stateDir, "multipart");
    mkdirSync(dir, { recursive: true });
    const at = new Date().toISOString();
    writeFileSync(join(dir, "a.json"), JSON.stringify({ bucket, key, uploadId, pid: dead, started_at: at }));
    writeFileSync(
      join(dir, "b.json"),
      JSON.stringify({ bucket, key: other, uploadId: "", pid: dead, started_at: at }),
    );
    expect(OWN_START).toBeNumber();
    const ownPid = { pid: process.pid, pid_start: (OWN_START ?? 0) - 1 };
    writeFileSync(
      join(dir, "p.json"),
      JSON.stringify({ bucket, key: podKey, uploadId: podUploadId, ...ownPid, started_at: at }),
    );
    // A live process's upload is left alone, this process's too.
    writeFileSync(
      join(dir, "c.json"),
      JSON.stringify({ bucket, key: "live", uploadId: "x", pid: process.ppid, started_at: at }),
    );
    writeFileSync(
      join(dir, "d.json"),
      JSON.stringify({
        bucket,
        key: "own",
        uploadId: "y",
        pid: process.pid,
        pid_start: OWN_START,
        started_at: at,
      }),
    );
    expect(await client.abortOrphanedUploads()).toBe(3);
    expect(await client.listMultipartUploads(bucket, `${prefix}/orphan/`)).toEqual([]);
    expect(readdirSync(dir).sort()).toEqual(["c.json", "d.json"]);
  });
});

describe.skipIf(skip)("S3 client without s3:ListBucketMultipartUploads", () => {
  test("an entry left during CreateMultipartUpload is dropped with a warning, not retried forever", async () => {
    const { s3: client, stateDir } = s3();
    const dir = join(stateDir, "multipart");
    mkdirSync(dir, { recursive: true });
    const entry = { bucket, key: `${prefix}/denied-list.csv`, uploadId: "", pid: 999_999, started_at: "" };
    writeFileSync(join(dir, "d.json"), JSON.stringify(entry));
    proxy.setFaults((r) =>
      "uploads" in r.query ? { kind: "error", status: 403, code: "AccessDenied" } : undefined,
    );
    try {
      expect(await client.abortOrphanedUploads()).toBe(0);
    } finally {
      proxy.setFaults(undefined);
    }
    expect(readdirSync(dir)).toEqual([]);
  });
});

describe("AWS JSON 1.1 calls", () => {
  test("X-Amz-Target, content type, signature scope; __type becomes the error code", async () => {
    const seen: { target: string | null; type: string | null; auth: string | null; body: string }[] = [];
    const server = Bun.serve({
      port: 0,
      hostname: "127.0.0.1",
      async fetch(req) {
        const body = await req.text();
        seen.push({
          target: req.headers.get("x-amz-target"),
          type: req.headers.get("content-type"),
          auth: req.headers.get("authorization"),
          body,
        });
        if (JSON.parse(body).Name === "missing") {
          return Response.json(
            { __type: "com.amazonaws.glue#EntityNotFoundException", Message: "Table missing not found" },
            { status: 400 },
          );
        }
        return Response.json({ Table: { Name: "t" } });
      },
    });
    try {
      const { parseConfig } = await import("../../src/config/load.ts");
      const text = `mode = "CUSTOM"\nlms_host = "x"\nstate_dir = "${work}"\n[datalake]\ntarget = "s3"\nbucket = "b-b-b"\nregion = "eu-west-3"\nglue_endpoint = "http://127.0.0.1:${server.port}"\n[aws]\naccess_key_id = "AKIAJSONTEST"\nsecret_access_key = "json-secret"\n`;
      const { config } = parseConfig(text, join(work, "x.toml"), {});
      const client = new AwsClient(config, { retry: { attempts: 1 } });
      const ok = await client.json<{ Table: { Name: string } }>(
        "glue",
        "AWSGlue.GetTable",
        { DatabaseName: "d", Name: "t" },
        "table d.t",
      );
      expect(ok.Table.Name).toBe("t");
      expect(seen[0]).toMatchObject({ target: "AWSGlue.GetTable", type: "application/x-amz-json-1.1" });
      expect(seen[0]?.auth).toContain("/eu-west-3/glue/aws4_request");
      const error = await client
        .json("glue", "AWSGlue.GetTable", { DatabaseName: "d", Name: "missing" }, "table d.missing")
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(AwsError);
      expect(error).toMatchObject({ code: "EntityNotFoundException", status: 400, operation: "GetTable" });
      expect((error as AwsError).message).toBe(
        "GetTable table d.missing failed: EntityNotFoundException (HTTP 400): Table missing not found",
      );
    } finally {
      server.stop(true);
    }
  });
});

describe("AWS endpoints that fall silent", () => {
  /** A client of S3 and Glue at `endpoint`, with a limit on silence of `timeoutMs`. */
  async function silentClient(
    endpoint: string,
    timeoutMs: number,
    slowLinkBytesPerSecond?: number,
  ): Promise<{ client: AwsClient; s3: S3Client }> {
    const { parseConfig } = await import("../../src/config/load.ts");
    const text = `mode = "CUSTOM"\nlms_host = "x"\nstate_dir = "${join(work, "silent")}"\n[datalake]\ntarget = "s3"\nbucket = "silent-bucket"\nregion = "eu-west-3"\nendpoint = "${endpoint}"\nglue_endpoint = "${endpoint}"\n[aws]\naccess_key_id = "AKIASILENTTEST"\nsecret_access_key = "silent-secret"\n`;
    const { config } = parseConfig(text, join(work, "silent.toml"), {});
    const client = new AwsClient(config, {
      retry: { attempts: 6, baseMs: 10, maxMs: 20 },
      timeoutMs,
      ...(slowLinkBytesPerSecond ? { slowLinkBytesPerSecond } : {}),
    });
    return { client, s3: new S3Client(client, config) };
  }

  async function failure(call: Promise<unknown>): Promise<{ error: AwsError; ms: number }> {
    const started = Date.now();
    const error = await call.then(
      () => null,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(AwsError);
    return { error: error as AwsError, ms: Date.now() - started };
  }

  test("a Glue endpoint that accepts and never answers: a Timeout naming it after two attempts of the limit, not six, the retry a warning", async () => {
    const server = await startSilentServer("silent");
    const warn = spyOn(log, "warn");
    try {
      const { client } = await silentClient(server.url, 300);
      const { error, ms } = await failure(
        client.json("glue", "AWSGlue.GetTable", { DatabaseName: "d", Name: "t" }, "table d.t"),
      );
      expect(error).toMatchObject({ code: "Timeout", operation: "GetTable", unreachable: true });
      expect(error.message).toBe(
        `GetTable table d.t failed: Timeout: no answer for 0.3 s (${server.url}); nothing answered in time: check the network path to that address (proxy, firewall, load balancer) and the endpoint setting if it is a custom one, then run again`,
      );
      expect(server.connections).toBe(2);
      expect(ms).toBeGreaterThanOrEqual(600);
      expect(ms).toBeLessThan(3_000);
      expect(warn.mock.calls.map((c) => c[0])).toEqual([
        `GetTable table d.t failed: Timeout: no answer for 0.3 s (${server.url}); retrying (attempt 2)`,
      ]);
    } finally {
      warn.mockRestore();
      await server.stop();
    }
  });

  /** The call's failure against a server that behaves so, with a limit of 0.3 s. */
  async function silentFailure(
    behaviour: Parameters<typeof startSilentServer>[0],
    call: (clients: { client: AwsClient; s3: S3Client }) => Promise<unknown>,
  ): Promise<{ error: AwsError; ms: number; url: string; connections: number }> {
    const server = await startSilentServer(behaviour);
    try {
      const failed = await failure(call(await silentClient(server.url, 300)));
      return { ...failed, url: server.url, connections: server.connections };
    } finally {
      await server.stop();
    }
  }

  test("an S3 request without a body to an endpoint that never answers: a Timeout after two attempts", async () => {
    const { error, ms, url, connections } = await silentFailure("silent", ({ s3 }) =>
      s3.headObject("silent-bucket", "a/b.csv"),
    );
    expect(error).toMatchObject({ code: "Timeout", operation: "HeadObject" });
    expect(error.detail).toBe(`no answer for 0.3 s (${url})`);
    expect(connections).toBe(2);
    expect(ms).toBeLessThan(3_000);
  });

  test("an answer whose headers come and whose body stalls: a Timeout saying the answer stopped", async () => {
    const { error, ms, url, connections } = await silentFailure("headers", ({ client }) =>
      client.json("glue", "AWSGlue.GetDatabase", { Name: "d" }, "database d"),
    );
    expect(error).toMatchObject({ code: "Timeout", operation: "GetDatabase" });
    expect(error.detail).toBe(`the answer stopped coming for 0.3 s (${url})`);
    expect(connections).toBe(2);
    expect(ms).toBeLessThan(3_000);
  });

  test("an answer that comes a byte at a time, slower than the slowest link: a Timeout, not a run held for hours", async () => {
    const server = await startSilentServer("trickle", 20);
    try {
      // 1,000 bytes a second allowed: the 50 a second sent fall behind soon after the limit.
      const { client } = await silentClient(server.url, 300, 1_000);
      const { error, ms } = await failure(
        client.json("glue", "AWSGlue.GetDatabase", { Name: "d" }, "database d"),
      );
      expect(error).toMatchObject({ code: "Timeout", operation: "GetDatabase" });
      expect(error.detail).toMatch(
        new RegExp(`^the answer came too slowly for 0\\.\\d s, under 8 kbit/s \\(${server.url}\\)$`),
      );
      expect(server.connections).toBe(2);
      expect(ms).toBeLessThan(3_000);
    } finally {
      await server.stop();
    }
  });

  test("an upload the endpoint stops taking: a Timeout after the limit and the body's time over the slowest link", async () => {
    const server = await startSilentServer("silent");
    const path = join(work, "silent-upload.bin");
    // More than the kernel's buffers on both ends of a loopback connection take in.
    writeFileSync(path, new Uint8Array(32 * MIB));
    try {
      // 15 MiB at the test's "slowest link" of 15 MiB/s: 1 s on top of the 0.3 s.
      const { s3: client } = await silentClient(server.url, 300, 15 * MIB);
      const { error, ms } = await failure(client.putFile("silent-bucket", "a/big.csv", path, 15 * MIB));
      expect(error).toMatchObject({ code: "Timeout", operation: "PutObject" });
      expect(error.detail).toBe(`no answer for 1.3 s (${server.url})`);
      expect(server.connections).toBe(2);
      expect(ms).toBeGreaterThanOrEqual(2_600);
      expect(ms).toBeLessThan(8_000);
    } finally {
      await server.stop();
    }
  });

  test("an upload that takes longer than the limit is not cut: the wait allows for the body over the slowest link", async () => {
    const server = await startSilentServer("slow", 100);
    const path = join(work, "slow-upload.bin");
    writeFileSync(path, randomBytes(12 * MIB));
    try {
      // The server reads in small bites with pauses: the upload takes seconds, more than the 1 s
      // limit; the slowest link allowed for, 256 KiB/s, gives 12 MiB 48 s.
      const { s3: client } = await silentClient(server.url, 1_000, 256 * 1024);
      const started = Date.now();
      await client.putFile("silent-bucket", "a/slow.csv", path, 12 * MIB);
      // Longer than two attempts' limits, in one attempt.
      expect(Date.now() - started).toBeGreaterThan(2_000);
      expect(server.connections).toBe(1);
    } finally {
      await server.stop();
    }
  }, 30_000);

  test("a 503 is tried the full six times where a timeout is tried twice", async () => {
    let requests = 0;
    const server = Bun.serve({
      port: 0,
      hostname: "127.0.0.1",
      fetch() {
        requests++;
        return new Response("", { status: 503 });
      },
    });
    try {
      const { client } = await silentClient(`http://127.0.0.1:${server.port}`, 300);
      const { error } = await failure(
        client.json("glue", "AWSGlue.GetDatabase", { Name: "d" }, "database d"),
      );
      expect(error).toMatchObject({ code: "ServiceUnavailable", status: 503 });
      expect(requests).toBe(6);
    } finally {
      server.stop(true);
    }
  });
});
