// Where a configuration value came from (the file or an environment variable), and the message
// that names it: the source, the key path, what was expected and what was found.
import { ConfigError } from "../errors.ts";
import { blankUriPassword, SECRET_KEYS } from "./secrets.ts";

export type Raw = Record<string, unknown>;

/** Where a value was read: for messages. */
export interface Origin {
  file: string;
  /** key path → environment variable that supplied it */
  env: Map<string, string>;
}

export const IDENTIFIER = /^[A-Za-z0-9_]+$/;
export const IDENTIFIER_EXPECTED = "an identifier of letters, digits and underscores ([A-Za-z0-9_]+)";

/** A ConfigError naming the source and key; the value found is shown when given (a secret's only by its type). */
export function configError(origin: Origin, keyPath: string, problem: string, found?: unknown): ConfigError {
  const envName = origin.env.get(keyPath);
  const where = envName ? `environment variable ${envName} (${keyPath})` : `${origin.file}: ${keyPath}`;
  const shown = SECRET_KEYS.has(keyPath) ? describeSecret(found) : describe(found);
  const got = found === undefined ? "" : `, got ${shown}`;
  return new ConfigError(`${where}: ${problem}${got}`);
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
