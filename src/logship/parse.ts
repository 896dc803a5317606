// Where the event is in a tracking-log line (DESIGN §8), and when it happened. Lines are bytes:
// JSON's structural characters are ASCII and never occur inside a multi-byte UTF-8 sequence, so
// the event's boundaries are found in the raw bytes and the event is copied out unchanged, even
// when it holds bytes that are not valid UTF-8.
import type { LogFormat } from "../config/types.ts";

const OPEN = 0x7b; // {
const CLOSE = 0x7d; // }
const QUOTE = 0x22; // "

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
  | { kind: "docker"; log: string; partial: boolean };

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
    case "auto": {
      if (looksLikeDocker(line)) {
        const wrapper = dockerWrapper(line);
        if (wrapper) return wrapper;
      }
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

const TIME =
  /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:[.,](\d+))?\s*(?:(Z)|([+-])(\d{2}):?(\d{2})?)?$/i;

/**
 * An Open edX time ("2024-03-01T10:00:00.123456+00:00", "...Z", or without a zone, which the
 * LMS writes in UTC) as a Date; null when it is not one.
 */
export function parseEventTime(text: string): Date | null {
  const m = TIME.exec(text.trim());
  if (!m) return null;
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 60) return null;
  const millis = m[7] ? Number(m[7].slice(0, 3).padEnd(3, "0")) : 0;
  let time = Date.UTC(year, month - 1, day, hour, minute, second, millis);
  if (m[9]) {
    const offset = (Number(m[10]) * 60 + Number(m[11] ?? 0)) * 60_000;
    time -= m[9] === "+" ? offset : -offset;
  }
  const date = new Date(time);
  // Date.UTC rolls 2024-02-31 over into March: such a date is not a time.
  if (new Date(Date.UTC(year, month - 1, day)).getUTCDate() !== day) return null;
  return Number.isNaN(date.getTime()) ? null : date;
}

const TIME_FIELD = /"time"\s*:\s*"([^"]*)"/;

/**
 * When the event happened: its top-level `time` (the tracking log's field), else `timestamp`
 * (newer events). An event that is not strict JSON (Python writes NaN) still has its first
 * `"time": "..."` read. Null when no readable time is found.
 */
export function eventTime(event: Uint8Array): Date | null {
  const text = decoder.decode(event);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    const m = TIME_FIELD.exec(text);
    return m?.[1] ? parseEventTime(m[1]) : null;
  }
  if (typeof value !== "object" || value === null) return null;
  const record = value as Record<string, unknown>;
  for (const field of ["time", "timestamp"]) {
    const candidate = record[field];
    if (typeof candidate === "string") {
      const time = parseEventTime(candidate);
      if (time) return time;
    }
  }
  return null;
}
