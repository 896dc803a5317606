// Keys from the AWS shared files that `aws configure` writes: the profile named by AWS_PROFILE
// (else "default") in the credentials file (AWS_SHARED_CREDENTIALS_FILE, else
// ~/.aws/credentials), then in the config file (AWS_CONFIG_FILE, else ~/.aws/config, where a
// profile's section is `[profile name]`). Only static keys are read: a profile that gets its
// credentials otherwise (role_arn, SSO, credential_process) is the AWS CLI's business, and is
// said so when AWS_PROFILE names it.
import { readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { type AwsCredentials, awsCredentials, CredentialsError } from "./credential-provider.ts";

/** what makes a profile get its credentials without keys, as the AWS CLI reads it */
const INDIRECT_KEYS = [
  "role_arn",
  "sso_session",
  "sso_start_url",
  "credential_process",
  "web_identity_token_file",
  "login_session",
];

/** The sections of an INI file: name → key → value (names and keys as written, trimmed). */
export function parseIni(text: string): Map<string, Map<string, string>> {
  const sections = new Map<string, Map<string, string>>();
  let current: Map<string, string> | null = null;
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#") || line.startsWith(";")) continue;
    const header = /^\[\s*([^\]]+?)\s*\]$/.exec(line);
    if (header) {
      const name = header[1]!;
      current = sections.get(name) ?? new Map();
      sections.set(name, current);
      continue;
    }
    const equals = line.indexOf("=");
    // A line indented under a key (a nested setting such as s3 = ...) or outside a section: not keys.
    if (current === null || equals < 0 || /^\s/.test(raw)) continue;
    current.set(line.slice(0, equals).trim().toLowerCase(), line.slice(equals + 1).trim());
  }
  return sections;
}

function readIni(path: string): Map<string, Map<string, string>> | null {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ENOTDIR") return null;
    throw new CredentialsError(
      `cannot read the AWS shared file ${path} (${code ?? "error"})`,
      "make it readable by the user panorama runs as, or point AWS_SHARED_CREDENTIALS_FILE / AWS_CONFIG_FILE elsewhere",
    );
  }
  return parseIni(text);
}

export interface SharedFileKeys {
  credentials: AwsCredentials;
  /** "profile default of /root/.aws/credentials" */
  source: string;
}

/**
 * The keys of the profile, or null when no file has the profile, or it has no keys and was not
 * asked for by name. AWS_PROFILE naming a profile that is absent, or that has no keys, is an
 * error: the operator chose it.
 */
export function sharedFileKeys(env: Record<string, string | undefined>): SharedFileKeys | null {
  const home = env.HOME || homedir();
  const named = env.AWS_PROFILE?.trim() || null;
  const profile = named ?? "default";
  const files = [
    { path: env.AWS_SHARED_CREDENTIALS_FILE || join(home, ".aws", "credentials"), section: profile },
    {
      path: env.AWS_CONFIG_FILE || join(home, ".aws", "config"),
      section: profile === "default" ? "default" : `profile ${profile}`,
    },
  ];
  let indirect: { path: string; key: string } | null = null;
  for (const { path, section } of files) {
    const keys = readIni(path)?.get(section);
    if (!keys) continue;
    const id = keys.get("aws_access_key_id");
    const secret = keys.get("aws_secret_access_key");
    if (id && secret) {
      const credentials = awsCredentials(id, secret, keys.get("aws_session_token"));
      return { credentials, source: `profile ${profile} of ${path}` };
    }
    const key = INDIRECT_KEYS.find((k) => keys.has(k));
    if (key && !indirect) indirect = { path, key };
  }
  if (named === null) return null;
  if (indirect) {
    throw new CredentialsError(
      `AWS_PROFILE=${profile}: the profile in ${indirect.path} gets its credentials through ${indirect.key}, which panorama does not do (it reads keys only)`,
      "give panorama keys ([aws] of the config, or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY), or let it use the instance role, IRSA or EKS Pod Identity: unset AWS_PROFILE",
    );
  }
  throw new CredentialsError(
    `AWS_PROFILE=${profile}: no such profile with keys in ${files.map((f) => f.path).join(" or ")}`,
    "check the profile's name (`aws configure list-profiles`), or unset AWS_PROFILE",
  );
}
