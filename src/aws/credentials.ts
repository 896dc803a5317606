// Where AWS credentials come from, in the AWS SDKs' order: `[aws]` in the config (which the
// loader has already filled from PANORAMA_AWS_* when the file leaves it empty), the standard
// AWS_* variables, a profile's keys in the AWS shared files (shared-files.ts), a Kubernetes
// service account's web identity (IRSA, web-identity.ts), a container's credentials endpoint
// (ECS task role, EKS Pod Identity: container-credentials.ts), then the EC2 instance role through
// IMDSv2. Secrets stay inside the returned objects: nothing here logs them or puts them into an
// error message.
import type { Config } from "../config/types.ts";
import { messageOf } from "../errors.ts";
import { containerCredentialsFromEnv } from "./container-credentials.ts";
import {
  type AwsCredentials,
  awsCredentials,
  type CredentialProvider,
  CredentialsError,
  FetchedCredentials,
} from "./credential-provider.ts";
import { sharedFileKeys } from "./shared-files.ts";
import { webIdentityFromEnv } from "./web-identity.ts";

const DEFAULT_IMDS_ENDPOINT = "http://169.254.169.254";
/** IMDSv2 session tokens live up to 6 hours; ask for that and renew a minute before. */
const IMDS_TOKEN_TTL_SECONDS = 21_600;
const IMDS_TIMEOUT_MS = 2_000;
const IMDS_ATTEMPTS = 3;

class StaticCredentials implements CredentialProvider {
  constructor(
    private readonly credentials: AwsCredentials,
    readonly source: string,
  ) {}

  async get(): Promise<AwsCredentials> {
    return this.credentials;
  }
}

/** The EC2 instance role, through the IMDSv2 session-token protocol. */
export class InstanceRoleCredentials extends FetchedCredentials {
  readonly source: string;
  private token: { value: string; expires: number } | null = null;

  constructor(
    private readonly endpoint: string,
    private readonly fetchImpl: typeof fetch = fetch,
  ) {
    super(IMDS_ATTEMPTS, 100);
    this.endpoint = endpoint.replace(/\/+$/, "");
    this.source = `EC2 instance role (IMDSv2 at ${this.endpoint})`;
  }

  protected unreachable(lastError: unknown): CredentialsError {
    return new CredentialsError(
      `no AWS credentials: none in [aws] of the config, PANORAMA_AWS_*, AWS_ACCESS_KEY_ID or a profile of the AWS shared files, and none from the EC2 instance metadata service at ${this.endpoint} (${messageOf(lastError)})`,
      "set [aws] access_key_id/secret_access_key (or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY), or attach an IAM role to this instance",
    );
  }

  private async sessionToken(renew: boolean): Promise<string> {
    if (!renew && this.token && this.token.expires > Date.now()) return this.token.value;
    const res = await this.fetchImpl(`${this.endpoint}/latest/api/token`, {
      method: "PUT",
      headers: { "X-aws-ec2-metadata-token-ttl-seconds": String(IMDS_TOKEN_TTL_SECONDS) },
      signal: AbortSignal.timeout(IMDS_TIMEOUT_MS),
    });
    if (!res.ok) throw new Error(`PUT /latest/api/token answered ${res.status}`);
    const value = (await res.text()).trim();
    this.token = { value, expires: Date.now() + (IMDS_TOKEN_TTL_SECONDS - 60) * 1000 };
    return value;
  }

  /** GET a metadata path with the session token; a 401 means the token expired: renew once. */
  private async metadata(path: string): Promise<Response> {
    for (let renew = false; ; renew = true) {
      const res = await this.fetchImpl(`${this.endpoint}${path}`, {
        headers: { "X-aws-ec2-metadata-token": await this.sessionToken(renew) },
        signal: AbortSignal.timeout(IMDS_TIMEOUT_MS),
      });
      if (res.status === 401 && !renew) {
        await res.body?.cancel();
        continue;
      }
      return res;
    }
  }

  protected async fetchCredentials(): Promise<AwsCredentials> {
    const base = "/latest/meta-data/iam/security-credentials/";
    const roles = await this.metadata(base);
    if (roles.status === 404) {
      throw new CredentialsError(
        `no AWS credentials: none in the config or the environment, and this EC2 instance has no IAM role (${this.endpoint}${base} answered 404)`,
        "attach an instance profile to the instance, or set [aws] access_key_id/secret_access_key",
      );
    }
    if (!roles.ok) throw new Error(`GET ${base} answered ${roles.status}`);
    const role = (await roles.text()).split("\n")[0]?.trim() ?? "";
    if (!role) throw new Error(`GET ${base} named no role`);
    const res = await this.metadata(`${base}${encodeURIComponent(role)}`);
    if (!res.ok) throw new Error(`GET ${base}<role> answered ${res.status}`);
    const body = (await res.json()) as {
      Code?: string;
      AccessKeyId?: string;
      SecretAccessKey?: string;
      Token?: string;
      Expiration?: string;
    };
    if (body.Code !== "Success" || !body.AccessKeyId || !body.SecretAccessKey) {
      throw new Error(`the instance role ${role} gave no credentials (Code ${body.Code ?? "missing"})`);
    }
    return awsCredentials(body.AccessKeyId, body.SecretAccessKey, body.Token, body.Expiration);
  }
}

/**
 * The first source that has credentials. The IMDS endpoint defaults to the link-local address;
 * AWS_EC2_METADATA_SERVICE_ENDPOINT (the AWS SDKs' variable) overrides it, as tests do.
 */
export function credentialChain(
  config: Config,
  env: Record<string, string | undefined> = process.env,
  imdsEndpoint?: string,
): CredentialProvider {
  try {
    return firstSource(config, env, imdsEndpoint);
  } catch (error) {
    // A source set up wrongly (AWS_PROFILE naming no profile with keys, an http credentials
    // endpoint elsewhere than the agents'): said where credentials are asked for, as a source
    // that gives none is, so that doctor shows it as its AWS credentials check.
    if (!(error instanceof CredentialsError)) throw error;
    return { source: "none: the environment's AWS settings are wrong", get: () => Promise.reject(error) };
  }
}

function firstSource(
  config: Config,
  env: Record<string, string | undefined>,
  imdsEndpoint: string | undefined,
): CredentialProvider {
  const aws = config.aws;
  if (aws.access_key_id && aws.secret_access_key) {
    return new StaticCredentials(
      awsCredentials(aws.access_key_id, aws.secret_access_key, aws.session_token),
      "[aws] of the config or PANORAMA_AWS_*",
    );
  }
  const id = env.AWS_ACCESS_KEY_ID;
  const secret = env.AWS_SECRET_ACCESS_KEY;
  if (id && secret) {
    return new StaticCredentials(
      awsCredentials(id, secret, env.AWS_SESSION_TOKEN),
      "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY",
    );
  }
  const shared = sharedFileKeys(env);
  if (shared) return new StaticCredentials(shared.credentials, shared.source);
  const webIdentity = webIdentityFromEnv(env, config.datalake.region);
  if (webIdentity) return webIdentity;
  const container = containerCredentialsFromEnv(env);
  if (container) return container;
  return new InstanceRoleCredentials(
    imdsEndpoint || env.AWS_EC2_METADATA_SERVICE_ENDPOINT || DEFAULT_IMDS_ENDPOINT,
  );
}
