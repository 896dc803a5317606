// Where a row goes (DESIGN §4, §8): object keys of the datalake, identical to the ones upstream
// wrote (panorama-elt joins `<base_prefix>/<table>/<k>=<quote(v)>/.../<table>.csv` with
// urllib.parse.quote; the Tutor plugin's Fluent Bit writes the tracking-log keys), so a host
// switching from the old tools overwrites the same objects instead of adding twins.

export type Compression = "none" | "gzip";

// Python's urllib.parse.quote(v) with its default safe="/": ASCII letters, digits, `_.-~` and `/`.
const ALL_SAFE = /^[A-Za-z0-9_.\-~/]*$/;
const HEX = "0123456789ABCDEF";
const utf8 = new TextEncoder();

function isSafeByte(b: number): boolean {
  return (
    (b >= 0x61 && b <= 0x7a) || // a-z
    (b >= 0x41 && b <= 0x5a) || // A-Z
    (b >= 0x30 && b <= 0x39) || // 0-9
    b === 0x5f || // _
    b === 0x2e || // .
    b === 0x2d || // -
    b === 0x7e || // ~
    b === 0x2f // /
  );
}

/**
 * Percent-encoding exactly like Python 3's `urllib.parse.quote(value)`: the UTF-8 bytes of
 * everything but ASCII letters, digits, `_.-~` and `/` become `%XX` (uppercase hex).
 * encodeURIComponent differs (it keeps `!'()*` and encodes `/`), hence the byte loop. A lone
 * UTF-16 surrogate, where Python raises UnicodeEncodeError, is encoded as U+FFFD (`%EF%BF%BD`):
 * a key must still be produced for whatever text the source holds.
 */
export function quote(value: string): string {
  if (ALL_SAFE.test(value)) return value;
  let out = "";
  for (const b of utf8.encode(value)) {
    out += isSafeByte(b) ? String.fromCharCode(b) : `%${HEX[b >> 4]}${HEX[b & 15]}`;
  }
  return out;
}

/**
 * `k1=v1/k2=v2/...` with each value quoted. Keys are validated identifiers and written as they
 * are, as upstream did.
 */
export function partitionPath(pairs: ReadonlyArray<readonly [string, string]>): string {
  return pairs.map(([k, v]) => `${k}=${quoteValue(v)}`).join("/");
}

/**
 * A partition value as it goes into a key. quote() keeps "/", so an old-style course id
 * (`Org/Course/Run`) spans directories as upstream wrote it. A value with a piece between slashes
 * that is empty, "." or ".." has its slashes encoded as well: as path segments those pieces are
 * collapsed or resolved (by the file system under a local datalake, by URL parsing before S3), so
 * the object would land under another key, or outside the datalake.
 */
function quoteValue(value: string): string {
  const quoted = quote(value);
  const pieces = quoted.split("/").slice(1);
  return pieces.some((p) => p === "" || p === "." || p === "..") ? quoted.replaceAll("/", "%2F") : quoted;
}

// Upstream leaves the base prefix out of the key when it is empty rather than writing `/<table>`.
function join(parts: ReadonlyArray<string>): string {
  return parts.filter((p) => p !== "").join("/");
}

/**
 * The object of one (table, partition):
 * `<base_prefix>/<table>/<k>=<v>/.../<table>.csv[.gz]`. `partitions` are the base partitions
 * then the table's field partitions, in that order.
 */
export function objectKey(opts: {
  basePrefix: string;
  table: string;
  partitions: ReadonlyArray<readonly [string, string]>;
  compression: Compression;
}): string {
  const file = `${opts.table}.csv${opts.compression === "gzip" ? ".gz" : ""}`;
  return join([opts.basePrefix, opts.table, partitionPath(opts.partitions), file]);
}

/** The prefix under which all of a table's objects live: the catalog table's location. */
export function tableLocationPrefix(basePrefix: string, table: string): string {
  return `${join([basePrefix, table])}/`;
}

/**
 * The key of the other compression variant of the same partition (`x.csv` ↔ `x.csv.gz`): writing
 * one variant deletes the other, or Athena would count the rows twice.
 */
export function otherVariantKey(key: string): string {
  if (key.endsWith(".csv.gz")) return key.slice(0, -3);
  if (key.endsWith(".csv")) return `${key}.gz`;
  throw new Error(`not a datalake CSV object key: ${key}`);
}

function pad2(n: number): string {
  return n < 10 ? `0${n}` : String(n);
}

/**
 * The object of one batch of tracking-log lines, as the Tutor plugin's Fluent Bit `s3_key_format`
 * builds it (`%Y%m%d-%H%M%S` in UTC, `lms_host` unquoted):
 * - logs bucket = data bucket: `<base_prefix>/tracking_logs/lms=<lms_host>/year=YYYY/month=MM/day=DD/tracking.log-YYYYMMDD-HHMMSS-<id>.gz`
 * - separate logs bucket: `tracking_logs/<lms_host>/year=YYYY/month=MM/day=DD/tracking.log-YYYYMMDD-HHMMSS-<id>.gz`
 * `id` replaces Fluent Bit's random `$UUID` with something stable, so a retried upload overwrites.
 */
export function trackingLogKey(opts: {
  sameBucket: boolean;
  basePrefix: string;
  lmsHost: string;
  time: Date;
  id: string;
}): string {
  const t = opts.time;
  const year = String(t.getUTCFullYear()).padStart(4, "0");
  const month = pad2(t.getUTCMonth() + 1);
  const day = pad2(t.getUTCDate());
  const hms = `${pad2(t.getUTCHours())}${pad2(t.getUTCMinutes())}${pad2(t.getUTCSeconds())}`;
  const file = `tracking.log-${year}${month}${day}-${hms}-${opts.id}.gz`;
  const dateParts = `year=${year}/month=${month}/day=${day}`;
  return opts.sameBucket
    ? join([opts.basePrefix, "tracking_logs", `lms=${opts.lmsHost}`, dateParts, file])
    : join(["tracking_logs", opts.lmsHost, dateParts, file]);
}
