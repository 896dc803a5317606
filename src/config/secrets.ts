// The secret values of a configuration, so that the logger can blank them wherever they appear.
import type { Config } from "./types.ts";

export function secretsOf(config: Config): string[] {
  const secrets = [
    config.mysql.password,
    config.mongodb.password,
    config.aws.secret_access_key,
    config.aws.session_token,
  ];
  const uriPassword = /\/\/[^/@:]*:([^/@]*)@/.exec(config.mongodb.uri)?.[1];
  if (uriPassword) secrets.push(uriPassword, decodeURIComponent(uriPassword));
  return secrets.filter((s) => s.length >= 4);
}

/** "…WXYZ": at most the last 4 characters of an access key id, for messages (DESIGN §3). */
export function maskAccessKey(accessKeyId: string): string {
  return accessKeyId.length > 4 ? `…${accessKeyId.slice(-4)}` : "…";
}
