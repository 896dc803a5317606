// AWS Signature Version 4 verifier for the test servers, written from the AWS documentation
// ("Create a signed AWS API request", "Authenticating requests: Using the Authorization header")
// and deliberately independent of aws4fetch, so that a signing bug in our client cannot be
// mirrored by the code that checks it.
import { createHash, createHmac, timingSafeEqual } from "node:crypto";

export type SigV4ErrorCode =
  | "MissingAuthenticationToken"
  | "IncompleteSignature"
  | "AuthorizationHeaderMalformed"
  | "InvalidAccessKeyId"
  | "SignatureDoesNotMatch"
  | "XAmzContentSHA256Mismatch"
  | "RequestTimeTooSkewed"
  | "AccessDenied"
  | "InvalidRequest"
  | "NotImplemented";

export type HeaderInput = Headers | Readonly<Record<string, string | readonly string[] | undefined>>;

export interface SigV4Request {
  method: string;
  /** The request target as sent: "/path?query", or an absolute URL. Kept raw, not normalised. */
  url: string | URL;
  headers: HeaderInput;
  body: Uint8Array;
}

export interface SigV4VerifyOptions {
  secretFor(accessKeyId: string): string | undefined;
  /** "s3", "glue", "athena"... S3 has its own path and payload-hash rules. */
  service: string;
  /** When set, the credential scope must name this region. */
  region?: string;
  now?: Date;
}

export interface SigV4Success {
  ok: true;
  accessKeyId: string;
  region: string;
  service: string;
  signedHeaders: string[];
  /** The hex SHA-256 of the body, or UNSIGNED-PAYLOAD. */
  payloadHash: string;
}

export interface SigV4Failure {
  ok: false;
  code: SigV4ErrorCode;
  message: string;
  /** Set for SignatureDoesNotMatch, as S3 does, so a failing test shows what was signed. */
  canonicalRequest?: string;
  stringToSign?: string;
}

export type SigV4Result = SigV4Success | SigV4Failure;

export const ALGORITHM = "AWS4-HMAC-SHA256";
export const UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD";
export const EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
export const MAX_SKEW_MS = 15 * 60 * 1000;

const STATUS: Record<SigV4ErrorCode, number> = {
  MissingAuthenticationToken: 403,
  IncompleteSignature: 400,
  AuthorizationHeaderMalformed: 400,
  InvalidAccessKeyId: 403,
  SignatureDoesNotMatch: 403,
  XAmzContentSHA256Mismatch: 400,
  RequestTimeTooSkewed: 403,
  AccessDenied: 403,
  InvalidRequest: 400,
  NotImplemented: 501,
};

export function httpStatusFor(code: SigV4ErrorCode): number {
  return STATUS[code];
}

export function sha256Hex(data: Uint8Array | string): string {
  return createHash("sha256").update(data).digest("hex");
}

function hmac(key: Uint8Array | string, data: string): Buffer {
  return createHmac("sha256", key).update(data, "utf8").digest();
}

export function signingKey(secretAccessKey: string, date: string, region: string, service: string): Buffer {
  const kDate = hmac(`AWS4${secretAccessKey}`, date);
  const kRegion = hmac(kDate, region);
  const kService = hmac(kRegion, service);
  return hmac(kService, "aws4_request");
}

const UNRESERVED = /^[A-Za-z0-9\-._~]$/;

/** URI-encodes per SigV4: every byte but the RFC 3986 unreserved set, upper-case hex. */
export function uriEncode(value: string, encodeSlash: boolean): string {
  let out = "";
  for (const char of value) {
    if (UNRESERVED.test(char) || (char === "/" && !encodeSlash)) {
      out += char;
    } else {
      for (const byte of Buffer.from(char, "utf8"))
        out += `%${byte.toString(16).toUpperCase().padStart(2, "0")}`;
    }
  }
  return out;
}

function safeDecode(value: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}

function removeDotSegments(segments: string[]): string[] {
  const out: string[] = [];
  for (const segment of segments) {
    if (segment === ".") continue;
    if (segment === "..") out.pop();
    else out.push(segment);
  }
  return out;
}

/**
 * The canonical URI of a path as received. Each segment is decoded then encoded once, which is
 * what S3 signs. Every other service normalises the path and encodes it a second time.
 */
export function canonicalUri(rawPath: string, service: string): string {
  if (rawPath === "") return "/";
  const segments = rawPath.split("/").map((segment) => uriEncode(safeDecode(segment), true));
  if (service === "s3") return segments.join("/");
  const rest = segments.slice(1);
  const last = rest.length - 1;
  const kept = removeDotSegments(rest.filter((segment, i) => segment !== "" || i === last));
  return uriEncode(`/${kept.join("/")}`, false);
}

function decodeQueryPart(value: string): string {
  return safeDecode(value.replace(/\+/g, " "));
}

/** Parameters decoded, re-encoded, sorted by name then value; "name=" for an empty value. */
export function canonicalQuery(rawQuery: string): string {
  const query = rawQuery.startsWith("?") ? rawQuery.slice(1) : rawQuery;
  const pairs: [string, string][] = [];
  for (const piece of query.split("&")) {
    if (piece === "") continue;
    const eq = piece.indexOf("=");
    const name = eq < 0 ? piece : piece.slice(0, eq);
    const value = eq < 0 ? "" : piece.slice(eq + 1);
    pairs.push([uriEncode(decodeQueryPart(name), true), uriEncode(decodeQueryPart(value), true)]);
  }
  pairs.sort(([n1, v1], [n2, v2]) => (n1 < n2 ? -1 : n1 > n2 ? 1 : v1 < v2 ? -1 : v1 > v2 ? 1 : 0));
  return pairs.map(([name, value]) => `${name}=${value}`).join("&");
}

/** Lower-cased names, each with its values in arrival order. */
export function headerValues(headers: HeaderInput): Map<string, string[]> {
  const out = new Map<string, string[]>();
  const add = (name: string, value: string): void => {
    const key = name.toLowerCase();
    const list = out.get(key);
    if (list) list.push(value);
    else out.set(key, [value]);
  };
  if (headers instanceof Headers) {
    headers.forEach((value, name) => {
      add(name, value);
    });
  } else {
    for (const [name, value] of Object.entries(headers)) {
      if (value === undefined) continue;
      if (typeof value === "string") add(name, value);
      else for (const v of value) add(name, v);
    }
  }
  return out;
}

function canonicalHeaderValue(values: readonly string[]): string {
  return values.map((v) => v.trim().replace(/\s+/g, " ")).join(",");
}

export interface CanonicalRequestParts {
  method: string;
  canonicalUri: string;
  canonicalQuery: string;
  /** Lower-cased name → canonical value, for the signed headers only. */
  headers: ReadonlyMap<string, string>;
  signedHeaders: readonly string[];
  payloadHash: string;
}

export function canonicalRequest(parts: CanonicalRequestParts): string {
  const headerLines = parts.signedHeaders
    .map((name) => `${name}:${parts.headers.get(name) ?? ""}\n`)
    .join("");
  return [
    parts.method.toUpperCase(),
    parts.canonicalUri,
    parts.canonicalQuery,
    headerLines,
    parts.signedHeaders.join(";"),
    parts.payloadHash,
  ].join("\n");
}

export function stringToSign(amzDate: string, scope: string, canonical: string): string {
  return [ALGORITHM, amzDate, scope, sha256Hex(canonical)].join("\n");
}

function splitTarget(url: string | URL): { path: string; query: string } {
  if (url instanceof URL) return { path: url.pathname, query: url.search.slice(1) };
  const target = url.replace(/^[A-Za-z][A-Za-z0-9+.-]*:\/\/[^/?#]*/, "").replace(/#.*$/, "");
  const q = target.indexOf("?");
  return q < 0 ? { path: target, query: "" } : { path: target.slice(0, q), query: target.slice(q + 1) };
}

function parseAmzDate(value: string): Date | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(value);
  if (!m) return undefined;
  const [, y, mo, d, h, mi, s] = m.map(Number);
  const date = new Date(Date.UTC(y ?? 0, (mo ?? 1) - 1, d ?? 0, h ?? 0, mi ?? 0, s ?? 0));
  return Number.isNaN(date.getTime()) ? undefined : date;
}

function fail(code: SigV4ErrorCode, message: string, extra?: Partial<SigV4Failure>): SigV4Failure {
  return { ok: false, code, message, ...extra };
}

interface AuthorizationFields {
  credential: string;
  signedHeaders: string;
  signature: string;
}

function parseAuthorization(value: string): AuthorizationFields | SigV4Failure {
  const space = value.indexOf(" ");
  const algorithm = space < 0 ? value : value.slice(0, space);
  if (algorithm !== ALGORITHM) {
    return fail(
      "IncompleteSignature",
      `Unsupported authorization algorithm '${algorithm}'; expected ${ALGORITHM}.`,
    );
  }
  const fields = new Map<string, string>();
  for (const part of value.slice(space + 1).split(",")) {
    const trimmed = part.trim();
    const eq = trimmed.indexOf("=");
    if (eq <= 0) {
      return fail(
        "IncompleteSignature",
        `Authorization header component '${trimmed}' is not of the form Key=Value.`,
      );
    }
    const key = trimmed.slice(0, eq);
    if (fields.has(key)) return fail("IncompleteSignature", `Authorization header repeats '${key}'.`);
    fields.set(key, trimmed.slice(eq + 1));
  }
  const credential = fields.get("Credential");
  const signedHeaders = fields.get("SignedHeaders");
  const signature = fields.get("Signature");
  if (credential === undefined || signedHeaders === undefined || signature === undefined) {
    const missing = ["Credential", "SignedHeaders", "Signature"].filter((k) => !fields.has(k));
    return fail("IncompleteSignature", `Authorization header lacks ${missing.join(", ")}.`);
  }
  return { credential, signedHeaders, signature };
}

function payloadHashFor(
  values: ReadonlyMap<string, string[]>,
  body: Uint8Array,
  service: string,
): string | SigV4Failure {
  const declared = values.get("x-amz-content-sha256");
  if (declared === undefined) {
    if (service === "s3") {
      return fail("InvalidRequest", "Missing required header for this request: x-amz-content-sha256");
    }
    return sha256Hex(body);
  }
  const value = canonicalHeaderValue(declared);
  if (value === UNSIGNED_PAYLOAD) return value;
  if (value.startsWith("STREAMING-")) {
    return fail("NotImplemented", `This test server does not verify chunked payloads (${value}).`);
  }
  if (!/^[0-9a-f]{64}$/.test(value)) {
    return fail(
      "InvalidRequest",
      "x-amz-content-sha256 must be UNSIGNED-PAYLOAD or a lower-case hex SHA-256.",
    );
  }
  if (value !== sha256Hex(body)) {
    return fail(
      "XAmzContentSHA256Mismatch",
      "The provided 'x-amz-content-sha256' header does not match what was computed.",
    );
  }
  return value;
}

export function verifySigV4(req: SigV4Request, opts: SigV4VerifyOptions): SigV4Result {
  const values = headerValues(req.headers);
  const { path, query } = splitTarget(req.url);

  const authorization = values.get("authorization");
  if (authorization === undefined) {
    if (/(^|&)X-Amz-Algorithm=/.test(query)) {
      return fail("NotImplemented", "This test server does not verify presigned (query string) requests.");
    }
    return fail("MissingAuthenticationToken", "Request is missing an Authorization header.");
  }
  if (authorization.length !== 1)
    return fail("IncompleteSignature", "Request has several Authorization headers.");
  const auth = parseAuthorization(authorization[0] ?? "");
  if ("ok" in auth) return auth;

  const scope = auth.credential.split("/");
  if (scope.length !== 5) {
    return fail(
      "AuthorizationHeaderMalformed",
      `Credential '${auth.credential}' is not of the form <key>/<date>/<region>/<service>/aws4_request.`,
    );
  }
  const [accessKeyId = "", scopeDate = "", region = "", service = "", terminator = ""] = scope;
  const secret = opts.secretFor(accessKeyId);
  if (secret === undefined) {
    return fail("InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records.");
  }
  if (terminator !== "aws4_request") {
    return fail(
      "AuthorizationHeaderMalformed",
      `Credential scope must end with aws4_request, not '${terminator}'.`,
    );
  }
  if (service !== opts.service) {
    return fail("AuthorizationHeaderMalformed", `Credential should be scoped to service '${opts.service}'.`);
  }
  if (!/^[a-z0-9-]+$/.test(region) || (opts.region !== undefined && region !== opts.region)) {
    return fail(
      "AuthorizationHeaderMalformed",
      `The authorization header is malformed; the region '${region}' is wrong${opts.region ? `; expecting '${opts.region}'` : ""}.`,
    );
  }

  const amzDateValues = values.get("x-amz-date");
  const amzDate = amzDateValues?.length === 1 ? (amzDateValues[0] ?? "").trim() : "";
  const requestTime = parseAmzDate(amzDate);
  if (requestTime === undefined) {
    return fail(
      "IncompleteSignature",
      "Request needs exactly one X-Amz-Date header in the form YYYYMMDD'T'HHMMSS'Z'.",
    );
  }
  if (scopeDate !== amzDate.slice(0, 8)) {
    return fail(
      "SignatureDoesNotMatch",
      `Date in Credential scope (${scopeDate}) does not match YYYYMMDD from X-Amz-Date (${amzDate}).`,
    );
  }
  const now = opts.now ?? new Date();
  if (Math.abs(now.getTime() - requestTime.getTime()) > MAX_SKEW_MS) {
    return fail(
      "RequestTimeTooSkewed",
      `The difference between the request time (${requestTime.toISOString()}) and the server's time (${now.toISOString()}) is too large.`,
    );
  }

  const signedHeaders = auth.signedHeaders.split(";");
  const sorted = [...signedHeaders].sort();
  if (
    signedHeaders.some((h, i) => h === "" || h !== h.toLowerCase() || h !== sorted[i] || h === sorted[i - 1])
  ) {
    return fail(
      "IncompleteSignature",
      `SignedHeaders '${auth.signedHeaders}' must be lower-case, sorted and without duplicates.`,
    );
  }
  for (const required of ["host", "x-amz-date"]) {
    if (!signedHeaders.includes(required)) {
      return fail("IncompleteSignature", `'${required}' must be a signed header.`);
    }
  }
  const absent = signedHeaders.filter((h) => !values.has(h));
  if (absent.length > 0) {
    return fail("SignatureDoesNotMatch", `Signed headers missing from the request: ${absent.join(", ")}.`);
  }
  if (opts.service === "s3") {
    // S3 refuses x-amz-* headers that ride along unsigned: they could be altered in transit.
    const unsigned = [...values.keys()].filter((h) => h.startsWith("x-amz-") && !signedHeaders.includes(h));
    if (unsigned.length > 0) {
      return fail(
        "AccessDenied",
        `There were headers present in the request which were not signed: ${unsigned.join(", ")}.`,
      );
    }
  }

  const payloadHash = payloadHashFor(values, req.body, opts.service);
  if (typeof payloadHash !== "string") return payloadHash;

  const canonicalHeaders = new Map<string, string>();
  for (const name of signedHeaders) canonicalHeaders.set(name, canonicalHeaderValue(values.get(name) ?? []));
  const canonical = canonicalRequest({
    method: req.method,
    canonicalUri: canonicalUri(path, opts.service),
    canonicalQuery: canonicalQuery(query),
    headers: canonicalHeaders,
    signedHeaders,
    payloadHash,
  });
  const toSign = stringToSign(amzDate, scope.slice(1).join("/"), canonical);
  const expected = createHmac("sha256", signingKey(secret, scopeDate, region, service))
    .update(toSign)
    .digest();
  const given = /^[0-9a-f]{64}$/.test(auth.signature) ? Buffer.from(auth.signature, "hex") : Buffer.alloc(0);
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
    return fail(
      "SignatureDoesNotMatch",
      "The request signature we calculated does not match the signature you provided. Check your key and signing method.",
      { canonicalRequest: canonical, stringToSign: toSign },
    );
  }
  return { ok: true, accessKeyId, region, service, signedHeaders, payloadHash };
}
