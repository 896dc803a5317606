// Where the event is in a tracking-log line (DESIGN §8), and when it happened. Lines are bytes:
// JSON's structural characters are ASCII and never occur inside a multi-byte UTF-8 sequence, so
// the event's boundaries are found in the raw bytes and the event is copied out unchanged, even
// when it holds bytes that are not valid UTF-8.
import type { LogFormat } from "../config/types.ts";

const OPEN = 0x7b; // {
const CLOSE = 0x7d; // }
const QUOTE = 0x22; // "
const BACKSLASH = 0x5c;
const COLON = 0x3a;
const COMMA = 0x2c;
const OPEN_ARRAY = 0x5b;
const CLOSE_ARRAY = 0x5d;

export type ParsedLine =
  /** the event's bytes, exactly as in the line */
  | { kind: "event"; event: Uint8Array }
  /** no event in this line */
  | { kind: "none" }
  /**
   * A Docker/Kubernetes JSON wrapper: its decoded `log` string. `partial` when that string does
   * not end with a newline: Docker splits messages longer than 16 KiB into several wrappers, and
   * the message goes on in the next line.
   */
  | { kind: "docker"; log: string; partial: boolean }
  /**
   * A CRI record (containerd, Kubernetes nodes): `<time> stdout|stderr F|P <text>`. Its text is
   * a view of the line's bytes; `partial` (tag `P`) when the next record of the same stream
   * continues it.
   */
  | { kind: "cri"; stream: CriStream; partial: boolean; text: Uint8Array };

export type CriStream = "stdout" | "stderr";

const NONE: ParsedLine = { kind: "none" };
const decoder = new TextDecoder("utf-8", { fatal: false, ignoreBOM: true });
const encoder = new TextEncoder();

function isSpace(b: number): boolean {
  return b === 0x20 || b === 0x09 || b === 0x0d || b === 0x0b || b === 0x0c;
}

/** The bytes from the first `{` to the last `}`, or null. */
function braces(line: Uint8Array): Uint8Array | null {
  const first = line.indexOf(OPEN);
  if (first < 0) return null;
  const last = line.lastIndexOf(CLOSE);
  return last > first ? line.subarray(first, last + 1) : null;
}

/** The line without surrounding blanks is one JSON object: the whole line is the event. */
function bareJson(line: Uint8Array): Uint8Array | null {
  let start = 0;
  let end = line.length;
  while (start < end && isSpace(line[start]!)) start++;
  while (end > start && isSpace(line[end - 1]!)) end--;
  if (end - start < 2 || line[start] !== OPEN || line[end - 1] !== CLOSE) return null;
  return line.subarray(start, end);
}

/** Docker's json-file driver writes `{"log":` first; only such lines are tried as wrappers in auto. */
function looksLikeDocker(line: Uint8Array): boolean {
  let i = 0;
  while (i < line.length && isSpace(line[i]!)) i++;
  if (line[i] !== OPEN) return false;
  i++;
  while (i < line.length && isSpace(line[i]!)) i++;
  return (
    line[i] === QUOTE &&
    line[i + 1] === 0x6c &&
    line[i + 2] === 0x6f &&
    line[i + 3] === 0x67 &&
    line[i + 4] === QUOTE
  );
}

function dockerWrapper(line: Uint8Array): ParsedLine | null {
  let value: unknown;
  try {
    value = JSON.parse(decoder.decode(line));
  } catch {
    return null;
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) return null;
  const log = (value as Record<string, unknown>).log;
  if (typeof log !== "string") return null;
  return { kind: "docker", log, partial: !log.endsWith("\n") };
}

const SPACE = 0x20;
const STDOUT = encoder.encode("stdout ");
const STDERR = encoder.encode("stderr ");

/**
 * A CRI record, or null. The time is RFC 3339 (`2024-03-01T10:00:00.123456789Z`, no blank in
 * it); the tag is `F` or `P`, possibly followed by more `:`-separated tags (the CRI spec keeps
 * room for them). The text is everything after the blank that ends the tag, bytes unchanged.
 */
function criRecord(line: Uint8Array): ParsedLine | null {
  // The date first: in auto, every line comes here, and most are not CRI.
  if (line[4] !== 0x2d || line[7] !== 0x2d || line[10] !== 0x54) return null;
  const afterTime = line.indexOf(SPACE, 11);
  // the shortest RFC 3339 time: 2024-03-01T10:00:00Z
  if (afterTime < 20) return null;
  const at = afterTime + 1;
  const stream = equalsAt(line, at, at + STDOUT.length, STDOUT)
    ? "stdout"
    : equalsAt(line, at, at + STDERR.length, STDERR)
      ? "stderr"
      : null;
  if (stream === null) return null;
  const tagAt = at + STDOUT.length;
  const tag = line[tagAt];
  if (tag !== 0x46 && tag !== 0x50) return null; // F, P
  let textAt = tagAt + 1;
  if (line[textAt] === COLON) {
    const blank = line.indexOf(SPACE, textAt);
    if (blank < 0) return null;
    textAt = blank;
  }
  // The text of an empty record may follow without its blank.
  if (textAt < line.length && line[textAt] !== SPACE) return null;
  return {
    kind: "cri",
    stream,
    partial: tag === 0x50,
    text: line.subarray(Math.min(textAt + 1, line.length)),
  };
}

/** One line (without its newline) read as `format`; `auto` decides for this line alone. */
export function parseLine(line: Uint8Array, format: LogFormat): ParsedLine {
  switch (format) {
    case "json": {
      const event = bareJson(line);
      return event ? { kind: "event", event } : NONE;
    }
    case "prefixed": {
      const event = braces(line);
      return event ? { kind: "event", event } : NONE;
    }
    case "docker":
      return dockerWrapper(line) ?? NONE;
    case "cri":
      return criRecord(line) ?? NONE;
    case "auto": {
      // A Docker wrapper that cannot be read (cut short by a daemon stopped mid-line, two run
      // together) has no event to find: its bytes from { to } are not one.
      if (looksLikeDocker(line)) return dockerWrapper(line) ?? NONE;
      const record = criRecord(line);
      if (record) return record;
      // A bare JSON line is also "from the first { to the last }".
      const event = braces(line);
      return event ? { kind: "event", event } : NONE;
    }
  }
}

/**
 * The event inside a (reassembled) Docker message: only messages of the tracking logger count;
 * the event is from the first `{` to the last `}` of the decoded text, encoded as UTF-8.
 */
export function dockerEvent(log: string): Uint8Array | null {
  if (!log.includes("[tracking]")) return null;
  const first = log.indexOf("{");
  const last = log.lastIndexOf("}");
  return first >= 0 && last > first ? encoder.encode(log.slice(first, last + 1)) : null;
}

const TRACKING = encoder.encode("[tracking]");

/**
 * The event inside a (joined) CRI message: as for Docker, only messages holding `[tracking]`
 * count, and the event is from the first `{` to the last `}`, the bytes unchanged.
 */
export function criEvent(text: Uint8Array): Uint8Array | null {
  if (Buffer.from(text.buffer, text.byteOffset, text.byteLength).indexOf(TRACKING) < 0) return null;
  return braces(text);
}

/** The number of `count` ASCII digits at `at`, or -1. */
function digits(b: Uint8Array, at: number, count: number): number {
  let value = 0;
  for (let i = at; i < at + count; i++) {
    const d = (b[i] ?? 0) - 0x30;
    if (d < 0 || d > 9) return -1;
    value = value * 10 + d;
  }
  return value;
}

/**
 * An Open edX time in bytes [start, end) as epoch milliseconds, NaN when it is not one:
 * `YYYY-MM-DD[T ]HH:MM:SS[.fraction][Z|±HH[:]MM|±HH]`, blanks allowed around and before the
 * zone, no zone meaning UTC (the LMS writes UTC). Read from the bytes, without a string or a
 * regular expression: it runs for every event.
 */
function timeFromBytes(b: Uint8Array, start: number, end: number): number {
  while (start < end && isSpace(b[start]!)) start++;
  while (end > start && isSpace(b[end - 1]!)) end--;
  if (end - start < 19) return Number.NaN;
  const sep = b[start + 10];
  if (b[start + 4] !== 0x2d || b[start + 7] !== 0x2d || (sep !== 0x54 && sep !== 0x74 && sep !== 0x20)) {
    return Number.NaN;
  }
  if (b[start + 13] !== COLON || b[start + 16] !== COLON) return Number.NaN;
  const year = digits(b, start, 4);
  const month = digits(b, start + 5, 2);
  const day = digits(b, start + 8, 2);
  const hour = digits(b, start + 11, 2);
  const minute = digits(b, start + 14, 2);
  const second = digits(b, start + 17, 2);
  if (year < 0 || month < 1 || month > 12 || day < 1 || day > 31) return Number.NaN;
  if (hour < 0 || hour > 23 || minute < 0 || minute > 59 || second < 0 || second > 60) return Number.NaN;
  let i = start + 19;
  let millis = 0;
  if (i < end && (b[i] === 0x2e || b[i] === COMMA)) {
    i++;
    const from = i;
    while (i < end && b[i]! >= 0x30 && b[i]! <= 0x39) {
      if (i - from < 3) millis += (b[i]! - 0x30) * 10 ** (2 - (i - from));
      i++;
    }
    if (i === from) return Number.NaN;
  }
  while (i < end && isSpace(b[i]!)) i++;
  let offset = 0;
  if (i < end) {
    const sign = b[i];
    if ((sign === 0x5a || sign === 0x7a) && i + 1 === end) {
      // Z
    } else if (sign === 0x2b || sign === 0x2d) {
      const hours = digits(b, i + 1, 2);
      let at = i + 3;
      if (b[at] === COLON) at++;
      const minutes = at === end ? 0 : digits(b, at, 2);
      if (hours < 0 || minutes < 0 || (at !== end && at + 2 !== end)) return Number.NaN;
      if (at === end && b[at - 1] === COLON) return Number.NaN;
      offset = (hours * 60 + minutes) * 60_000 * (sign === 0x2b ? 1 : -1);
    } else {
      return Number.NaN;
    }
  }
  const midnight = Date.UTC(year, month - 1, day);
  // Date.UTC rolls 2024-02-31 over into March: such a date is not a time.
  if (new Date(midnight).getUTCDate() !== day) return Number.NaN;
  return midnight + ((hour * 60 + minute) * 60 + second) * 1000 + millis - offset;
}

/**
 * An Open edX time ("2024-03-01T10:00:00.123456+00:00", "...Z", or without a zone, which the
 * LMS writes in UTC) as a Date; null when it is not one.
 */
export function parseEventTime(text: string): Date | null {
  const bytes = encoder.encode(text);
  const time = timeFromBytes(bytes, 0, bytes.length);
  return Number.isNaN(time) ? null : new Date(time);
}

const TIME_KEY = encoder.encode("time");
const TIMESTAMP_KEY = encoder.encode("timestamp");

/** Index of the quote closing the string that opens at `start`, or -1. */
export function stringEnd(bytes: Uint8Array, start: number): number {
  let from = start + 1;
  for (;;) {
    const quote = bytes.indexOf(QUOTE, from);
    if (quote < 0) return -1;
    let slashes = 0;
    while (bytes[quote - 1 - slashes] === BACKSLASH) slashes++;
    if (slashes % 2 === 0) return quote;
    from = quote + 1;
  }
}

/** Whether bytes[start, end) are exactly `word`. */
export function equalsAt(bytes: Uint8Array, start: number, end: number, word: Uint8Array): boolean {
  if (end - start !== word.length) return false;
  for (let i = 0; i < word.length; i++) if (bytes[start + i] !== word[i]) return false;
  return true;
}

function skipSpace(bytes: Uint8Array, i: number): number {
  while (i < bytes.length && isSpace(bytes[i]!)) i++;
  return i;
}

/** The time in the JSON string spanning [start, end] (quotes included), or null. */
function timeOf(bytes: Uint8Array, start: number, end: number): Date | null {
  let escaped = false;
  for (let i = start + 1; i < end && !escaped; i++) escaped = bytes[i] === BACKSLASH;
  if (escaped) {
    // Escapes in a time are odd but valid JSON: decode the string first.
    try {
      return parseEventTime(JSON.parse(decoder.decode(bytes.subarray(start, end + 1))) as string);
    } catch {
      return null;
    }
  }
  const time = timeFromBytes(bytes, start + 1, end);
  return Number.isNaN(time) ? null : new Date(time);
}

/**
 * When the event happened: its top-level `time` (the tracking log's field), else `timestamp`
 * (newer events). Null when neither holds a readable time.
 *
 * The top-level keys are found by walking the bytes (strings skipped, nesting counted) rather
 * than by JSON.parse: this runs for every event, and parsing would build a whole object tree
 * only to read one field — garbage that, on a busy host, lets the collector fall behind and
 * the memory grow. It also reads events that are not strict JSON (Python writes NaN).
 */
export function eventTime(event: Uint8Array): Date | null {
  let depth = 0;
  let keyNext = false;
  let timestamp: [number, number] | null = null;
  for (let i = 0; i < event.length; ) {
    const b = event[i]!;
    if (b === QUOTE) {
      const end = stringEnd(event, i);
      if (end < 0) break;
      if (!keyNext) {
        i = end + 1;
        continue;
      }
      keyNext = false;
      const isTime = equalsAt(event, i + 1, end, TIME_KEY);
      const isTimestamp = !isTime && equalsAt(event, i + 1, end, TIMESTAMP_KEY);
      i = end + 1;
      if (!isTime && !isTimestamp) continue;
      i = skipSpace(event, i);
      if (event[i] !== COLON) continue;
      i = skipSpace(event, i + 1);
      if (event[i] !== QUOTE) continue;
      const valueEnd = stringEnd(event, i);
      if (valueEnd < 0) break;
      if (isTime) {
        const time = timeOf(event, i, valueEnd);
        if (time) return time;
      } else {
        timestamp ??= [i, valueEnd];
      }
      i = valueEnd + 1;
      continue;
    }
    if (b === OPEN || b === OPEN_ARRAY) {
      depth++;
      keyNext = b === OPEN && depth === 1;
    } else if (b === CLOSE || b === CLOSE_ARRAY) {
      depth--;
    } else if (b === COMMA) {
      keyNext = depth === 1;
    }
    i++;
  }
  return timestamp ? timeOf(event, timestamp[0], timestamp[1]) : null;
}
