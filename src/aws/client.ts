// The one signed fetch every AWS call goes through: SigV4 by aws4fetch, a limit on silence per
// attempt (no answer, or the answer stopped), retries on what is worth retrying
// (network errors, 5xx, 429, throttling; a timeout only once) with capped exponential backoff and
// full jitter, each said as a warning, and AWS error bodies (S3 XML, JSON 1.1) turned into an
// AwsError whose message names the operation, the resource and what to do.
import { AwsV4Signer } from "aws4fetch";
import type { Config } from "../config/types.ts";
import { messageOf, PanoramaError } from "../errors.ts";
import { log } from "../log.ts";
import { fromTestEnv } from "../test-overrides.ts";
import type { CredentialProvider } from "./credential-provider.ts";
import { credentialChain } from "./credentials.ts";
import { xmlValues } from "./xml.ts";

export type AwsService = "s3" | "glue" | "athena";

export interface AwsRequest {
  service: AwsService;
  method: string;
  url: string;
  headers?: Record<string, string>;
  body?: Uint8Array | string | Blob;
  /** the API operation, for messages: "PutObject", "CreateTable" */
  operation: string;
  /** what it acts on, for messages: "s3://bucket/key", "table panorama.x" */
  resource: string;
  /** S3 may answer 200 and put an `<Error>` in the body (CompleteMultipartUpload): an error too */
  errorIn200Body?: boolean;
  /**
   * Runs before each retry with the error of the attempt that failed: for a call that is not
   * idempotent, to undo what a failed attempt may have done (CreateMultipartUpload).
   */
  beforeRetry?: (error: AwsError) => Promise<void>;
}

export interface RetryOptions {
  /** attempts in all, the first included */
  attempts?: number;
  /** of those, how many may end in a timeout: an endpoint that stays silent is not waited for 6 times */
  timeoutAttempts?: number;
  baseMs?: number;
  maxMs?: number;
}

export interface AwsClientOptions {
  fetch?: typeof fetch;
  credentials?: CredentialProvider;
  retry?: RetryOptions;
  /**
   * Per attempt, the longest silence: no answer's headers after the request went out (after a
   * body, longer by the time the slowest expected uplink takes to send it), no byte of the
   * answer's body.
   */
  timeoutMs?: number;
  /** the slowest uplink a body is allowed for (tests: faster, to keep their waits short) */
  slowLinkBytesPerSecond?: number;
}

// 30 s of silence is ten times the slowest answer Glue, Athena, STS or S3 gives our calls (botocore
// waits 60 s), and 2 timeouts in a row say the endpoint is silent:
// a call to a black-holed endpoint gives up after about a minute, not after 6 × 120 s.
const TIMEOUT_MS = 30_000;
const TIMEOUT_ATTEMPTS = 2;

/**
 * For tests only: the silence limit of clients given none (a CLI test's endpoint that never
 * answers would otherwise take a minute per call).
 */
const TEST_TIMEOUT_ENV = "PANORAMA_TEST_AWS_TIMEOUT_MS";

/** For tests only: the first retry's delay (a CLI test of an outage would wait seconds per call). */
const TEST_RETRY_ENV = "PANORAMA_TEST_AWS_RETRY_MS";
const RETRY_BASE_MS = 250;

function defaultTimeoutMs(): number {
  return fromTestEnv(TEST_TIMEOUT_ENV, TIMEOUT_MS);
}

const HINTS: Record<string, string> = {
  AccessDenied: "compare the permissions of these credentials with `panorama iam-policy`",
  AccessDeniedException: "compare the permissions of these credentials with `panorama iam-policy`",
  Forbidden: "compare the permissions of these credentials with `panorama iam-policy`",
  SignatureDoesNotMatch:
    "check the secret access key ([aws] secret_access_key, PANORAMA_AWS_SECRET_ACCESS_KEY or AWS_SECRET_ACCESS_KEY)",
  InvalidAccessKeyId:
    "check the access key id ([aws] access_key_id, PANORAMA_AWS_ACCESS_KEY or AWS_ACCESS_KEY_ID)",
  UnrecognizedClientException: "check the access key id and secret access key",
  InvalidSignatureException: "check the secret access key",
  ExpiredToken: "the session token expired: renew the credentials",
  ExpiredTokenException: "the session token expired: renew the credentials",
  RequestTimeTooSkewed: "this machine's clock is off: synchronise it (chrony or systemd-timesyncd)",
  NoSuchBucket: "check datalake.bucket (PANORAMA_BUCKET) and datalake.region",
  PermanentRedirect: "the bucket is in another region: set datalake.region to the bucket's region",
  AuthorizationHeaderMalformed: "the bucket is in another region: set datalake.region to the bucket's region",
  KMS_AccessDeniedException: "allow kms:GenerateDataKey on datalake.kms_key_arn (see `panorama iam-policy`)",
  NetworkError:
    "check the network path to that address (proxy, firewall, DNS), datalake.region, and the endpoint setting if it is a custom one",
  Timeout:
    "nothing answered in time: check the network path to that address (proxy, firewall, load balancer) and the endpoint setting if it is a custom one, then run again",
};

/**
 * What AWS's JSON services (Glue, Athena, STS) say of a request dated more than 15 minutes from
 * their clock: an InvalidSignatureException like a wrong secret's, told apart by its message.
 */
const CLOCK_OFF = /^Signature (expired|not yet current):/;

function hintFor(code: string, detail: string): string | undefined {
  if (code === "InvalidSignatureException" && CLOCK_OFF.test(detail)) return HINTS.RequestTimeTooSkewed;
  return HINTS[code] ?? (code.startsWith("Throttl") ? "AWS is throttling: run again later" : undefined);
}

/** An AWS call that failed for good: its status and code, the operation and what it acted on. */
export class AwsError extends PanoramaError {
  constructor(
    readonly code: string,
    readonly status: number,
    readonly operation: string,
    readonly resource: string,
    /** what AWS said, or what the network did (for a NetworkError or Timeout, with the endpoint's origin) */
    readonly detail: string,
  ) {
    const hint = hintFor(code, detail);
    const what = status > 0 ? `${code} (HTTP ${status})` : code;
    const cause = `${what}${detail ? `: ${detail}` : ""}${hint ? `; ${hint}` : ""}`;
    super(`${operation} ${resource} failed: ${cause}`, hint);
    this.reason = cause;
  }

  /** What went wrong and what to do, without the operation and the resource it acted on. */
  readonly reason: string;

  /** The service could not be reached at all: no answer, or none in time. */
  get unreachable(): boolean {
    return this.code === "NetworkError" || this.code === "Timeout";
  }

  /** What kind of failure this is, for the fix to offer: only a refusal is fixed by a permission. */
  get kind(): AwsFailureKind {
    if (this.unreachable) return "unreachable";
    if (REFUSALS.has(this.code)) return "denied";
    if (this.status >= 500) return "server";
    return "other";
  }
}

/**
 * unreachable: no HTTP answer after the retries (DNS, refused, reset, timeout); denied: the
 * credentials lack a permission; server: a 5xx answer; other: any other error answer.
 */
export type AwsFailureKind = "unreachable" | "denied" | "server" | "other";

/** The answers of a missing IAM permission (a bad signature or key is a 403 too, not one of these). */
const REFUSALS = new Set(["AccessDenied", "AccessDeniedException", "Forbidden"]);

const RETRYABLE_CODES = new Set([
  "SlowDown",
  "RequestTimeout",
  "RequestTimeoutException",
  "InternalError",
  "ServiceUnavailable",
  "TooManyRequestsException",
  "ProvisionedThroughputExceededException",
  "RequestLimitExceeded",
  "PriorRequestNotComplete",
  "NetworkError",
  "Timeout",
]);

function retryable(error: AwsError): boolean {
  return (
    error.status >= 500 ||
    error.status === 429 ||
    RETRYABLE_CODES.has(error.code) ||
    error.code.startsWith("Throttling")
  );
}

/** The error an AWS answer carries: S3's XML `<Error>` or a JSON `__type` / `code`. */
async function parseAwsError(res: Response, req: AwsRequest): Promise<AwsError> {
  const text = req.method === "HEAD" ? "" : await res.text().catch(() => "");
  return errorOf(text, res, req);
}

function errorOf(text: string, res: Response, req: AwsRequest): AwsError {
  let code = "";
  let message = "";
  const xmlCode = xmlValues(text, "Code")[0];
  if (xmlCode !== undefined) {
    code = xmlCode;
    message = xmlValues(text, "Message")[0] ?? "";
  } else if (text.trimStart().startsWith("{")) {
    try {
      const body = JSON.parse(text) as Record<string, unknown>;
      code = String(body.__type ?? body.code ?? body.Code ?? "");
      message = String(body.message ?? body.Message ?? "");
    } catch {
      // not JSON after all: fall through to the status
    }
  }
  code ||= res.headers.get("x-amzn-errortype") ?? "";
  // "com.amazonaws.glue#EntityNotFoundException" or "EntityNotFoundException:http://..."
  code = code.replace(/^.*#/, "").replace(/:.*$/, "");
  if (!code) code = STATUS_CODES[res.status] ?? `HTTP${res.status}`;
  return new AwsError(code, res.status, req.operation, req.resource, message);
}

const STATUS_CODES: Record<number, string> = {
  400: "BadRequest",
  403: "Forbidden",
  404: "NotFound",
  429: "TooManyRequests",
  500: "InternalError",
  503: "ServiceUnavailable",
};

export class AwsClient {
  readonly credentials: CredentialProvider;
  private readonly fetchImpl: typeof fetch;
  private readonly attempts: number;
  private readonly timeoutAttempts: number;
  private readonly baseMs: number;
  private readonly maxMs: number;
  private readonly timeoutMs: number;
  private readonly slowLinkBytesPerSecond: number;
  private readonly endpoints: Record<"glue" | "athena", string>;
  private readonly signingKeys = new Map<string, ArrayBuffer>();

  constructor(
    private readonly config: Config,
    options: AwsClientOptions = {},
  ) {
    this.fetchImpl = options.fetch ?? fetch;
    this.credentials = options.credentials ?? credentialChain(config);
    this.attempts = Math.max(1, options.retry?.attempts ?? 6);
    this.timeoutAttempts = Math.max(1, options.retry?.timeoutAttempts ?? TIMEOUT_ATTEMPTS);
    this.baseMs = options.retry?.baseMs ?? fromTestEnv(TEST_RETRY_ENV, RETRY_BASE_MS);
    this.maxMs = options.retry?.maxMs ?? 10_000;
    this.timeoutMs = options.timeoutMs ?? defaultTimeoutMs();
    this.slowLinkBytesPerSecond = options.slowLinkBytesPerSecond ?? SLOW_LINK_BYTES_PER_SECOND;
    const { glue_endpoint, athena_endpoint, region } = config.datalake;
    this.endpoints = {
      glue: glue_endpoint.replace(/\/+$/, "") || `https://glue.${region}.amazonaws.com`,
      athena: athena_endpoint.replace(/\/+$/, "") || `https://athena.${region}.amazonaws.com`,
    };
  }

  /** Sends `req`, retrying what may succeed later; a final non-2xx answer is thrown as AwsError. */
  async request(req: AwsRequest): Promise<Response> {
    let timeouts = 0;
    for (let attempt = 1; ; attempt++) {
      let error: AwsError;
      const silence = new Silence(this.timeoutMs, this.slowLinkBytesPerSecond);
      try {
        const res = await this.attempt(req, silence);
        if (res.ok) {
          // attempt() read the body into memory: the clone reads no second time from the network.
          const text = req.errorIn200Body ? await res.clone().text() : "";
          if (!text.includes("<Error>")) return res;
          error = errorOf(text, res, req);
        } else {
          error = await parseAwsError(res, req);
        }
      } catch (thrown) {
        if (thrown instanceof PanoramaError) throw thrown;
        error = networkError(thrown, req, silence);
      } finally {
        silence.stop();
      }
      if (error.code === "Timeout") timeouts++;
      if (!retryable(error) || attempt >= this.attempts || timeouts >= this.timeoutAttempts) throw error;
      const delay = Math.random() * Math.min(this.maxMs, this.baseMs * 2 ** (attempt - 1));
      const what = `${error.code}${error.status > 0 ? ` (HTTP ${error.status})` : ""}`;
      const detail = error.detail ? `: ${error.detail}` : "";
      log.warn(
        `${req.operation} ${req.resource} failed: ${what}${detail}; retrying (attempt ${attempt + 1})`,
        {
          operation: req.operation,
          code: error.code,
          attempt,
          delay_ms: Math.round(delay),
        },
      );
      await req.beforeRetry?.(error);
      await Bun.sleep(delay);
    }
  }

  private async attempt(req: AwsRequest, silence: Silence): Promise<Response> {
    const credentials = await this.credentials.get();
    const signer = new AwsV4Signer({
      method: req.method,
      url: req.url,
      headers: req.headers ?? {},
      // aws4fetch hashes string and byte bodies; a Blob is sent as UNSIGNED-PAYLOAD (S3 only).
      body: req.body instanceof Blob ? undefined : req.body,
      accessKeyId: credentials.accessKeyId,
      secretAccessKey: credentials.secretAccessKey,
      sessionToken: credentials.sessionToken,
      service: req.service,
      region: this.config.datalake.region,
      cache: this.signingKeys,
    });
    const signed = await signer.sign();
    // Bun's fetch says nothing of a body's progress: the wait for the answer allows for sending
    // it over the slowest expected link (an 8 MiB part: 128 s more).
    const bodyBytes =
      req.body instanceof Blob
        ? req.body.size
        : req.body instanceof Uint8Array
          ? req.body.length
          : typeof req.body === "string"
            ? req.body.length
            : 0;
    silence.restart(this.timeoutMs + (bodyBytes / this.slowLinkBytesPerSecond) * 1000);
    // A Blob (a file's slice) goes as a stream of its own for each attempt, its length said: over
    // TLS, Bun's fetch reads a Blob body whole into memory before it sends it (a test script
    // sending 16 parts of 8 MiB at once peaked at 180 MB; streamed, 41 MB), where over plain
    // HTTP it sends it from the file. With the length given, the request is not chunked. (A
    // stream of our own, to see each piece taken, cost 56 MiB more in bench-upload.)
    const blob = req.body instanceof Blob ? req.body : null;
    if (blob) signed.headers.set("content-length", String(blob.size));
    const res = await this.fetchImpl(signed.url, {
      method: req.method,
      headers: signed.headers,
      body: blob ? blob.stream() : (req.body ?? null),
      signal: silence.signal,
      ...(blob ? { duplex: "half" } : {}),
    });
    if (req.method === "HEAD") return res;
    // Read the whole answer inside the attempt: a connection that drops or stalls mid-body is
    // retried too. An error's body that cannot be read leaves its status to speak.
    silence.answered();
    const body = await readAll(res, silence).catch((error: unknown) => {
      if (res.ok) throw error;
      return new Uint8Array();
    });
    return new Response(body, { status: res.status, statusText: res.statusText, headers: res.headers });
  }

  /** A JSON 1.1 call to Glue or Athena (X-Amz-Target), its JSON answer. */
  async json<T>(service: "glue" | "athena", target: string, body: object, resource: string): Promise<T> {
    const res = await this.request({
      service,
      method: "POST",
      url: `${this.endpoints[service]}/`,
      headers: { "X-Amz-Target": target, "Content-Type": "application/x-amz-json-1.1" },
      body: JSON.stringify(body),
      operation: target.replace(/^.*\./, ""),
      resource,
    });
    const text = await res.text();
    return (text ? JSON.parse(text) : {}) as T;
  }
}

/** The slowest uplink an LMS host is expected on: 512 kbit/s. */
const SLOW_LINK_BYTES_PER_SECOND = 64 * 1024;

/**
 * An attempt's limit on silence: its signal aborts when nothing moved for `ms`, whether the
 * request body was being sent, the answer awaited, or its body read.
 */
class Silence {
  private readonly controller = new AbortController();
  private timer: ReturnType<typeof setTimeout> | undefined;
  /** what was waited for when the limit struck, for the message */
  phase: "waiting" | "reading" | "trickling" = "waiting";

  constructor(
    readonly ms: number,
    /** the slowest pace an answer's body may come at, once past the limit on silence */
    readonly bytesPerSecond: number,
  ) {
    this.limitMs = ms;
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  get timedOut(): boolean {
    return this.controller.signal.aborted;
  }

  /** the limit now running: longer while a request's body may still be going out */
  limitMs: number;

  /** Something moved: the limit starts again. */
  restart(limitMs = this.ms): void {
    this.limitMs = limitMs;
    clearTimeout(this.timer);
    this.timer = setTimeout(
      () => this.controller.abort(new DOMException(`silent for ${limitMs} ms`, "TimeoutError")),
      limitMs,
    );
  }

  private answeredAt = 0;
  private received = 0;

  /** The answer's headers came: from now on its body is read. */
  answered(): void {
    this.phase = "reading";
    this.answeredAt = performance.now();
    this.restart();
  }

  /**
   * `bytes` more of the answer came: the limit starts again, unless the answer as a whole comes
   * slower than the slowest link (a server sending a byte now and then would hold the run forever).
   */
  progressed(bytes: number): void {
    this.received += bytes;
    const allowedMs = this.ms + (this.received / this.bytesPerSecond) * 1000;
    if (performance.now() - this.answeredAt > allowedMs) {
      this.phase = "trickling";
      this.limitMs = performance.now() - this.answeredAt;
      this.controller.abort(new DOMException("the answer came too slowly", "TimeoutError"));
      return;
    }
    this.restart();
  }

  stop(): void {
    clearTimeout(this.timer);
  }
}

/** The answer's body, each chunk counted as progress. */
async function readAll(res: Response, silence: Silence): Promise<Uint8Array> {
  if (!res.body) return new Uint8Array();
  const chunks: Uint8Array[] = [];
  const reader = res.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    silence.progressed(value.length);
    chunks.push(value);
  }
  return Buffer.concat(chunks);
}

const SILENT: Record<Silence["phase"], string> = {
  waiting: "no answer",
  reading: "the answer stopped coming",
  trickling: "the answer came too slowly",
};

function networkError(thrown: unknown, req: AwsRequest, silence: Silence): AwsError {
  // The URL's origin says which endpoint could not be reached; never its query (signatures).
  const origin = new URL(req.url).origin;
  const name = thrown instanceof Error ? thrown.name : "";
  if (silence.timedOut || name === "TimeoutError" || name === "AbortError") {
    return new AwsError(
      "Timeout",
      0,
      req.operation,
      req.resource,
      `${SILENT[silence.phase]} for ${Math.round(silence.limitMs / 100) / 10} s${silence.phase === "trickling" ? `, under ${Math.round((silence.bytesPerSecond * 8) / 1024)} kbit/s` : ""} (${origin})`,
    );
  }
  // The system's code (ECONNREFUSED, ENOTFOUND) says it all; Bun adds a question to it.
  const code = (thrown as { code?: unknown }).code;
  const message = typeof code === "string" && /^E[A-Z]+$/.test(code) ? code : messageOf(thrown);
  return new AwsError("NetworkError", 0, req.operation, req.resource, `${message} (${origin})`);
}
