// A loopback proxy in front of s3rver that does what s3rver does not: it verifies SigV4 (s3rver
// accepts any signature, even none) and Content-MD5 (s3rver ignores it: BadDigest here, as S3),
// keeps the state of multipart uploads and answers AbortMultipartUpload and ListMultipartUploads
// itself (s3rver implements neither), answers a ListObjectsV2 with a delimiter itself (s3rver
// leaves out the common prefixes of keys two levels or more below the prefix), refuses a CompleteMultipartUpload whose part ETags are not
// those UploadPart answered (InvalidPart, as S3; s3rver ignores them), records what clients sent,
// and injects faults on request.
//
//   bun test/support/s3-proxy.ts --upstream http://127.0.0.1:4568 --port 0 --access-key K --secret S
//
// prints "listening PORT" once it accepts connections.
import { createHash, randomBytes } from "node:crypto";
import {
  Agent,
  createServer,
  request as httpRequest,
  type IncomingMessage,
  type ServerResponse,
} from "node:http";
import type { AddressInfo } from "node:net";
import { parseArgs } from "node:util";
import { httpStatusFor, type SigV4ErrorCode, sha256Hex, verifySigV4 } from "./sigv4.ts";

export interface S3Credentials {
  accessKeyId: string;
  secretAccessKey: string;
}

/** What to do with one request; `pass` lets verification decide and forwards when it succeeds. */
export type FaultAction =
  /**
   * `answered` runs once the whole answer was written to the client's connection (e.g. to kill
   * the client right after S3's 200).
   */
  | { kind: "pass"; answered?: () => void }
  /** Answer with an S3 error document, e.g. 500 InternalError or 503 SlowDown. */
  | { kind: "error"; status: number; code: string; message?: string }
  /**
   * Destroy the client connection. `after: "upstream"` forwards the request first, so the object
   * is stored but the client never hears so (the case a retry must survive).
   */
  | { kind: "reset"; after?: "request" | "upstream" }
  /** Wait, then carry on with `then` (default: pass). */
  | { kind: "stall"; ms: number; then?: FaultAction };

/** Called once per request, after its body is read and verified. Returning undefined means pass. */
export type FaultHook = (
  request: RecordedRequest,
) => FaultAction | undefined | Promise<FaultAction | undefined>;

export interface RecordedRequest {
  /** 0-based arrival order. */
  index: number;
  method: string;
  /** The path as sent, still percent-encoded. */
  path: string;
  query: Record<string, string>;
  /** Lower-cased; only the ones tests assert on (content-*, if-*, x-amz-* but the session token). */
  headers: Record<string, string>;
  bodyLength: number;
  bodySha256: string;
  /** "ok", or why the signature was refused (the refusal is sent only if the fault passes). */
  auth: "ok" | SigV4ErrorCode;
  accessKeyId?: string;
  fault: FaultAction["kind"];
  /** The status sent back; undefined while in flight or when the connection was reset. */
  status?: number;
  /** UploadPart: the ETag answered (without quotes). */
  etag?: string;
}

export interface S3ProxyOptions {
  upstream: string;
  /** 0 or absent: any free port. */
  port?: number;
  credentials: S3Credentials | readonly S3Credentials[];
  /** The key id s3rver knows; verified requests are forwarded under it. */
  upstreamAccessKeyId?: string;
  faults?: FaultHook;
  /**
   * Under SSE-KMS, S3's ETags are not MD5 digests: when set, UploadPart of an upload created with
   * x-amz-server-side-encryption: aws:kms answers a random ETag instead of s3rver's MD5.
   */
  sseKmsEtags?: boolean;
}

/** A multipart upload created through the proxy and what became of it. */
export interface MultipartRecord {
  bucket: string;
  key: string;
  uploadId: string;
  state: "open" | "completed" | "aborted";
}

export interface S3Proxy {
  url: string;
  port: number;
  requests: RecordedRequest[];
  multipartUploads: MultipartRecord[];
  setFaults(hook: FaultHook | undefined): void;
  close(): Promise<void>;
}

/** A hook that plays the given actions to the first requests, then passes everything. */
export function faultSequence(...actions: FaultAction[]): FaultHook {
  let next = 0;
  return () => actions[next++];
}

const RECORDED =
  /^(content-(md5|type|encoding|length|language|disposition)|cache-control|if-(match|none-match)|x-amz-.*)$/;
// Each side of the proxy frames its own messages.
const HOP_BY_HOP = ["connection", "keep-alive", "transfer-encoding"];
const NOT_FORWARDED = new Set([...HOP_BY_HOP, "host", "expect", "content-length"]);

function escapeXml(text: string): string {
  return text.replace(/[<>&'"]/g, (c) => `&#${c.charCodeAt(0)};`);
}

function unescapeXml(text: string): string {
  return text.replace(/&(#(\d+)|#x([0-9a-fA-F]+)|amp|lt|gt|quot|apos);/g, (_, __, dec, hex, named) =>
    dec
      ? String.fromCodePoint(Number(dec))
      : hex
        ? String.fromCodePoint(Number.parseInt(hex, 16))
        : ({ amp: "&", lt: "<", gt: ">", quot: '"', apos: "'" } as Record<string, string>)[named]!,
  );
}

function s3ErrorBody(
  code: string,
  message: string,
  requestId: string,
  extra: Record<string, string> = {},
): string {
  const fields = Object.entries({ Code: code, Message: message, ...extra, RequestId: requestId })
    .map(([name, value]) => `<${name}>${escapeXml(value)}</${name}>`)
    .join("");
  return `<?xml version="1.0" encoding="UTF-8"?>\n<Error>${fields}</Error>`;
}

function sendError(
  req: IncomingMessage,
  res: ServerResponse,
  status: number,
  code: string,
  message: string,
  extra?: Record<string, string>,
): void {
  const requestId = randomBytes(8).toString("hex").toUpperCase();
  const body = Buffer.from(s3ErrorBody(code, message, requestId, extra));
  res.writeHead(status, {
    "content-type": "application/xml",
    "content-length": body.length,
    "x-amz-request-id": requestId,
  });
  res.end(req.method === "HEAD" ? undefined : body);
}

function rawHeaderRecord(raw: readonly string[]): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = (raw[i] ?? "").toLowerCase();
    const value = raw[i + 1] ?? "";
    const list = out[name];
    if (list) list.push(value);
    else out[name] = [value];
  }
  return out;
}

/** "/bucket/a/b%2Bc" → bucket and decoded key ("" for a bucket request). */
function bucketAndKey(path: string): { bucket: string; key: string } {
  const [, bucket = "", ...rest] = path.split("/");
  return { bucket, key: rest.map((s) => decodeURIComponent(s)).join("/") };
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => resolve(Buffer.concat(chunks)));
    req.on("error", reject);
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export async function startS3Proxy(options: S3ProxyOptions): Promise<S3Proxy> {
  const upstream = new URL(options.upstream);
  const upstreamKey = options.upstreamAccessKeyId ?? "S3RVER";
  const secrets = new Map<string, string>();
  const credentials = "accessKeyId" in options.credentials ? [options.credentials] : options.credentials;
  for (const c of credentials) secrets.set(c.accessKeyId, c.secretAccessKey);
  const agent = new Agent({ keepAlive: true });
  const requests: RecordedRequest[] = [];
  const multipart = new Map<string, MultipartRecord>();
  /** upload id → part number → the ETag UploadPart answered (without quotes) */
  const partEtags = new Map<string, Map<number, string>>();
  const kmsUploads = new Set<string>();
  let faults = options.faults;

  /** What the proxy must learn from s3rver's answer to a multipart request. */
  function track(recorded: RecordedRequest, status: number, body: string): void {
    if (status !== 200) return;
    const { bucket, key } = bucketAndKey(recorded.path);
    if (recorded.method === "POST" && "uploads" in recorded.query) {
      const uploadId = /<UploadId>([^<]*)<\/UploadId>/.exec(body)?.[1];
      if (uploadId) multipart.set(uploadId, { bucket, key, uploadId, state: "open" });
      if (uploadId && recorded.headers["x-amz-server-side-encryption"] === "aws:kms")
        kmsUploads.add(uploadId);
    } else if (recorded.method === "POST" && recorded.query.uploadId && !body.includes("<Error>")) {
      const upload = multipart.get(recorded.query.uploadId);
      if (upload) upload.state = "completed";
    }
  }

  /** The ETag to answer a stored part with (s3rver's, or a random one under SSE-KMS), remembered. */
  function partEtag(
    recorded: RecordedRequest,
    status: number,
    upstreamEtag: string | undefined,
  ): string | undefined {
    const { uploadId, partNumber } = recorded.query;
    if (status !== 200 || recorded.method !== "PUT" || !uploadId || !partNumber || !upstreamEtag) return;
    const etag =
      options.sseKmsEtags && kmsUploads.has(uploadId)
        ? randomBytes(16).toString("hex")
        : upstreamEtag.replace(/"/g, "");
    const parts = partEtags.get(uploadId) ?? new Map<number, string>();
    parts.set(Number(partNumber), etag);
    partEtags.set(uploadId, parts);
    recorded.etag = etag;
    return `"${etag}"`;
  }

  /** Whether every part a CompleteMultipartUpload names carries the ETag its UploadPart answered. */
  function partsMatch(uploadId: string, body: Buffer): boolean {
    const parts = partEtags.get(uploadId);
    const named = body.toString("utf8").match(/<Part>[\s\S]*?<\/Part>/g) ?? [];
    return named.every((part) => {
      const number = Number(/<PartNumber>([^<]*)<\/PartNumber>/.exec(part)?.[1]);
      // S3 removes all double quotes when comparing ETags (XML-escaped ones too).
      const etag = (/<ETag>([^<]*)<\/ETag>/.exec(part)?.[1] ?? "").replace(/"|&quot;|&#34;/g, "");
      return parts?.get(number) === etag;
    });
  }

  /** Multipart calls s3rver lacks or gets wrong; returns true when answered here. */
  function answerMultipart(
    req: IncomingMessage,
    res: ServerResponse,
    recorded: RecordedRequest,
    body: Buffer,
  ): boolean {
    const uploadId = recorded.query.uploadId;
    const { bucket, key } = bucketAndKey(recorded.path);
    if (recorded.method === "GET" && key === "" && "uploads" in recorded.query) {
      const prefix = recorded.query.prefix ?? "";
      const open = [...multipart.values()].filter(
        (u) => u.state === "open" && u.bucket === bucket && u.key.startsWith(prefix),
      );
      const uploads = open
        .map((u) => `<Upload><Key>${escapeXml(u.key)}</Key><UploadId>${u.uploadId}</UploadId></Upload>`)
        .join("");
      const body = Buffer.from(
        `<?xml version="1.0" encoding="UTF-8"?>\n<ListMultipartUploadsResult><Bucket>${escapeXml(bucket)}</Bucket><Prefix>${escapeXml(prefix)}</Prefix><IsTruncated>false</IsTruncated>${uploads}</ListMultipartUploadsResult>`,
      );
      res.writeHead(200, { "content-type": "application/xml", "content-length": body.length });
      res.end(body);
      return true;
    }
    if (uploadId === undefined) return false;
    const upload = multipart.get(uploadId);
    if (upload && upload.state !== "open") {
      sendError(req, res, 404, "NoSuchUpload", "The specified upload does not exist.", {
        UploadId: uploadId,
      });
      return true;
    }
    if (recorded.method === "DELETE") {
      if (!upload) {
        sendError(req, res, 404, "NoSuchUpload", "The specified upload does not exist.", {
          UploadId: uploadId,
        });
      } else {
        upload.state = "aborted";
        res.writeHead(204);
        res.end();
      }
      return true;
    }
    if (recorded.method === "POST" && upload && !partsMatch(uploadId, body)) {
      sendError(
        req,
        res,
        400,
        "InvalidPart",
        "One or more of the specified parts could not be found. The part may not have been uploaded, or the specified entity tag may not match the part's entity tag.",
        { UploadId: uploadId },
      );
      return true;
    }
    return false;
  }

  /**
   * ListObjectsV2 with a delimiter, as S3 answers it: the keys under the prefix without the
   * delimiter after it, and the common prefixes of the others, in one sorted run of at most
   * max-keys items. Built from s3rver's listing without a delimiter, which is complete.
   */
  async function answerDelimitedListing(res: ServerResponse, recorded: RecordedRequest): Promise<boolean> {
    const { bucket, key } = bucketAndKey(recorded.path);
    const { query } = recorded;
    if (recorded.method !== "GET" || key !== "" || query["list-type"] !== "2" || !query.delimiter) {
      return false;
    }
    const prefix = query.prefix ?? "";
    const delimiter = query.delimiter;
    const items = new Map<string, string>();
    let token = "";
    for (;;) {
      const url = new URL(`${upstream.origin}/${bucket}`);
      url.searchParams.set("list-type", "2");
      url.searchParams.set("prefix", prefix);
      if (token) url.searchParams.set("continuation-token", token);
      const xml = await (await fetch(url)).text();
      for (const contents of xml.match(/<Contents>[\s\S]*?<\/Contents>/g) ?? []) {
        const name = unescapeXml(/<Key>([^<]*)<\/Key>/.exec(contents)?.[1] ?? "");
        const cut = name.indexOf(delimiter, prefix.length);
        if (cut < 0) items.set(name, contents);
        else {
          const common = name.slice(0, cut + delimiter.length);
          items.set(common, `<CommonPrefixes><Prefix>${escapeXml(common)}</Prefix></CommonPrefixes>`);
        }
      }
      token = /<NextContinuationToken>([^<]*)</.exec(xml)?.[1] ?? "";
      if (!xml.includes("<IsTruncated>true</IsTruncated>") || !token) break;
    }
    const after = query["continuation-token"]
      ? Buffer.from(query["continuation-token"], "base64url").toString("utf8")
      : (query["start-after"] ?? "");
    const maxKeys = Math.min(Number(query["max-keys"] ?? 1000), 1000);
    const names = [...items.keys()].filter((n) => n > after).sort();
    const page = names.slice(0, maxKeys);
    const truncated = names.length > page.length;
    const next = truncated
      ? `<NextContinuationToken>${Buffer.from(page.at(-1)!).toString("base64url")}</NextContinuationToken>`
      : "";
    const answer = Buffer.from(
      `<?xml version="1.0" encoding="UTF-8"?>\n<ListBucketResult><Name>${escapeXml(bucket)}</Name><Prefix>${escapeXml(prefix)}</Prefix><Delimiter>${escapeXml(delimiter)}</Delimiter><MaxKeys>${maxKeys}</MaxKeys><KeyCount>${page.length}</KeyCount><IsTruncated>${truncated}</IsTruncated>${next}${page.map((n) => items.get(n)).join("")}</ListBucketResult>`,
    );
    res.writeHead(200, { "content-type": "application/xml", "content-length": answer.length });
    res.end(answer);
    return true;
  }

  function forward(
    req: IncomingMessage,
    res: ServerResponse,
    headers: Record<string, string[]>,
    body: Buffer,
    resetAfter: boolean,
    recorded: RecordedRequest,
    answered?: () => void,
  ): void {
    const out: Record<string, string | string[]> = { host: upstream.host };
    for (const [name, values] of Object.entries(headers)) {
      if (!NOT_FORWARDED.has(name)) out[name] = values;
    }
    if (body.length > 0 || headers["content-length"]) out["content-length"] = String(body.length);
    const auth = headers.authorization?.[0];
    if (auth) out.authorization = auth.replace(/Credential=[^/]*\//, `Credential=${upstreamKey}/`);
    const upstreamReq = httpRequest(
      {
        host: upstream.hostname,
        port: upstream.port,
        method: req.method,
        path: req.url,
        headers: out,
        agent,
      },
      (upstreamRes) => {
        const status = upstreamRes.statusCode ?? 502;
        const tracked = recorded.query.uploadId !== undefined || "uploads" in recorded.query;
        if (resetAfter || tracked || answered) {
          readBody(upstreamRes).then(
            (answer) => {
              track(recorded, status, answer.toString("utf8"));
              const back = rawHeaderRecord(upstreamRes.rawHeaders);
              const etag = partEtag(recorded, status, back.etag?.[0]);
              if (etag) back.etag = [etag];
              if (resetAfter) {
                req.socket.destroy();
                return;
              }
              for (const name of HOP_BY_HOP) delete back[name];
              back["content-length"] = [String(answer.length)];
              res.writeHead(status, back);
              res.end(answer, answered);
            },
            () => res.destroy(),
          );
          return;
        }
        const back = rawHeaderRecord(upstreamRes.rawHeaders);
        for (const name of HOP_BY_HOP) delete back[name];
        res.writeHead(status, back);
        upstreamRes.pipe(res);
      },
    );
    upstreamReq.on("error", (err) => {
      if (!res.headersSent)
        sendError(req, res, 502, "InternalError", `s3-proxy: upstream failed: ${err.message}`);
      else res.destroy();
    });
    upstreamReq.end(body);
  }

  async function apply(
    action: FaultAction,
    req: IncomingMessage,
    res: ServerResponse,
    headers: Record<string, string[]>,
    body: Buffer,
    verdict: ReturnType<typeof verifySigV4>,
    recorded: RecordedRequest,
  ): Promise<void> {
    switch (action.kind) {
      case "stall":
        await sleep(action.ms);
        if (req.socket.destroyed) return;
        return apply(action.then ?? { kind: "pass" }, req, res, headers, body, verdict, recorded);
      case "error":
        sendError(req, res, action.status, action.code, action.message ?? `Injected ${action.code}.`);
        return;
      case "reset":
        if (action.after !== "upstream") {
          req.socket.destroy();
          return;
        }
        break;
      case "pass":
        break;
    }
    if (!verdict.ok) {
      // S3 answers an unsigned request to a private bucket with a plain AccessDenied.
      const code = verdict.code === "MissingAuthenticationToken" ? "AccessDenied" : verdict.code;
      const extra: Record<string, string> = {};
      if (verdict.stringToSign !== undefined) extra.StringToSign = verdict.stringToSign;
      if (verdict.canonicalRequest !== undefined) extra.CanonicalRequest = verdict.canonicalRequest;
      sendError(req, res, httpStatusFor(verdict.code), code, verdict.message, extra);
      return;
    }
    const md5 = headers["content-md5"]?.[0];
    if (md5 !== undefined && md5 !== createHash("md5").update(body).digest("base64")) {
      sendError(req, res, 400, "BadDigest", "The Content-MD5 you specified did not match what we received.");
      return;
    }
    if (answerMultipart(req, res, recorded, body) || (await answerDelimitedListing(res, recorded))) {
      if (action.kind === "reset") req.socket.destroy();
      return;
    }
    forward(
      req,
      res,
      headers,
      body,
      action.kind === "reset",
      recorded,
      action.kind === "pass" ? action.answered : undefined,
    );
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readBody(req);
    const headers = rawHeaderRecord(req.rawHeaders);
    const target = req.url ?? "/";
    const verdict = verifySigV4(
      { method: req.method ?? "GET", url: target, headers, body },
      { service: "s3", secretFor: (id) => secrets.get(id) },
    );
    const q = target.indexOf("?");
    const recorded: RecordedRequest = {
      index: requests.length,
      method: req.method ?? "GET",
      path: q < 0 ? target : target.slice(0, q),
      query: q < 0 ? {} : Object.fromEntries(new URLSearchParams(target.slice(q + 1))),
      headers: Object.fromEntries(
        Object.entries(headers)
          .filter(([name]) => RECORDED.test(name) && name !== "x-amz-security-token")
          .map(([name, values]) => [name, values.join(",")]),
      ),
      bodyLength: body.length,
      bodySha256: sha256Hex(body),
      auth: verdict.ok ? "ok" : verdict.code,
      fault: "pass",
    };
    if (verdict.ok) recorded.accessKeyId = verdict.accessKeyId;
    requests.push(recorded);
    res.on("finish", () => {
      recorded.status = res.statusCode;
    });
    const action = (await faults?.(recorded)) ?? { kind: "pass" };
    recorded.fault = action.kind;
    await apply(action, req, res, headers, body, verdict, recorded);
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      const message = err instanceof Error ? err.message : String(err);
      if (!res.headersSent) sendError(req, res, 500, "InternalError", `s3-proxy: ${message}`);
      else res.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, "127.0.0.1", () => resolve());
  });
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    port,
    requests,
    get multipartUploads() {
      return [...multipart.values()];
    },
    setFaults(hook) {
      faults = hook;
    },
    close() {
      return new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
        agent.destroy();
      });
    },
  };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      upstream: { type: "string" },
      port: { type: "string", default: "0" },
      "access-key": { type: "string" },
      secret: { type: "string" },
    },
    strict: true,
  });
  const { upstream, "access-key": accessKeyId, secret: secretAccessKey } = values;
  if (!upstream || !accessKeyId || !secretAccessKey) {
    console.error("usage: s3-proxy.ts --upstream URL [--port N] --access-key K --secret S");
    process.exit(2);
  }
  const proxy = await startS3Proxy({
    upstream,
    port: Number(values.port),
    credentials: { accessKeyId, secretAccessKey },
  });
  const stop = (): void => {
    proxy.close().then(() => process.exit(0));
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
  console.log(`listening ${proxy.port}`);
}

if (import.meta.main) await main();
