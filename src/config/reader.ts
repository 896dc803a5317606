// A typed view over one TOML table that records where each value came from (the file or an
// environment variable), so every error names the source, the key path and what was expected.
import { ConfigError } from "../errors.ts";
import { blankUriPassword, SECRET_KEYS } from "./secrets.ts";
import { CRON_EXPECTED, cronProblem, parseDuration, parseSize } from "./units.ts";

export type Raw = Record<string, unknown>;

/** Where a value was read: for messages. */
export interface Origin {
  file: string;
  /** key path → environment variable that supplied it */
  env: Map<string, string>;
}

export const IDENTIFIER = /^[A-Za-z0-9_]+$/;
export const IDENTIFIER_EXPECTED = "an identifier of letters, digits and underscores ([A-Za-z0-9_]+)";

export class Section {
  constructor(
    readonly origin: Origin,
    readonly path: string,
    readonly raw: Raw,
    known: readonly string[],
  ) {
    for (const key of Object.keys(raw)) {
      if (known.includes(key)) continue;
      const suggestion = closest(key, known);
      throw this.error(key, `unknown key${suggestion ? ` (did you mean "${suggestion}"?)` : ""}`);
    }
  }

  keyPath(key: string): string {
    return this.path ? `${this.path}.${key}` : key;
  }

  has(key: string): boolean {
    return this.raw[key] !== undefined;
  }

  /** A ConfigError naming the source and key; `expected` may be empty when the problem says it all. */
  error(key: string, problem: string, found?: unknown): ConfigError {
    const keyPath = this.keyPath(key);
    const envName = this.origin.env.get(keyPath);
    const where = envName
      ? `environment variable ${envName} (${keyPath})`
      : `${this.origin.file}: ${keyPath}`;
    const shown = SECRET_KEYS.has(keyPath) ? describeSecret(found) : describe(found);
    const got = found === undefined ? "" : `, got ${shown}`;
    return new ConfigError(`${where}: ${problem}${got}`);
  }

  string(key: string, fallback: string): string {
    const value = this.raw[key];
    if (value === undefined) return fallback;
    if (typeof value !== "string") throw this.error(key, "expected a string", value);
    return value;
  }

  /** A string that must match `pattern` unless empty (and empty is allowed). */
  matching(key: string, fallback: string, pattern: RegExp, expected: string, allowEmpty = true): string {
    const value = this.string(key, fallback);
    if (value === "" && allowEmpty) return value;
    if (!pattern.test(value)) throw this.error(key, `expected ${expected}`, value);
    return value;
  }

  identifier(key: string, fallback: string): string {
    return this.matching(key, fallback, IDENTIFIER, IDENTIFIER_EXPECTED, false);
  }

  integer(key: string, fallback: number, min: number, max: number): number {
    let value = this.raw[key];
    if (value === undefined) return fallback;
    if (typeof value === "string" && this.origin.env.has(this.keyPath(key)) && /^-?\d+$/.test(value.trim())) {
      value = Number(value.trim());
    }
    if (typeof value === "bigint") value = Number(value);
    if (typeof value !== "number" || !Number.isInteger(value))
      throw this.error(key, "expected an integer", value);
    if (value < min || value > max) throw this.error(key, `expected an integer from ${min} to ${max}`, value);
    return value;
  }

  boolean(key: string, fallback: boolean): boolean {
    const value = this.raw[key];
    if (value === undefined) return fallback;
    if (typeof value === "boolean") return value;
    // Environment variables carry text; Tutor renders YAML booleans as True/False.
    if (typeof value === "string" && this.origin.env.has(this.keyPath(key))) {
      const text = value.trim().toLowerCase();
      if (["true", "1", "yes", "on"].includes(text)) return true;
      if (["false", "0", "no", "off", ""].includes(text)) return false;
    }
    throw this.error(key, "expected true or false", value);
  }

  choice<T extends string>(key: string, options: readonly T[], fallback: T, caseInsensitive = false): T {
    const value = this.string(key, fallback);
    const found = options.find((o) =>
      caseInsensitive ? o.toLowerCase() === value.toLowerCase() : o === value,
    );
    if (found === undefined) {
      const suggestion = closest(value, options);
      throw this.error(
        key,
        `expected one of ${options.map((o) => `"${o}"`).join(", ")}${suggestion ? ` (did you mean "${suggestion}"?)` : ""}`,
        value,
      );
    }
    return found;
  }

  strings(key: string, fallback: string[]): string[] {
    const value = this.raw[key];
    if (value === undefined) return fallback;
    if (!Array.isArray(value) || value.some((v) => typeof v !== "string")) {
      throw this.error(key, "expected an array of strings", value);
    }
    return value as string[];
  }

  identifiers(key: string): string[] {
    const values = this.strings(key, []);
    for (const value of values) {
      if (!IDENTIFIER.test(value)) throw this.error(key, `expected ${IDENTIFIER_EXPECTED}`, value);
    }
    return values;
  }

  /** seconds */
  duration(key: string, fallback: string): number {
    const value = this.raw[key] ?? fallback;
    if (typeof value === "number" && Number.isInteger(value) && value > 0) return value;
    if (typeof value !== "string") throw this.error(key, "expected a duration string", value);
    const parsed = parseDuration(value);
    if (typeof parsed === "string") throw this.error(key, `expected ${parsed}`, value);
    if (parsed <= 0) throw this.error(key, "expected a duration greater than zero", value);
    return parsed;
  }

  /** seconds, where "0" (or 0) means never */
  durationOrNever(key: string, fallback: string): number {
    const value = this.raw[key] ?? fallback;
    const never = '"0" for never';
    if (typeof value === "number" && Number.isInteger(value) && value >= 0) return value;
    if (typeof value !== "string") throw this.error(key, `expected a duration string, or ${never}`, value);
    const parsed = parseDuration(value);
    if (typeof parsed === "string") throw this.error(key, `expected ${parsed}, or ${never}`, value);
    return parsed;
  }

  /** bytes */
  size(key: string, fallback: string): number {
    const value = this.raw[key] ?? fallback;
    if (typeof value === "number" && Number.isInteger(value) && value > 0) return value;
    if (typeof value !== "string") throw this.error(key, "expected a size", value);
    const parsed = parseSize(value);
    if (typeof parsed === "string") throw this.error(key, `expected ${parsed}`, value);
    return parsed;
  }

  cron(key: string, fallback: string): string {
    const value = this.raw[key] ?? fallback;
    if (typeof value !== "string") throw this.error(key, `expected ${CRON_EXPECTED}`, value);
    const problem = cronProblem(value);
    if (problem) throw this.error(key, `expected ${problem}`, value);
    return value.trim();
  }

  /** A cron schedule, or "" for none. */
  cronOrNone(key: string, fallback: string): string {
    const value = this.raw[key] ?? fallback;
    if (typeof value !== "string") throw this.error(key, `expected ${CRON_EXPECTED}, or "" for none`, value);
    if (value.trim() === "") return "";
    const problem = cronProblem(value);
    if (problem) throw this.error(key, `expected ${problem}, or "" for none`, value);
    return value.trim();
  }

  /** A sub-table, or an empty one when absent. */
  section(key: string, known: readonly string[]): Section {
    const value = this.raw[key];
    if (value === undefined) return new Section(this.origin, this.keyPath(key), {}, known);
    if (!isTable(value)) throw this.error(key, "expected a table", value);
    return new Section(this.origin, this.keyPath(key), value, known);
  }

  /** An array of tables ([[key]]). */
  sections(key: string, known: readonly string[]): Section[] {
    const value = this.raw[key];
    if (value === undefined) return [];
    if (!Array.isArray(value)) throw this.error(key, "expected an array of tables ([[tables]])", value);
    return value.map((item, i) => {
      const path = `${this.keyPath(key)}[${i}]`;
      if (!isTable(item)) throw new Section(this.origin, path, {}, known).error("", "expected a table", item);
      return new Section(this.origin, path, item, known);
    });
  }
}

export function isTable(value: unknown): value is Raw {
  return typeof value === "object" && value !== null && !Array.isArray(value) && !(value instanceof Date);
}

function describe(value: unknown): string {
  if (typeof value === "string") return JSON.stringify(value);
  if (Array.isArray(value)) return "an array";
  if (value instanceof Date) return "a date";
  if (isTable(value)) return "a table";
  return String(value);
}

/** A secret's value for a message: its type, or a URI with its password blanked (DESIGN §3). */
function describeSecret(value: unknown): string {
  if (typeof value === "string") {
    return value.includes("://") ? JSON.stringify(blankUriPassword(value)) : "a string";
  }
  if (typeof value === "number" || typeof value === "bigint") return "a number";
  if (typeof value === "boolean") return "a boolean";
  return describe(value);
}

/** The known word nearest to `word` by edit distance, if it is near enough to be a likely typo. */
export function closest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Number.POSITIVE_INFINITY;
  for (const candidate of candidates) {
    const distance = editDistance(word.toLowerCase(), candidate.toLowerCase());
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return bestDistance <= Math.max(2, Math.floor(word.length / 3)) ? best : undefined;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      current[j] = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + cost);
    }
    previous = current;
  }
  return previous[b.length]!;
}
