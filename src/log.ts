// The one logger: readable on a TTY, one JSON object per line when --json or when stderr is not a
// TTY (cron). Every line passes through redact() so that no configured secret is ever written.
import { type ConsolaInstance, createConsola, type LogObject } from "consola";

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
    ...(jsonMode ? { reporters: [{ log: writeJson }] } : { fancy: true }),
  });
}

function writeJson(entry: LogObject): void {
  const [message, fields] = entry.args as [string, Fields | undefined];
  const level = entry.type === "success" ? "info" : entry.type === "fail" ? "error" : entry.type;
  const line = JSON.stringify({ time: entry.date.toISOString(), level, message, ...fields });
  process.stderr.write(`${redact(line)}\n`);
}

export function setupLogging(options: { level?: Level | undefined; json?: boolean | undefined }): void {
  jsonMode = options.json === true || !process.stderr.isTTY;
  consola = build(options.level ?? "info");
}

export function isJsonLogging(): boolean {
  return jsonMode;
}

/** Values that must never be written (passwords, secret keys). */
export function addSecrets(values: readonly string[]): void {
  secrets = [...new Set([...secrets, ...values.filter((v) => v.length > 0)])].sort(
    (a, b) => b.length - a.length,
  );
}

export function redact(text: string): string {
  let out = text;
  for (const secret of secrets) out = out.split(secret).join("***");
  return out;
}

function emit(type: "debug" | "info" | "success" | "warn" | "error", message: string, fields?: Fields): void {
  if (jsonMode) {
    consola[type](redact(message), fields);
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

export const log = {
  debug: (message: string, fields?: Fields) => emit("debug", message, fields),
  info: (message: string, fields?: Fields) => emit("info", message, fields),
  success: (message: string, fields?: Fields) => emit("success", message, fields),
  warn: (message: string, fields?: Fields) => emit("warn", message, fields),
  error: (message: string, fields?: Fields) => emit("error", message, fields),
};
