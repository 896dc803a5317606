// What a source of AWS credentials gives (AwsCredentials), how the signer asks for them
// (CredentialProvider), the error when none can be had, and the caching and retrying that every
// source of temporary credentials shares (FetchedCredentials): used by the credential chain
// (credentials.ts) and the sources it chains, so none imports another's module for them.
import { readFileSync } from "node:fs";
import { PanoramaError } from "../errors.ts";

export interface AwsCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
  expiration?: Date;
}

export interface CredentialProvider {
  get(): Promise<AwsCredentials>;
  /** where the credentials come from, for messages (never the secret) */
  readonly source: string;
}

/** No credentials could be found or fetched; the message says where panorama looked. */
export class CredentialsError extends PanoramaError {}

/** Temporary credentials are renewed this long before they expire. */
const REFRESH_BEFORE_MS = 5 * 60_000;

/**
 * Credentials fetched from a service (the instance metadata, STS, a container's agent): kept
 * until 5 minutes before they expire, one fetch at a time for concurrent callers, and a failed
 * fetch tried again with backoff unless it failed with a CredentialsError (a refusal, which
 * another try would not change).
 */
export abstract class FetchedCredentials implements CredentialProvider {
  abstract readonly source: string;
  private cached: AwsCredentials | null = null;
  private pending: Promise<AwsCredentials> | null = null;

  constructor(
    private readonly attempts: number,
    private readonly firstBackoffMs: number,
  ) {}

  /** One fetch of fresh credentials. */
  protected abstract fetchCredentials(): Promise<AwsCredentials>;

  /** The error when every attempt failed, the last failure given. */
  protected abstract unreachable(lastError: unknown): CredentialsError;

  async get(): Promise<AwsCredentials> {
    const expires = this.cached?.expiration?.getTime() ?? 0;
    if (this.cached && expires - REFRESH_BEFORE_MS > Date.now()) return this.cached;
    this.pending ??= this.refresh().finally(() => {
      this.pending = null;
    });
    return this.pending;
  }

  private async refresh(): Promise<AwsCredentials> {
    let lastError: unknown;
    for (let attempt = 0; attempt < this.attempts; attempt++) {
      try {
        this.cached = await this.fetchCredentials();
        return this.cached;
      } catch (error) {
        if (error instanceof CredentialsError) throw error;
        lastError = error;
        await Bun.sleep(this.firstBackoffMs * 2 ** attempt);
      }
    }
    throw this.unreachable(lastError);
  }
}

/**
 * Credentials as a source gives them: a session token when it has one, an expiration when it
 * gives one that reads as a time (ISO 8601); credentials without one are fetched again at each use.
 */
export function awsCredentials(
  accessKeyId: string,
  secretAccessKey: string,
  sessionToken?: string | null,
  expiration?: string | null,
): AwsCredentials {
  const credentials: AwsCredentials = { accessKeyId, secretAccessKey };
  if (sessionToken) credentials.sessionToken = sessionToken;
  const expires = new Date(expiration ?? "");
  if (!Number.isNaN(expires.getTime())) credentials.expiration = expires;
  return credentials;
}

/**
 * A token a pod's runtime keeps renewed in a file (IRSA's, Pod Identity's), read again at each
 * fetch; `what` names it for the message, never its content.
 */
export function readTokenFile(path: string, what: string, hint: string): string {
  try {
    return readFileSync(path, "utf8").trim();
  } catch (error) {
    throw new CredentialsError(
      `no AWS credentials: cannot read the ${what} ${path} (${(error as NodeJS.ErrnoException).code ?? "error"})`,
      hint,
    );
  }
}
