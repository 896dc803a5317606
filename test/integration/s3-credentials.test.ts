// Where credentials come from, and the EC2 instance role over IMDSv2 against a loopback metadata
// server (test/support/imds-server.ts: the real one exists only on EC2) and EKS Pod Identity
// against a loopback agent (test/support/container-credentials-server.ts), used to sign real S3
// calls through the verifying proxy.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AwsClient } from "../../src/aws/client.ts";
import { CredentialsError } from "../../src/aws/credential-provider.ts";
import { credentialChain } from "../../src/aws/credentials.ts";
import { encodeKey, S3Client } from "../../src/aws/s3.ts";
import { parseConfig } from "../../src/config/load.ts";
import type { Config } from "../../src/config/types.ts";
import { startContainerCredentialsServer } from "../support/container-credentials-server.ts";
import { skipWithoutTestEnv, testEnv } from "../support/env.ts";
import { type ImdsServer, startImdsServer } from "../support/imds-server.ts";
import { writeS3Config } from "../support/s3-config.ts";
import { type S3Proxy, startS3Proxy } from "../support/s3-proxy.ts";

function configWith(aws: string, env: Record<string, string> = {}): Config {
  const text = `mode = "CUSTOM"\nlms_host = "x"\nstate_dir = "/tmp/panorama-creds-test"\n[datalake]\ntarget = "s3"\nbucket = "b-b-b"\n${aws}`;
  return parseConfig(text, "/tmp/panorama-creds-test/panorama.toml", env).config;
}

const role = "panorama-instance-role";
let imds: ImdsServer;

beforeAll(() => {
  imds = startImdsServer(role, {
    accessKeyId: "ASIAIMDSROLEKEY00001",
    secretAccessKey: "imds-role-secret-1",
    token: "imds-session-token-1",
    expiration: new Date(Date.now() + 6 * 3600_000),
  });
});

afterAll(() => {
  imds?.close();
});

describe("credential chain", () => {
  const env = {
    AWS_ACCESS_KEY_ID: "AKIAENVKEY0000000001",
    AWS_SECRET_ACCESS_KEY: "env-secret",
    AWS_SESSION_TOKEN: "env-token",
  };

  test("[aws] in the config comes first", async () => {
    const chain = credentialChain(
      configWith('[aws]\naccess_key_id = "AKIACONFIGKEY0000001"\nsecret_access_key = "config-secret"\n'),
      env,
      imds.url,
    );
    expect(await chain.get()).toEqual({
      accessKeyId: "AKIACONFIGKEY0000001",
      secretAccessKey: "config-secret",
    });
  });

  test("PANORAMA_AWS_* (merged into [aws] by the loader) come before AWS_*", async () => {
    const config = configWith("", {
      PANORAMA_AWS_ACCESS_KEY: "AKIAPANORAMAENV00001",
      PANORAMA_AWS_SECRET_ACCESS_KEY: "panorama-env-secret",
    });
    const chain = credentialChain(config, env, imds.url);
    expect((await chain.get()).accessKeyId).toBe("AKIAPANORAMAENV00001");
  });

  test("then AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN", async () => {
    const chain = credentialChain(configWith(""), env, imds.url);
    expect(await chain.get()).toEqual({
      accessKeyId: "AKIAENVKEY0000000001",
      secretAccessKey: "env-secret",
      sessionToken: "env-token",
    });
    expect(chain.source).not.toContain("env-secret");
  });

  test("then the instance role over IMDSv2: token first, role, credentials; cached until near expiry", async () => {
    const before = { ...imds.counts };
    const chain = credentialChain(configWith(""), { AWS_EC2_METADATA_SERVICE_ENDPOINT: imds.url });
    expect(chain.source).toBe(`EC2 instance role (IMDSv2 at ${imds.url})`);
    const first = await chain.get();
    expect(first).toMatchObject({
      accessKeyId: "ASIAIMDSROLEKEY00001",
      secretAccessKey: "imds-role-secret-1",
      sessionToken: "imds-session-token-1",
    });
    expect(first.expiration?.getTime()).toBeGreaterThan(Date.now());
    await chain.get();
    await Promise.all([chain.get(), chain.get()]);
    expect(imds.counts.token - before.token).toBe(1);
    expect(imds.counts.credentials - before.credentials).toBe(1);
    // Every GET carried the session token.
    expect(imds.counts.unauthorized).toBe(before.unauthorized);
  });

  test("credentials within 5 minutes of expiry are refreshed; an expired token is renewed", async () => {
    const chain = credentialChain(configWith(""), {}, imds.url);
    imds.credentials = { ...imds.credentials, expiration: new Date(Date.now() + 4 * 60_000) };
    await chain.get();
    const before = { ...imds.counts };
    imds.credentials = {
      accessKeyId: "ASIAIMDSROLEKEY00002",
      secretAccessKey: "imds-role-secret-2",
      token: "imds-session-token-2",
      expiration: new Date(Date.now() + 6 * 3600_000),
    };
    expect((await chain.get()).accessKeyId).toBe("ASIAIMDSROLEKEY00002");
    expect(imds.counts.credentials - before.credentials).toBe(1);
    // Fresh now: no call.
    await chain.get();
    expect(imds.counts.credentials - before.credentials).toBe(1);

    // Credentials due for refresh, and the session token expired on the server's side: the
    // 401 makes the client take a new token and carry on.
    imds.credentials = { ...imds.credentials, expiration: new Date(Date.now() + 60_000) };
    const shortLived = credentialChain(configWith(""), {}, imds.url);
    await shortLived.get();
    imds.expireTokens();
    const tokens = imds.counts.token;
    const unauthorized = imds.counts.unauthorized;
    expect((await shortLived.get()).accessKeyId).toBe("ASIAIMDSROLEKEY00002");
    expect(imds.counts.unauthorized).toBe(unauthorized + 1);
    expect(imds.counts.token).toBe(tokens + 1);
  });

  test("no role attached: a clear error saying where panorama looked", async () => {
    const noRole = startImdsServer("", imds.credentials);
    try {
      noRole.role = "";
      const chain = credentialChain(configWith(""), {}, noRole.url);
      const error = await chain.get().catch((e: unknown) => e);
      expect(error).toBeInstanceOf(CredentialsError);
      expect((error as Error).message).toContain("no AWS credentials");
    } finally {
      noRole.close();
    }
  });

  test("no metadata service: the error names the endpoint and says what to set", async () => {
    const chain = credentialChain(configWith(""), {}, "http://127.0.0.1:9");
    const error = (await chain.get().catch((e: unknown) => e)) as CredentialsError;
    expect(error).toBeInstanceOf(CredentialsError);
    expect(error.message).toContain("none from the EC2 instance metadata service at http://127.0.0.1:9 (");
    expect(error.hint).toContain("attach an IAM role");
  });
});

describe.skipIf(skipWithoutTestEnv())("S3 with instance-role credentials", () => {
  let proxy: S3Proxy;

  beforeAll(async () => {
    proxy = await startS3Proxy({
      upstream: testEnv().s3.directEndpoint,
      credentials: [
        { accessKeyId: "ASIAIMDSROLEKEY00001", secretAccessKey: "imds-role-secret-1" },
        { accessKeyId: "ASIAIMDSROLEKEY00002", secretAccessKey: "imds-role-secret-2" },
      ],
    });
  });

  afterAll(async () => {
    await proxy?.close();
  });

  test("a PutObject signed with the role's key and session token is accepted, then with renewed ones", async () => {
    const env = testEnv();
    imds.credentials = {
      accessKeyId: "ASIAIMDSROLEKEY00001",
      secretAccessKey: "imds-role-secret-1",
      token: "imds-session-token-1",
      expiration: new Date(Date.now() + 6 * 60_000),
    };
    const cfg = writeS3Config({ endpoint: proxy.url, accessKeyId: "", secretAccessKey: "" });
    const client = new AwsClient(cfg.config, { credentials: credentialChain(cfg.config, {}, imds.url) });
    const s3 = new S3Client(client, cfg.config);
    const key = `s3-credentials/${Date.now()}/role.csv`;
    await s3.putObject(env.s3.bucket, key, new TextEncoder().encode("a\r\n"));
    expect(proxy.requests.at(-1)).toMatchObject({ auth: "ok", accessKeyId: "ASIAIMDSROLEKEY00001" });
    expect(proxy.requests.at(-1)?.headers["x-amz-security-token"]).toBeUndefined();

    // Near expiry: the next call signs with the renewed credentials.
    imds.credentials = {
      accessKeyId: "ASIAIMDSROLEKEY00002",
      secretAccessKey: "imds-role-secret-2",
      token: "imds-session-token-2",
      expiration: new Date(Date.now() + 6 * 3600_000),
    };
    await Bun.sleep(1);
    const stale = (client.credentials as unknown as { cached: { expiration: Date } }).cached;
    stale.expiration = new Date(Date.now() + 60_000);
    await s3.putObject(env.s3.bucket, key, new TextEncoder().encode("b\r\n"));
    expect(proxy.requests.at(-1)).toMatchObject({ auth: "ok", accessKeyId: "ASIAIMDSROLEKEY00002" });
    const stored = await fetch(`${env.s3.directEndpoint}/${env.s3.bucket}/${encodeKey(key)}`);
    expect(await stored.text()).toBe("b\r\n");
  });
});

describe.skipIf(skipWithoutTestEnv())("S3 with EKS Pod Identity credentials", () => {
  test("a PutObject signed with the credentials the pod's agent gave", async () => {
    const env = testEnv();
    const agent = startContainerCredentialsServer("pod-token", {
      accessKeyId: "ASIAPODIDENTITY00009",
      secretAccessKey: "pod-secret-9",
      token: "pod-session-9",
      expiration: new Date(Date.now() + 6 * 3600_000),
    });
    const proxy = await startS3Proxy({
      upstream: env.s3.directEndpoint,
      credentials: [{ accessKeyId: "ASIAPODIDENTITY00009", secretAccessKey: "pod-secret-9" }],
    });
    const dir = mkdtempSync(join(tmpdir(), "panorama-pod-identity-"));
    try {
      const tokenFile = join(dir, "eks-pod-identity-token");
      writeFileSync(tokenFile, "pod-token");
      const cfg = writeS3Config({ endpoint: proxy.url, accessKeyId: "", secretAccessKey: "" });
      const chain = credentialChain(
        cfg.config,
        {
          HOME: dir,
          AWS_CONTAINER_CREDENTIALS_FULL_URI: agent.url,
          AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE: tokenFile,
        },
        "http://127.0.0.1:9",
      );
      const s3 = new S3Client(new AwsClient(cfg.config, { credentials: chain }), cfg.config);
      const key = `s3-credentials/${Date.now()}/pod-identity.csv`;
      await s3.putObject(env.s3.bucket, key, new TextEncoder().encode("a\r\n"));
      expect(proxy.requests.at(-1)).toMatchObject({ auth: "ok", accessKeyId: "ASIAPODIDENTITY00009" });
      const stored = await fetch(`${env.s3.directEndpoint}/${env.s3.bucket}/${encodeKey(key)}`);
      expect(await stored.text()).toBe("a\r\n");
    } finally {
      agent.close();
      await proxy.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
