// The one logger: readable on a TTY, one JSON object per line when --json or when stderr is not a
// TTY (cron). Every line passes through redact() so that no configured secret is ever written.
// On a terminal, lines are wrapped to its width (80 columns when unknown) and a live status line
// (progress) stays below them: it is cleared before a line is written and drawn again after.
import { type ConsolaInstance, createConsola, type LogObject } from "consola/core";

export type Level = "debug" | "info" | "warn" | "error";
export const LEVELS: readonly Level[] = ["debug", "info", "warn", "error"];

export type Fields = Record<string, string | number | boolean | null | undefined>;

const CONSOLA_LEVEL: Record<Level, number> = { debug: 4, info: 3, warn: 1, error: 0 };

let secrets: string[] = [];
let jsonMode = !process.stderr.isTTY;
let consola: ConsolaInstance = build("info");

function build(level: Level): ConsolaInstance {
  return createConsola({
    level: CONSOLA_LEVEL[level],
    stdout: process.stderr,
    stderr: process.stderr,
    reporters: [{ log: jsonMode ? writeJson : writeText }],
  });
}

const ICONS: Record<string, string> = {
  debug: "·",
  info: "ℹ",
  success: "✔",
  warn: "⚠",
  error: "✖",
  fail: "✖",
};
const COLOURS: Record<string, string> = { success: "32", warn: "33", error: "31", fail: "31", debug: "90" };

/** Columns of the terminal, 80 when it does not say. */
export function terminalWidth(): number {
  return process.stderr.columns || 80;
}

/** `text` cut into lines of at most `width` columns at spaces, the lines after the first indented. */
export function wrap(text: string, width: number, indent = "  "): string[] {
  const columns = Math.max(width, indent.length + 20);
  const lines: string[] = [];
  for (const paragraph of text.split("\n")) {
    let line = lines.length === 0 ? "" : indent;
    let empty = true;
    for (const word of paragraph.split(" ")) {
      let rest = word;
      for (;;) {
        const joined = empty ? rest : ` ${rest}`;
        if (line.length + joined.length <= columns) {
          line += joined;
          empty = false;
          break;
        }
        if (!empty) {
          lines.push(line);
          line = indent;
          empty = true;
          continue;
        }
        // A word longer than a line (a URL, an S3 key) is cut where the line ends.
        const room = columns - line.length;
        lines.push(line + rest.slice(0, room));
        rest = rest.slice(room);
        line = indent;
      }
    }
    lines.push(line);
  }
  return lines;
}

function writeText(entry: LogObject): void {
  const [message] = entry.args as [string];
  const colour = process.stderr.isTTY && !process.env.NO_COLOR ? COLOURS[entry.type] : undefined;
  const icon = ICONS[entry.type] ?? "ℹ";
  const lines = wrap(`${icon} ${redact(message)}`, terminalWidth());
  const text = colour ? lines.map((l) => `\x1b[${colour}m${l}\x1b[0m`).join("\n") : lines.join("\n");
  clearStatus();
  sink(`${text}\n`);
  drawStatus();
}

/** The live line under the log on a terminal (null: none); never in JSON mode. */
let status: string | null = null;

function clearStatus(): void {
  if (status !== null) process.stderr.write("\r\x1b[2K");
}

function drawStatus(): void {
  if (status !== null) process.stderr.write(status.slice(0, terminalWidth() - 1));
}

/** Show (or with null, remove) the live status line; only on a terminal in text mode. */
export function setStatus(text: string | null): void {
  if (jsonMode || !process.stderr.isTTY) return;
  clearStatus();
  status = text;
  drawStatus();
}

function writeJson(entry: LogObject): void {
  const [message, fields] = entry.args as [string, Fields | undefined];
  const level = entry.type === "success" ? "info" : entry.type === "fail" ? "error" : entry.type;
  const line = JSON.stringify({ time: entry.date.toISOString(), level, message, ...fields });
  sink(`${redact(line)}\n`);
}

const toStderr = (text: string) => {
  process.stderr.write(text);
};
let sink: (text: string) => void = toStderr;

/**
 * Where log lines go: stderr, or the given function (the test runner's preload keeps the lines
 * of code under test out of the test output this way); null restores stderr.
 */
export function setLogSink(write: ((text: string) => void) | null): void {
  sink = write ?? toStderr;
}

export function setupLogging(options: { level?: Level | undefined; json?: boolean | undefined }): void {
  jsonMode = options.json === true || !process.stderr.isTTY;
  consola = build(options.level ?? "info");
}

/** Values that must never be written (passwords, secret keys). */
export function addSecrets(values: readonly string[]): void {
  // Also as a --json line spells them: a password with a quote or a backslash is escaped there.
  const spelled = values.filter((v) => v.length > 0).flatMap((v) => [v, JSON.stringify(v).slice(1, -1)]);
  secrets = [...new Set([...secrets, ...spelled])].sort((a, b) => b.length - a.length);
}

export function redact(text: string): string {
  let out = text;
  for (const secret of secrets) out = out.split(secret).join("***");
  return out;
}

function emit(
  type: "debug" | "info" | "success" | "warn" | "error",
  message: string,
  fields?: Fields,
  text?: string,
): void {
  if (jsonMode) {
    consola[type](redact(message), fields);
    return;
  }
  if (text !== undefined) {
    consola[type](redact(text));
    return;
  }
  const extra = fields
    ? Object.entries(fields)
        .filter(([, v]) => v !== undefined && v !== null)
        .map(([k, v]) => `${k}=${v}`)
        .join(" ")
    : "";
  consola[type](redact(extra ? `${message}  ${extra}` : message));
}

/** `text`, when given, is the line a terminal shows instead of the message and its fields. */
export const log = {
  debug: (message: string, fields?: Fields, text?: string) => emit("debug", message, fields, text),
  info: (message: string, fields?: Fields, text?: string) => emit("info", message, fields, text),
  success: (message: string, fields?: Fields, text?: string) => emit("success", message, fields, text),
  warn: (message: string, fields?: Fields, text?: string) => emit("warn", message, fields, text),
  error: (message: string, fields?: Fields, text?: string) => emit("error", message, fields, text),
};

/**
 * What a long-running job says once per id: a file that stays unreadable, or an upload that
 * keeps failing, must not fill the log every second.
 */
export class SaidOnce {
  private readonly ids = new Set<string>();

  /** True the first time `id` is asked about. */
  first(id: string): boolean {
    if (this.ids.has(id)) return false;
    this.ids.add(id);
    return true;
  }

  warn(id: string, message: string, level: "warn" | "error" = "warn"): void {
    if (this.first(id)) log[level](message);
  }
}
