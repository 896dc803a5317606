// Credentials from a container's credentials endpoint: an ECS task role
// (AWS_CONTAINER_CREDENTIALS_RELATIVE_URI, served at 169.254.170.2) and EKS Pod Identity
// (AWS_CONTAINER_CREDENTIALS_FULL_URI with AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE, a token the
// agent renews in that file). The AWS SDKs call such an endpoint only over https or at an address
// no other machine can answer for (loopback, the ECS and EKS agents' link-local addresses): a
// credentials request carries the pod's token, so panorama refuses any other. The token is read
// again at each fetch and never goes into a message.
import { messageOf } from "../errors.ts";
import {
  type AwsCredentials,
  awsCredentials,
  CredentialsError,
  FetchedCredentials,
  readTokenFile,
} from "./credential-provider.ts";

const ECS_ENDPOINT = "http://169.254.170.2";
/** the addresses an http endpoint may have: the ECS agent's and the EKS Pod Identity agent's */
const AGENT_ADDRESSES = new Set(["169.254.170.2", "169.254.170.23", "[fd00:ec2::23]"]);
const TIMEOUT_MS = 5_000;
const ATTEMPTS = 3;

export interface ContainerOptions {
  url: string;
  /** the Authorization header's value, from AWS_CONTAINER_AUTHORIZATION_TOKEN */
  token?: string;
  /** a file holding it, read at each fetch (AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE): first */
  tokenFile?: string;
  fetchImpl?: typeof fetch;
}

export class ContainerCredentials extends FetchedCredentials {
  readonly source: string;
  private readonly fetchImpl: typeof fetch;

  constructor(private readonly options: ContainerOptions) {
    super(ATTEMPTS, 200);
    this.source = `container credentials (${options.url})`;
    this.fetchImpl = options.fetchImpl ?? fetch;
  }

  protected unreachable(lastError: unknown): CredentialsError {
    return new CredentialsError(
      `no AWS credentials: the container credentials endpoint ${this.options.url} did not answer (${messageOf(lastError)})`,
      "on EKS, check that the Pod Identity agent runs on the node (the eks-pod-identity-agent add-on); on ECS, that the task has a task role",
    );
  }

  private authorization(): string | undefined {
    const file = this.options.tokenFile;
    if (!file) return this.options.token;
    return readTokenFile(
      file,
      "container authorization token",
      "EKS mounts it in pods whose service account has a Pod Identity association: check the association, and that the pod was started after it was made",
    );
  }

  protected async fetchCredentials(): Promise<AwsCredentials> {
    const authorization = this.authorization();
    const res = await this.fetchImpl(this.options.url, {
      headers: authorization ? { authorization } : {},
      signal: AbortSignal.timeout(TIMEOUT_MS),
    });
    const text = await res.text();
    if (res.status >= 500 || res.status === 429) throw new Error(`it answered ${res.status}`);
    let body: {
      AccessKeyId?: string;
      SecretAccessKey?: string;
      Token?: string;
      Expiration?: string;
      code?: string;
      message?: string;
    };
    try {
      body = JSON.parse(text);
    } catch {
      throw new Error(`it answered ${res.status} with no JSON`);
    }
    if (!res.ok) {
      throw new CredentialsError(
        `no AWS credentials: the container credentials endpoint ${this.options.url} refused: ${res.status} ${body.code ?? ""} ${body.message ?? ""}`.trim(),
        "on EKS, check the Pod Identity association of the pod's service account and the role's trust policy (pods.eks.amazonaws.com); on ECS, the task role",
      );
    }
    if (!body.AccessKeyId || !body.SecretAccessKey) throw new Error("it answered without credentials");
    return awsCredentials(body.AccessKeyId, body.SecretAccessKey, body.Token, body.Expiration);
  }
}

/** Whether an http endpoint's host is one no other machine can answer for. */
function agentOrLoopback(hostname: string): boolean {
  if (AGENT_ADDRESSES.has(hostname)) return true;
  return hostname === "localhost" || hostname === "[::1]" || /^127\.\d+\.\d+\.\d+$/.test(hostname);
}

/**
 * The container credentials of the environment, or null: AWS_CONTAINER_CREDENTIALS_RELATIVE_URI
 * (ECS) first, then AWS_CONTAINER_CREDENTIALS_FULL_URI (EKS Pod Identity, or an agent of one's
 * own); a FULL_URI over http to any other host is refused.
 */
export function containerCredentialsFromEnv(
  env: Record<string, string | undefined>,
): ContainerCredentials | null {
  const relative = env.AWS_CONTAINER_CREDENTIALS_RELATIVE_URI;
  const full = env.AWS_CONTAINER_CREDENTIALS_FULL_URI;
  let url: string;
  if (relative) {
    url = `${ECS_ENDPOINT}${relative.startsWith("/") ? "" : "/"}${relative}`;
  } else if (full) {
    let parsed: URL;
    try {
      parsed = new URL(full);
    } catch {
      throw new CredentialsError(
        `AWS_CONTAINER_CREDENTIALS_FULL_URI is not a URL: ${full}`,
        "unset it, or give the full http(s) URL of the credentials endpoint",
      );
    }
    const safe =
      parsed.protocol === "https:" || (parsed.protocol === "http:" && agentOrLoopback(parsed.hostname));
    if (!safe) {
      throw new CredentialsError(
        `AWS_CONTAINER_CREDENTIALS_FULL_URI ${parsed.protocol}//${parsed.host}: a credentials request carries the pod's token, so it goes only over https or to loopback or the ECS/EKS agent's address (169.254.170.2, 169.254.170.23, fd00:ec2::23), as the AWS SDKs require`,
        "use https, or the address of the agent on the node",
      );
    }
    url = parsed.href;
  } else {
    return null;
  }
  const options: ContainerOptions = { url };
  if (env.AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE)
    options.tokenFile = env.AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE;
  else if (env.AWS_CONTAINER_AUTHORIZATION_TOKEN) options.token = env.AWS_CONTAINER_AUTHORIZATION_TOKEN;
  return new ContainerCredentials(options);
}
