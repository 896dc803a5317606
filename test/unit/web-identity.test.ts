// Credentials of a Kubernetes service account (EKS IRSA) against a loopback STS that speaks
// AssumeRoleWithWebIdentity: the chain's place for it, the form sent, the token read again at
// each exchange, renewal before expiry, and STS's refusal as a message without the token.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CredentialsError } from "../../src/aws/credential-provider.ts";
import { credentialChain } from "../../src/aws/credentials.ts";
import { WebIdentityCredentials, webIdentityFromEnv } from "../../src/aws/web-identity.ts";
import { parseConfig } from "../../src/config/load.ts";

const ROLE = "arn:aws:iam::123456789012:role/panorama";
const config = parseConfig(
  'mode = "CUSTOM"\nlms_host = "x"\n[datalake]\nbucket = "acme-panorama"\nregion = "eu-west-1"\n',
  "/tmp/panorama.toml",
  {},
).config;

let dir = "";
let tokenFile = "";
let server: ReturnType<typeof Bun.serve>;
const requests: URLSearchParams[] = [];
let lifetimeMs = 3600_000;

function answer(n: number): string {
  const expiration = new Date(Date.now() + lifetimeMs).toISOString();
  return `<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleWithWebIdentityResult>
    <Credentials>
      <SessionToken>session&amp;token-${n}</SessionToken>
      <SecretAccessKey>secret-${n}</SecretAccessKey>
      <Expiration>${expiration}</Expiration>
      <AccessKeyId>ASIAWEBIDENTITY0000${n}</AccessKeyId>
    </Credentials>
  </AssumeRoleWithWebIdentityResult>
</AssumeRoleWithWebIdentityResponse>`;
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "panorama-irsa-"));
  tokenFile = join(dir, "token");
  writeFileSync(tokenFile, "eyJ.token-1\n");
  server = Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    async fetch(req) {
      const form = new URLSearchParams(await req.text());
      requests.push(form);
      if (form.get("WebIdentityToken") === "expired") {
        return new Response(
          "<ErrorResponse><Error><Type>Sender</Type><Code>ExpiredTokenException</Code><Message>Token expired: current date/time 1 must be before the expiration date/time 0</Message></Error></ErrorResponse>",
          { status: 400 },
        );
      }
      return new Response(answer(requests.length), { headers: { "content-type": "text/xml" } });
    },
  });
});

afterAll(() => {
  server?.stop(true);
  rmSync(dir, { recursive: true, force: true });
});

const envOf = (extra: Record<string, string> = {}) => ({
  AWS_ROLE_ARN: ROLE,
  AWS_WEB_IDENTITY_TOKEN_FILE: tokenFile,
  AWS_ENDPOINT_URL_STS: server.url.href,
  AWS_ROLE_SESSION_NAME: "panorama-test",
  ...extra,
});

describe("web identity (IRSA)", () => {
  test("after the static keys, before the instance role; the exchange as STS wants it", async () => {
    const chain = credentialChain(config, envOf(), "http://127.0.0.1:9");
    expect(chain).toBeInstanceOf(WebIdentityCredentials);
    requests.length = 0;
    const credentials = await chain.get();
    expect(credentials).toMatchObject({
      accessKeyId: "ASIAWEBIDENTITY00001",
      secretAccessKey: "secret-1",
      sessionToken: "session&token-1",
    });
    expect(credentials.expiration!.getTime()).toBeGreaterThan(Date.now());
    expect(Object.fromEntries(requests[0]!)).toEqual({
      Action: "AssumeRoleWithWebIdentity",
      Version: "2011-06-15",
      RoleArn: ROLE,
      RoleSessionName: "panorama-test",
      WebIdentityToken: "eyJ.token-1",
    });
    // Cached while fresh.
    await chain.get();
    expect(requests).toHaveLength(1);
    // Keys in the environment win.
    const keys = credentialChain(config, envOf({ AWS_ACCESS_KEY_ID: "AKIA1", AWS_SECRET_ACCESS_KEY: "s" }));
    expect(keys).not.toBeInstanceOf(WebIdentityCredentials);
    expect(webIdentityFromEnv({ AWS_ROLE_ARN: ROLE }, "eu-west-1")).toBeNull();
  });

  test("the regional endpoint of AWS_REGION, else of the datalake's region", () => {
    const irsa = { AWS_ROLE_ARN: ROLE, AWS_WEB_IDENTITY_TOKEN_FILE: tokenFile };
    expect(webIdentityFromEnv({ ...irsa, AWS_REGION: "us-east-2" }, "eu-west-1")?.source).toContain(
      "STS at https://sts.us-east-2.amazonaws.com)",
    );
    expect(credentialChain(config, irsa).source).toContain("STS at https://sts.eu-west-1.amazonaws.com)");
  });

  test("renewed before expiry, with the token the file holds then", async () => {
    lifetimeMs = 60_000; // inside the renewal margin: every get() exchanges again
    const provider = webIdentityFromEnv(envOf(), "eu-west-1")!;
    requests.length = 0;
    await provider.get();
    writeFileSync(tokenFile, "eyJ.token-2");
    const second = await provider.get();
    expect(requests.map((r) => r.get("WebIdentityToken"))).toEqual(["eyJ.token-1", "eyJ.token-2"]);
    expect(second.accessKeyId).toBe("ASIAWEBIDENTITY00002");
    lifetimeMs = 3600_000;
    writeFileSync(tokenFile, "eyJ.token-1\n");
  });

  test("a refusal is a CredentialsError with STS's code and a hint; a missing token file too", async () => {
    writeFileSync(tokenFile, "expired");
    try {
      const error = await webIdentityFromEnv(envOf(), "eu-west-1")!
        .get()
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(CredentialsError);
      expect((error as Error).message).toContain("ExpiredTokenException");
      expect((error as CredentialsError).hint).toContain("trust policy");
    } finally {
      writeFileSync(tokenFile, "eyJ.token-1\n");
    }
    const missing = await webIdentityFromEnv(envOf({ AWS_WEB_IDENTITY_TOKEN_FILE: join(dir, "nope") }), "x")!
      .get()
      .catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(CredentialsError);
    expect((missing as Error).message).toContain("ENOENT");
  });
});
