// The S3 endpoint of the test environment refuses what real S3 refuses: s3rver alone accepts any
// signature, so without the proxy a signing bug would pass every test.
import { beforeAll, describe, expect, test } from "bun:test";
import { AwsClient, AwsV4Signer } from "aws4fetch";
import { skipWithoutTestEnv, type TestEnv, testEnv } from "../support/env.ts";
import { sha256Hex } from "../support/sigv4.ts";

function errorCode(xml: string): string | undefined {
  return /<Code>([^<]*)<\/Code>/.exec(xml)?.[1];
}

describe.skipIf(skipWithoutTestEnv())("S3 endpoint verifies SigV4", () => {
  let env: TestEnv;
  const prefix = `s3-signature/${Date.now()}-${Math.random().toString(36).slice(2)}`;

  beforeAll(() => {
    env = testEnv();
  });

  function client(overrides: { accessKeyId?: string; secretAccessKey?: string } = {}): AwsClient {
    return new AwsClient({
      accessKeyId: env.s3.accessKeyId,
      secretAccessKey: env.s3.secretAccessKey,
      service: "s3",
      region: env.s3.region,
      retries: 0,
      ...overrides,
    });
  }

  const objectUrl = (key: string): string => `${env.s3.endpoint}/${env.s3.bucket}/${prefix}/${key}`;

  test("a signed PutObject is stored and GetObject reads back the same bytes", async () => {
    const body = new Uint8Array(70_000).map((_, i) => (i * 7) % 256);
    const put = await client().fetch(objectUrl("bytes.bin"), {
      method: "PUT",
      body,
      headers: { "x-amz-content-sha256": sha256Hex(body), "content-type": "application/octet-stream" },
    });
    expect(put.status).toBe(200);
    const get = await client().fetch(objectUrl("bytes.bin"));
    expect(get.status).toBe(200);
    expect(new Uint8Array(await get.arrayBuffer())).toEqual(body);
    const head = await client().fetch(objectUrl("bytes.bin"), { method: "HEAD" });
    expect(head.status).toBe(200);
    expect(head.headers.get("content-length")).toBe(String(body.length));
  });

  test("an UNSIGNED-PAYLOAD PutObject (aws4fetch's default for S3) is accepted", async () => {
    const put = await client().fetch(objectUrl("unsigned-payload.csv"), {
      method: "PUT",
      body: "a,b\n1,2\n",
    });
    expect(put.status).toBe(200);
    const get = await client().fetch(objectUrl("unsigned-payload.csv"));
    expect(await get.text()).toBe("a,b\n1,2\n");
  });

  test("a wrong secret gets 403 SignatureDoesNotMatch", async () => {
    const res = await client({ secretAccessKey: "not-the-secret" }).fetch(objectUrl("wrong-secret.txt"), {
      method: "PUT",
      body: "x",
    });
    expect(res.status).toBe(403);
    expect(res.headers.get("content-type")).toBe("application/xml");
    const xml = await res.text();
    expect(errorCode(xml)).toBe("SignatureDoesNotMatch");
    expect(xml).toContain("<RequestId>");
    expect(xml).not.toContain(env.s3.secretAccessKey);
  });

  test("an unsigned request gets 403", async () => {
    const res = await fetch(objectUrl("unsigned.txt"), { method: "PUT", body: "x" });
    expect(res.status).toBe(403);
    expect(errorCode(await res.text())).toBe("AccessDenied");
    const get = await fetch(objectUrl("bytes.bin"));
    expect(get.status).toBe(403);
  });

  test("a body changed after signing is refused and not stored", async () => {
    const signed = await client().sign(objectUrl("tampered.txt"), {
      method: "PUT",
      body: "the signed body",
      headers: { "x-amz-content-sha256": sha256Hex("the signed body") },
    });
    const res = await fetch(signed.url, { method: "PUT", headers: signed.headers, body: "another body!!!" });
    expect(res.status).toBe(400);
    expect(errorCode(await res.text())).toBe("XAmzContentSHA256Mismatch");
    expect((await client().fetch(objectUrl("tampered.txt"))).status).toBe(404);
  });

  test("an unknown access key gets 403 InvalidAccessKeyId", async () => {
    const res = await client({ accessKeyId: "AKIAUNKNOWNKEY000000" }).fetch(objectUrl("unknown-key.txt"));
    expect(res.status).toBe(403);
    expect(errorCode(await res.text())).toBe("InvalidAccessKeyId");
  });

  test("a request dated 20 minutes ago gets RequestTimeTooSkewed", async () => {
    const datetime = new Date(Date.now() - 20 * 60_000).toISOString().replace(/[:-]|\.\d{3}/g, "");
    const signer = new AwsV4Signer({
      url: objectUrl("bytes.bin"),
      method: "GET",
      accessKeyId: env.s3.accessKeyId,
      secretAccessKey: env.s3.secretAccessKey,
      service: "s3",
      region: env.s3.region,
      datetime,
    });
    const signed = await signer.sign();
    const res = await fetch(signed.url, { method: "GET", headers: signed.headers });
    expect(res.status).toBe(403);
    expect(errorCode(await res.text())).toBe("RequestTimeTooSkewed");
  });

  test("the second bucket exists", async () => {
    const res = await client().fetch(`${env.s3.endpoint}/${env.s3.logsBucket}/${prefix}/tracking.log.gz`, {
      method: "PUT",
      body: "{}\n",
    });
    expect(res.status).toBe(200);
  });
});
