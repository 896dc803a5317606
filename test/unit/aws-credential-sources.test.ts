// The credential sources an operator's host may have besides [aws], AWS_* and the instance role:
// the AWS shared files that `aws configure` writes, and a container's credentials endpoint (EKS
// Pod Identity, ECS task roles), against a loopback stand-in of the agent
// (test/support/container-credentials-server.ts: the real one runs only on EKS and ECS nodes).
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ContainerCredentials, containerCredentialsFromEnv } from "../../src/aws/container-credentials.ts";
import { CredentialsError } from "../../src/aws/credential-provider.ts";
import { credentialChain } from "../../src/aws/credentials.ts";
import { parseIni, sharedFileKeys } from "../../src/aws/shared-files.ts";
import { parseConfig } from "../../src/config/load.ts";
import type { Config } from "../../src/config/types.ts";
import {
  type ContainerCredentialsServer,
  startContainerCredentialsServer,
} from "../support/container-credentials-server.ts";

const config: Config = parseConfig(
  'mode = "CUSTOM"\nlms_host = "x"\nstate_dir = "/tmp/panorama-creds-test"\n[datalake]\ntarget = "s3"\nbucket = "b-b-b"\n',
  "/tmp/panorama-creds-test/panorama.toml",
  {},
).config;

let home: string;
beforeAll(() => {
  home = mkdtempSync(join(tmpdir(), "panorama-aws-home-"));
});
afterAll(() => rmSync(home, { recursive: true, force: true }));
afterEach(() => rmSync(join(home, ".aws"), { recursive: true, force: true }));

function awsFiles(files: { credentials?: string; config?: string }): void {
  mkdirSync(join(home, ".aws"), { recursive: true });
  if (files.credentials !== undefined) writeFileSync(join(home, ".aws", "credentials"), files.credentials);
  if (files.config !== undefined) writeFileSync(join(home, ".aws", "config"), files.config);
}

describe("AWS shared files", () => {
  test("the INI as the AWS CLI writes it: comments, spaces, nested settings left out", () => {
    const ini = parseIni(
      "# written by aws configure\n[default]\naws_access_key_id = AKIA1\n; a comment\nAWS_Secret_Access_Key=s1\n[profile ops]\nregion = eu-west-1\ns3 =\n  max_concurrent_requests = 20\n",
    );
    expect(Object.fromEntries(ini.get("default")!)).toEqual({
      aws_access_key_id: "AKIA1",
      aws_secret_access_key: "s1",
    });
    expect(Object.fromEntries(ini.get("profile ops")!)).toEqual({ region: "eu-west-1", s3: "" });
  });

  test("the default profile of ~/.aws/credentials, after AWS_* and before the instance role", async () => {
    awsFiles({
      credentials:
        "[default]\naws_access_key_id = AKIAFILE000000000001\naws_secret_access_key = file-secret\n",
    });
    const chain = credentialChain(config, { HOME: home }, "http://127.0.0.1:9");
    expect(chain.source).toBe(`profile default of ${join(home, ".aws", "credentials")}`);
    expect(await chain.get()).toEqual({
      accessKeyId: "AKIAFILE000000000001",
      secretAccessKey: "file-secret",
    });
    expect(chain.source).not.toContain("file-secret");
    const env = credentialChain(
      config,
      { HOME: home, AWS_ACCESS_KEY_ID: "AKIAENV", AWS_SECRET_ACCESS_KEY: "env-secret" },
      "http://127.0.0.1:9",
    );
    expect((await env.get()).accessKeyId).toBe("AKIAENV");
  });

  test("AWS_PROFILE: its section in the credentials file, else `[profile name]` of the config file, with its session token", () => {
    awsFiles({
      credentials: "[default]\naws_access_key_id = AKIADEFAULT\naws_secret_access_key = d\n",
      config:
        "[default]\nregion = us-east-1\n[profile lake]\naws_access_key_id = AKIALAKE\naws_secret_access_key = l\naws_session_token = lake-token\n",
    });
    expect(sharedFileKeys({ HOME: home, AWS_PROFILE: "lake" })).toEqual({
      credentials: { accessKeyId: "AKIALAKE", secretAccessKey: "l", sessionToken: "lake-token" },
      source: `profile lake of ${join(home, ".aws", "config")}`,
    });
    // A profile in both files: the credentials file's keys.
    awsFiles({ credentials: "[lake]\naws_access_key_id = AKIACREDS\naws_secret_access_key = c\n" });
    expect(sharedFileKeys({ HOME: home, AWS_PROFILE: "lake" })?.credentials.accessKeyId).toBe("AKIACREDS");
  });

  test("AWS_SHARED_CREDENTIALS_FILE and AWS_CONFIG_FILE move the files", () => {
    const file = join(home, "elsewhere.ini");
    writeFileSync(file, "[default]\naws_access_key_id = AKIAMOVED\naws_secret_access_key = m\n");
    expect(sharedFileKeys({ HOME: home, AWS_SHARED_CREDENTIALS_FILE: file })?.source).toBe(
      `profile default of ${file}`,
    );
    const config = join(home, "config.ini");
    writeFileSync(config, "[profile moved]\naws_access_key_id = AKIACONFIG\naws_secret_access_key = c\n");
    expect(sharedFileKeys({ HOME: home, AWS_CONFIG_FILE: config, AWS_PROFILE: "moved" })?.source).toBe(
      `profile moved of ${config}`,
    );
    expect(() => sharedFileKeys({ HOME: home, AWS_PROFILE: "moved" })).toThrow("no such profile");
  });

  test("no file, or a default profile without keys: the next source", () => {
    expect(sharedFileKeys({ HOME: home })).toBeNull();
    awsFiles({ config: "[default]\nrole_arn = arn:aws:iam::123456789012:role/x\nsource_profile = base\n" });
    expect(sharedFileKeys({ HOME: home })).toBeNull();
    expect(credentialChain(config, { HOME: home }, "http://127.0.0.1:9").source).toStartWith(
      "EC2 instance role",
    );
  });

  test("AWS_PROFILE naming a profile without keys says how it gets them; an absent one names the files", () => {
    awsFiles({
      config: "[profile sso]\nsso_session = corp\nsso_account_id = 123456789012\n",
      credentials: "[other]\naws_access_key_id = AKIAOTHER\naws_secret_access_key = o\n",
    });
    const indirect = (() => {
      try {
        return sharedFileKeys({ HOME: home, AWS_PROFILE: "sso" });
      } catch (error) {
        return error as CredentialsError;
      }
    })() as CredentialsError;
    expect(indirect).toBeInstanceOf(CredentialsError);
    expect(indirect.message).toContain("through sso_session, which panorama does not do");
    expect(indirect.hint).toContain("unset AWS_PROFILE");
    expect(() => sharedFileKeys({ HOME: home, AWS_PROFILE: "typo" })).toThrow(
      `AWS_PROFILE=typo: no such profile with keys in ${join(home, ".aws", "credentials")} or ${join(home, ".aws", "config")}`,
    );
  });

  test("the chain says a wrong AWS_PROFILE where credentials are asked for, not when it is made", async () => {
    // doctor makes its client first, then shows what get() says as its AWS credentials check.
    const chain = credentialChain(config, { HOME: home, AWS_PROFILE: "typo" }, "http://127.0.0.1:9");
    const error = (await chain.get().catch((e: unknown) => e)) as CredentialsError;
    expect(error).toBeInstanceOf(CredentialsError);
    expect(error.message).toStartWith("AWS_PROFILE=typo: no such profile with keys in ");
    const endpoint = credentialChain(config, {
      AWS_CONTAINER_CREDENTIALS_FULL_URI: "http://evil.example.com/x",
    });
    expect(((await endpoint.get().catch((e: unknown) => e)) as Error).message).toContain(
      "a credentials request carries the pod's token",
    );
  });

  test("an unreadable file is an error naming it, not a silent fall to the next source", () => {
    if (process.getuid?.() === 0) {
      // root reads any file: a directory in the file's place gives EISDIR instead.
      mkdirSync(join(home, ".aws", "credentials"), { recursive: true });
    } else {
      awsFiles({ credentials: "[default]\n" });
      Bun.spawnSync(["chmod", "000", join(home, ".aws", "credentials")]);
    }
    expect(() => sharedFileKeys({ HOME: home })).toThrow(
      `cannot read the AWS shared file ${join(home, ".aws", "credentials")}`,
    );
  });
});

describe("container credentials (EKS Pod Identity, ECS task role)", () => {
  let agent: ContainerCredentialsServer;
  let tokenFile: string;

  beforeAll(() => {
    agent = startContainerCredentialsServer("pod-token-1", {
      accessKeyId: "ASIAPODIDENTITY00001",
      secretAccessKey: "pod-secret-1",
      token: "pod-session-1",
      expiration: new Date(Date.now() + 6 * 3600_000),
    });
    tokenFile = join(home, "eks-pod-identity-token");
  });
  afterAll(() => agent.close());

  test("Pod Identity's variables: the token file's content as Authorization, read again at each fetch", async () => {
    writeFileSync(tokenFile, "pod-token-1\n");
    const chain = credentialChain(
      config,
      {
        HOME: home,
        AWS_CONTAINER_CREDENTIALS_FULL_URI: agent.url,
        AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE: tokenFile,
      },
      "http://127.0.0.1:9",
    );
    expect(chain.source).toBe(`container credentials (${agent.url})`);
    const first = await chain.get();
    expect(first).toMatchObject({
      accessKeyId: "ASIAPODIDENTITY00001",
      secretAccessKey: "pod-secret-1",
      sessionToken: "pod-session-1",
    });
    expect(first.expiration?.getTime()).toBeGreaterThan(Date.now());
    expect(agent.received.at(-1)).toBe("pod-token-1");
    const calls = agent.received.length;
    await Promise.all([chain.get(), chain.get()]);
    expect(agent.received.length).toBe(calls);

    // The agent renews the token in the file; credentials near expiry are fetched with the new one.
    agent.token = "pod-token-2";
    writeFileSync(tokenFile, "pod-token-2");
    agent.credentials = { ...agent.credentials, accessKeyId: "ASIAPODIDENTITY00002" };
    (chain as unknown as { cached: { expiration: Date } }).cached.expiration = new Date(Date.now() + 60_000);
    expect((await chain.get()).accessKeyId).toBe("ASIAPODIDENTITY00002");
    expect(agent.received.at(-1)).toBe("pod-token-2");
    agent.token = "pod-token-1";
  });

  test("a refused token is a clear error at once (no retries); an agent's 500 is retried", async () => {
    const refused = new ContainerCredentials({ url: agent.url, token: "stale-token" });
    const calls = agent.received.length;
    const error = (await refused.get().catch((e: unknown) => e)) as CredentialsError;
    expect(error).toBeInstanceOf(CredentialsError);
    expect(error.message).toBe(
      `no AWS credentials: the container credentials endpoint ${agent.url} refused: 401 AccessDeniedException Invalid authorization token`,
    );
    expect(error.message).not.toContain("stale-token");
    expect(agent.received.length).toBe(calls + 1);

    agent.failures = 2;
    const busy = new ContainerCredentials({ url: agent.url, token: "pod-token-1" });
    expect((await busy.get()).accessKeyId).toStartWith("ASIAPODIDENTITY");
    expect(agent.received.length).toBe(calls + 4);
  });

  test("an unreadable token file and an agent that never answers name what to check", async () => {
    const missing = new ContainerCredentials({ url: agent.url, tokenFile: join(home, "no-such-token") });
    const unread = (await missing.get().catch((e: unknown) => e)) as CredentialsError;
    expect(unread.message).toBe(
      `no AWS credentials: cannot read the container authorization token ${join(home, "no-such-token")} (ENOENT)`,
    );
    const down = new ContainerCredentials({ url: "http://127.0.0.1:9/v1/credentials", token: "t" });
    const error = (await down.get().catch((e: unknown) => e)) as CredentialsError;
    expect(error).toBeInstanceOf(CredentialsError);
    expect(error.message).toStartWith(
      "no AWS credentials: the container credentials endpoint http://127.0.0.1:9/v1/credentials did not answer (",
    );
    expect(error.hint).toContain("Pod Identity agent");
  });

  test("ECS's relative URI is rooted at the ECS agent; FULL_URI over http only to loopback or the agents", () => {
    expect(
      containerCredentialsFromEnv({ AWS_CONTAINER_CREDENTIALS_RELATIVE_URI: "/v2/credentials/abc" })?.source,
    ).toBe("container credentials (http://169.254.170.2/v2/credentials/abc)");
    for (const url of [
      "http://169.254.170.23/v1/credentials",
      "http://[fd00:ec2::23]/v1/credentials",
      "http://localhost:8080/creds",
      "https://creds.example.com/v1",
    ]) {
      expect(containerCredentialsFromEnv({ AWS_CONTAINER_CREDENTIALS_FULL_URI: url })).toBeInstanceOf(
        ContainerCredentials,
      );
    }
    expect(() =>
      containerCredentialsFromEnv({ AWS_CONTAINER_CREDENTIALS_FULL_URI: "http://creds.example.com/v1" }),
    ).toThrow(
      "AWS_CONTAINER_CREDENTIALS_FULL_URI http://creds.example.com: a credentials request carries the pod's token",
    );
    expect(() => containerCredentialsFromEnv({ AWS_CONTAINER_CREDENTIALS_FULL_URI: "not a url" })).toThrow(
      "AWS_CONTAINER_CREDENTIALS_FULL_URI is not a URL",
    );
    expect(containerCredentialsFromEnv({})).toBeNull();
  });

  test("after IRSA's web identity, before the instance role", () => {
    const env = {
      HOME: home,
      AWS_CONTAINER_CREDENTIALS_FULL_URI: agent.url,
      AWS_ROLE_ARN: "arn:aws:iam::123456789012:role/irsa",
      AWS_WEB_IDENTITY_TOKEN_FILE: tokenFile,
    };
    expect(credentialChain(config, env, "http://127.0.0.1:9").source).toStartWith("web identity (");
    const { AWS_ROLE_ARN: _r, AWS_WEB_IDENTITY_TOKEN_FILE: _t, ...podIdentity } = env;
    expect(credentialChain(config, podIdentity, "http://127.0.0.1:9").source).toBe(
      `container credentials (${agent.url})`,
    );
  });
});
