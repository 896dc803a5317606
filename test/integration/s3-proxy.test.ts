// The proxy's fault hook and request record, against the real s3rver of the test environment.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { AwsClient } from "aws4fetch";
import { skipWithoutTestEnv, type TestEnv, testEnv } from "../support/env.ts";
import { faultSequence, type RecordedRequest, type S3Proxy, startS3Proxy } from "../support/s3-proxy.ts";
import { sha256Hex } from "../support/sigv4.ts";

describe.skipIf(skipWithoutTestEnv())("s3-proxy faults and records", () => {
  // Not the environment's key: the proxy must forward it under the key s3rver knows.
  const credentials = { accessKeyId: "AKIAFAULTTESTKEY0001", secretAccessKey: "fault-test-secret" };
  const prefix = `s3-proxy/${Date.now()}-${Math.random().toString(36).slice(2)}`;
  let env: TestEnv;
  let proxy: S3Proxy;
  let client: AwsClient;

  beforeAll(async () => {
    env = testEnv();
    proxy = await startS3Proxy({ upstream: env.s3.directEndpoint, credentials });
    client = new AwsClient({ ...credentials, service: "s3", region: env.s3.region, retries: 0 });
  });

  afterAll(async () => {
    await proxy?.close();
  });

  const objectUrl = (key: string): string => `${proxy.url}/${env.s3.bucket}/${prefix}/${key}`;
  // Straight to s3rver, past the proxy and its faults.
  const stored = async (key: string): Promise<number> =>
    (await fetch(`${env.s3.directEndpoint}/${env.s3.bucket}/${prefix}/${key}`)).status;

  test("an injected 500 InternalError, then the retry passes", async () => {
    proxy.setFaults(faultSequence({ kind: "error", status: 500, code: "InternalError" }));
    const first = proxy.requests.length;
    const failed = await client.fetch(objectUrl("retry.txt"), { method: "PUT", body: "payload" });
    expect(failed.status).toBe(500);
    expect(await failed.text()).toContain("<Code>InternalError</Code>");
    expect(await stored("retry.txt")).toBe(404);
    const retried = await client.fetch(objectUrl("retry.txt"), { method: "PUT", body: "payload" });
    expect(retried.status).toBe(200);
    expect(await stored("retry.txt")).toBe(200);
    expect(proxy.requests.slice(first).map((r) => [r.fault, r.status])).toEqual([
      ["error", 500],
      ["pass", 200],
    ]);
  });

  test("503 SlowDown is answered as an S3 error document", async () => {
    proxy.setFaults(
      faultSequence({ kind: "error", status: 503, code: "SlowDown", message: "Reduce your request rate." }),
    );
    const res = await client.fetch(objectUrl("slow.txt"), { method: "PUT", body: "x" });
    expect(res.status).toBe(503);
    expect(res.headers.get("content-type")).toBe("application/xml");
    expect(await res.text()).toMatch(
      /<Error><Code>SlowDown<\/Code><Message>Reduce your request rate.<\/Message>/,
    );
  });

  // Every attempt on the key is reset: Bun's fetch itself resends a request once when a reused
  // keep-alive connection drops, so a single reset may never reach the caller.
  const resetKey = (key: string, after?: "upstream") => (r: RecordedRequest) =>
    r.path.endsWith(`/${key}`) ? ({ kind: "reset", after } as const) : undefined;

  test("reset: the connection drops and nothing is stored", async () => {
    proxy.setFaults(resetKey("reset.txt"));
    const first = proxy.requests.length;
    await expect(client.fetch(objectUrl("reset.txt"), { method: "PUT", body: "x" })).rejects.toThrow();
    expect(await stored("reset.txt")).toBe(404);
    const attempts = proxy.requests.slice(first);
    expect(attempts.length).toBeGreaterThanOrEqual(1);
    expect(attempts.every((r) => r.fault === "reset" && r.status === undefined)).toBe(true);
  });

  test("reset after upstream: stored, but the client never hears so", async () => {
    proxy.setFaults(resetKey("reset-after.txt", "upstream"));
    await expect(client.fetch(objectUrl("reset-after.txt"), { method: "PUT", body: "x" })).rejects.toThrow();
    expect(await stored("reset-after.txt")).toBe(200);
  });

  test("stall: the answer comes late, or not at all to a client that gave up", async () => {
    proxy.setFaults(faultSequence({ kind: "stall", ms: 300 }));
    const started = performance.now();
    const late = await client.fetch(objectUrl("stall.txt"), { method: "PUT", body: "x" });
    expect(late.status).toBe(200);
    expect(performance.now() - started).toBeGreaterThanOrEqual(290);

    proxy.setFaults(faultSequence({ kind: "stall", ms: 400 }));
    await expect(
      client.fetch(objectUrl("stall-abandoned.txt"), {
        method: "PUT",
        body: "x",
        signal: AbortSignal.timeout(100),
      }),
    ).rejects.toThrow();
    await Bun.sleep(500);
    expect(await stored("stall-abandoned.txt")).toBe(404);
  });

  test("records the integrity and encryption headers a client sent", async () => {
    proxy.setFaults(undefined);
    const body = "id,name\n1,Ada\n";
    const md5 = new Bun.CryptoHasher("md5").update(body).digest("base64");
    const sha256 = Buffer.from(sha256Hex(body), "hex").toString("base64");
    const res = await client.fetch(objectUrl("checksums.csv"), {
      method: "PUT",
      body,
      headers: {
        "content-md5": md5,
        "x-amz-checksum-sha256": sha256,
        "x-amz-server-side-encryption": "aws:kms",
        "x-amz-server-side-encryption-aws-kms-key-id": "arn:aws:kms:us-east-1:111122223333:key/test",
        "x-amz-content-sha256": sha256Hex(body),
      },
    });
    expect(res.status).toBe(200);
    const recorded = proxy.requests.at(-1);
    expect(recorded).toMatchObject({
      method: "PUT",
      path: `/${env.s3.bucket}/${prefix}/checksums.csv`,
      auth: "ok",
      accessKeyId: credentials.accessKeyId,
      bodyLength: body.length,
      bodySha256: sha256Hex(body),
      status: 200,
      headers: {
        "content-md5": md5,
        "x-amz-checksum-sha256": sha256,
        "x-amz-server-side-encryption": "aws:kms",
        "x-amz-server-side-encryption-aws-kms-key-id": "arn:aws:kms:us-east-1:111122223333:key/test",
      },
    });
    expect(recorded?.headers.authorization).toBeUndefined();
  });

  test("records the query of a list request and refusals", async () => {
    const res = await client.fetch(
      `${proxy.url}/${env.s3.bucket}?list-type=2&prefix=${encodeURIComponent(prefix)}`,
    );
    expect(res.status).toBe(200);
    expect(proxy.requests.at(-1)?.query).toEqual({ "list-type": "2", prefix });
    await fetch(objectUrl("anonymous.txt"));
    expect(proxy.requests.at(-1)).toMatchObject({ auth: "MissingAuthenticationToken", status: 403 });
  });
});
