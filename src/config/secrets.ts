// The secret values of a configuration, so that the logger can blank them wherever they appear,
// and the shapes that hold them (a URI's password) taken apart so messages can leave them out.
import { statSync } from "node:fs";

/** Keys whose value is a secret: a message about them says what type it got, never the value. */
export const SECRET_KEYS: ReadonlySet<string> = new Set([
  "mysql.password",
  "mongodb.password",
  "mongodb.uri",
  "aws.secret_access_key",
  "aws.session_token",
]);

/** A URI taken apart around its userinfo: `${head}${user}:${password}@${rest}`. */
export interface UriParts {
  /** "scheme://" (or "" when the text has none) */
  head: string;
  /** "" when the URI has no "user[:password]@" */
  user: string;
  /** raw, still percent-encoded; "" when there is none */
  password: string;
  /** the host list, the path and the query */
  rest: string;
}

/**
 * Splits a URI such as mongodb://user:password@host1,host2/db?options. Host lists and database
 * names never hold "@", so the userinfo ends at the last "@" before the query, which is the
 * first "?" after a "/" (MongoDB wants the "/" before the options): a password may then hold
 * unencoded ":", "/", "@" and "?" and still be found.
 */
export function splitUri(uri: string): UriParts {
  const head = /^[A-Za-z][A-Za-z0-9+.-]*:\/\//.exec(uri)?.[0] ?? "";
  const body = uri.slice(head.length);
  const slash = body.indexOf("/");
  const query = slash < 0 ? -1 : body.indexOf("?", slash);
  const at = (query < 0 ? body : body.slice(0, query)).lastIndexOf("@");
  if (at < 0) return { head, user: "", password: "", rest: body };
  const userinfo = body.slice(0, at);
  const colon = userinfo.indexOf(":");
  return {
    head,
    user: colon < 0 ? userinfo : userinfo.slice(0, colon),
    password: colon < 0 ? "" : userinfo.slice(colon + 1),
    rest: body.slice(at + 1),
  };
}

/** The user and the (raw, still percent-encoded) password of a URI's userinfo. */
export function uriCredentials(uri: string): { user: string; password: string } {
  const { user, password } = splitUri(uri);
  return { user, password };
}

/** The URI with its password replaced by ***, for messages. */
export function blankUriPassword(uri: string): string {
  const { head, user, password, rest } = splitUri(uri);
  return password ? `${head}${user}:***@${rest}` : uri;
}

/** Percent-decoded text, or null when it is not valid percent-encoding (a lone "%"). */
export function decodeOrNull(text: string): string | null {
  try {
    return decodeURIComponent(text);
  } catch {
    return null;
  }
}

/**
 * The parts of a Config that hold secrets. Written out rather than taken from Config, whose type
 * comes from the schema, which reads this module's key list through reader.ts.
 */
interface SecretFields {
  mysql: { password: string };
  mongodb: { password: string; uri: string };
  aws: { secret_access_key: string; session_token: string };
}

export function secretsOf(config: SecretFields): string[] {
  const secrets = [
    config.mysql.password,
    config.mongodb.password,
    config.aws.secret_access_key,
    config.aws.session_token,
  ];
  const uriPassword = uriCredentials(config.mongodb.uri).password;
  if (uriPassword) secrets.push(uriPassword, decodeOrNull(uriPassword) ?? uriPassword);
  return secrets.filter((s) => s.length >= 4);
}

/** "…WXYZ": at most the last 4 characters of an access key id, for messages (DESIGN §3). */
export function maskAccessKey(accessKeyId: string): string {
  return accessKeyId.length > 4 ? `…${accessKeyId.slice(-4)}` : "…";
}

/**
 * The mode of `file` when users other than this process's may read it (null when none may, or
 * it cannot be looked at): others, or a group that is not this process's own. A file given to
 * the process's own group is not exposed: a Kubernetes Secret volume is root's and readable only
 * through the pod's fsGroup (mode 0440), and cannot be made 0600.
 */
function exposedMode(file: string): number | null {
  try {
    const st = statSync(file);
    const mode = st.mode & 0o777;
    if ((mode & 0o007) !== 0) return mode;
    if ((mode & 0o070) !== 0 && st.gid !== process.getegid?.()) return mode;
    return null;
  } catch {
    return null;
  }
}

/** A warning when `file`, which holds `what` ("a secret"), can be read by others than this user. */
export function exposedFileWarning(file: string, what: string): string | null {
  const mode = exposedMode(file);
  if (mode === null) return null;
  return `${file} holds ${what} and is readable by group or others (mode ${mode.toString(8).padStart(4, "0")}); run: chmod 600 ${file}`;
}
