// What a source of AWS credentials gives (AwsCredentials), how the signer asks for them
// (CredentialProvider), and the error when none can be had: shared by the credential chain
// (credentials.ts) and the providers it chains (web-identity.ts), so neither imports the other's
// module for them.
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
