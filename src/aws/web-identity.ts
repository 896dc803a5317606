// Credentials for a Kubernetes service account (EKS IRSA): the pod gets AWS_ROLE_ARN and
// AWS_WEB_IDENTITY_TOKEN_FILE, a token that kubelet renews in that file; STS's
// AssumeRoleWithWebIdentity (an unsigned call) exchanges it for temporary credentials. The token
// is read again at each exchange and never goes into a message.
import { messageOf } from "../errors.ts";
import {
  type AwsCredentials,
  awsCredentials,
  CredentialsError,
  FetchedCredentials,
  readTokenFile,
} from "./credential-provider.ts";
import { xmlValues } from "./xml.ts";

const TIMEOUT_MS = 10_000;
const ATTEMPTS = 3;

export interface WebIdentityOptions {
  roleArn: string;
  tokenFile: string;
  /** the STS endpoint, e.g. https://sts.eu-west-1.amazonaws.com */
  endpoint: string;
  sessionName: string;
  fetchImpl?: typeof fetch;
}

/** The text of an XML element of STS's answer, entities decoded; null when absent. */
function element(xml: string, name: string): string | null {
  return xmlValues(xml, name)[0] ?? null;
}

export class WebIdentityCredentials extends FetchedCredentials {
  readonly source: string;
  private readonly fetchImpl: typeof fetch;

  constructor(private readonly options: WebIdentityOptions) {
    super(ATTEMPTS, 200);
    this.source = `web identity (${options.roleArn}, token ${options.tokenFile}, STS at ${options.endpoint})`;
    this.fetchImpl = options.fetchImpl ?? fetch;
  }

  protected unreachable(lastError: unknown): CredentialsError {
    return new CredentialsError(
      `no AWS credentials: STS at ${this.options.endpoint} did not answer the web identity exchange for ${this.options.roleArn} (${messageOf(lastError)})`,
      "check that the pod reaches STS (AWS_ENDPOINT_URL_STS overrides the endpoint)",
    );
  }

  protected async fetchCredentials(): Promise<AwsCredentials> {
    const token = readTokenFile(
      this.options.tokenFile,
      "web identity token",
      "the service account's token is mounted by EKS when the service account has the eks.amazonaws.com/role-arn annotation",
    );
    const body = new URLSearchParams({
      Action: "AssumeRoleWithWebIdentity",
      Version: "2011-06-15",
      RoleArn: this.options.roleArn,
      RoleSessionName: this.options.sessionName,
      WebIdentityToken: token,
    });
    const res = await this.fetchImpl(`${this.options.endpoint.replace(/\/+$/, "")}/`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded; charset=utf-8" },
      body,
      signal: AbortSignal.timeout(TIMEOUT_MS),
    });
    const xml = await res.text();
    if (res.status >= 500) throw new Error(`STS answered ${res.status}`);
    if (!res.ok) {
      const code = element(xml, "Code") ?? String(res.status);
      throw new CredentialsError(
        `no AWS credentials: STS refused the web identity exchange for ${this.options.roleArn}: ${code}: ${element(xml, "Message") ?? ""}`.trim(),
        "check the role's trust policy: it must trust the cluster's OIDC provider for this service account",
      );
    }
    const accessKeyId = element(xml, "AccessKeyId");
    const secretAccessKey = element(xml, "SecretAccessKey");
    if (!accessKeyId || !secretAccessKey) throw new Error("STS answered without credentials");
    return awsCredentials(
      accessKeyId,
      secretAccessKey,
      element(xml, "SessionToken"),
      element(xml, "Expiration"),
    );
  }
}

/**
 * The web identity of the environment (EKS IRSA), or null: AWS_ROLE_ARN and
 * AWS_WEB_IDENTITY_TOKEN_FILE; STS at AWS_ENDPOINT_URL_STS, else the regional endpoint of
 * AWS_REGION (which EKS sets), else of the datalake's region.
 */
export function webIdentityFromEnv(
  env: Record<string, string | undefined>,
  region: string,
): WebIdentityCredentials | null {
  const roleArn = env.AWS_ROLE_ARN;
  const tokenFile = env.AWS_WEB_IDENTITY_TOKEN_FILE;
  if (!roleArn || !tokenFile) return null;
  const stsRegion = env.AWS_REGION || region;
  return new WebIdentityCredentials({
    roleArn,
    tokenFile,
    endpoint: env.AWS_ENDPOINT_URL_STS || `https://sts.${stsRegion}.amazonaws.com`,
    sessionName: env.AWS_ROLE_SESSION_NAME || `panorama-${Date.now()}`,
  });
}
