// The URLs of S3 requests on AWS: virtual-hosted for plain bucket names, path-style on the
// regional endpoint for names with dots (DESIGN §9: "acme.panorama.s3.<region>.amazonaws.com" is
// not covered by the certificate's one-level wildcard "*.s3.<region>.amazonaws.com").
import { afterAll, describe, expect, test } from "bun:test";
import { rmSync } from "node:fs";
import { dirname } from "node:path";
import { AwsClient } from "../../src/aws/client.ts";
import { S3Client } from "../../src/aws/s3.ts";
import { verifySigV4 } from "../support/sigv4.ts";
import { tempConfig } from "../support/temp-config.ts";

const credentials = { accessKeyId: "AKIAURLTEST000000001", secretAccessKey: "url-test-secret" };
const made: string[] = [];

function s3For(bucket: string, region: string, endpoint = ""): { s3: S3Client; sent: Request[] } {
  const config = tempConfig({
    datalake: `target = "s3"\nbucket = "${bucket}"\nregion = "${region}"\nendpoint = "${endpoint}"`,
  });
  made.push(dirname(config.state_dir));
  const sent: Request[] = [];
  const client = new AwsClient(config, {
    credentials: { source: "test", get: async () => credentials },
    fetch: (async (input: string | URL | Request, init?: RequestInit) => {
      sent.push(new Request(input instanceof Request ? input.url : input.toString(), init));
      return new Response("", { status: 200 });
    }) as typeof fetch,
  });
  return { s3: new S3Client(client, config), sent };
}

afterAll(() => {
  for (const dir of made) rmSync(dir, { recursive: true, force: true });
});

describe("S3 request URLs on AWS", () => {
  test("a bucket name with dots: path-style on the regional endpoint", () => {
    const { s3 } = s3For("acme.panorama", "eu-west-3");
    expect(s3.url("acme.panorama", "panorama/auth_user/lms=x/auth_user.csv")).toBe(
      "https://s3.eu-west-3.amazonaws.com/acme.panorama/panorama/auth_user/lms%3Dx/auth_user.csv",
    );
    expect(s3.url("acme.panorama", "", { uploads: "", prefix: "a b" })).toBe(
      "https://s3.eu-west-3.amazonaws.com/acme.panorama?uploads&prefix=a%20b",
    );
    // The bucket is a path segment, never part of the host name.
    expect(new URL(s3.url("acme.panorama", "k")).hostname).toBe("s3.eu-west-3.amazonaws.com");
  });

  test("a bucket name without dots stays virtual-hosted", () => {
    const { s3 } = s3For("acme-panorama", "us-east-1");
    expect(s3.url("acme-panorama", "a/b.csv")).toBe(
      "https://acme-panorama.s3.us-east-1.amazonaws.com/a/b.csv",
    );
  });

  test("a custom endpoint is path-style whatever the name", () => {
    const { s3 } = s3For("acme.panorama", "us-east-1", "http://127.0.0.1:9000/");
    expect(s3.url("acme.panorama", "a.csv")).toBe("http://127.0.0.1:9000/acme.panorama/a.csv");
  });

  test("the PUT for acme.panorama goes to the regional host, signed for that host and path", async () => {
    const { s3, sent } = s3For("acme.panorama", "ap-southeast-2");
    await s3.putObject("acme.panorama", "panorama/t/lms=x/t.csv", new TextEncoder().encode("id\r\n1\r\n"));
    expect(sent).toHaveLength(1);
    const request = sent[0]!;
    const url = new URL(request.url);
    expect(url.host).toBe("s3.ap-southeast-2.amazonaws.com");
    expect(url.pathname).toBe("/acme.panorama/panorama/t/lms%3Dx/t.csv");
    const headers: Record<string, string> = { host: url.host };
    request.headers.forEach((value, name) => {
      headers[name] = value;
    });
    const verdict = verifySigV4(
      {
        method: request.method,
        url: `${url.pathname}${url.search}`,
        headers,
        body: new Uint8Array(await request.arrayBuffer()),
      },
      {
        service: "s3",
        secretFor: (id) => (id === credentials.accessKeyId ? credentials.secretAccessKey : undefined),
      },
    );
    expect(verdict).toMatchObject({ ok: true });
    expect(headers.authorization).toContain("/ap-southeast-2/s3/aws4_request");
  });
});
