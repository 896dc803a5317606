// Read a Tutor config.yml with Bun's YAML parser. Tutor writes it with PyYAML: one flat mapping of
// KEY: value with the keys at the start of the line, and a few lists (PLUGINS). Only top-level
// scalars are read, typed as PyYAML types them; lists, maps and block values are named as skipped
// so that the caller can say so. Errors give the file and line but never quote the text: it may
// hold a password.
import { ENV_CREDENTIALS, ENV_OVERRIDES } from "../config/load.ts";
import { splitUri } from "../config/secrets.ts";
import { ConfigError, messageOf } from "../errors.ts";
import { TUTOR_CONTAINER_HOSTS } from "./tutor-hosts.ts";

export type TutorScalar = string | number | boolean | null;

export interface TutorValue {
  value: TutorScalar;
  /** 1-based line of the key */
  line: number;
}

export interface TutorConfig {
  file: string;
  values: Map<string, TutorValue>;
  /** keys whose value is a list, a map or a block scalar, with what it is: not read */
  skipped: Map<string, { line: number; what: string }>;
}

/** A top-level key (at the start of its line) and the text after its colon. */
const KEY_LINE = /^([A-Za-z_][A-Za-z0-9_.-]*)[ \t]*:(?:[ \t]+(.*))?$/;
const DOCUMENT_MARKER = /^(---|\.\.\.)(\s|$)/;
const SYNTAX_HINT =
  "config.yml is YAML as Tutor writes it: a value holding ': ' or ' #' is quoted, and a quote inside '...' is written ''";

/** The settings of a Tutor config.yml; errors name the file and the line. */
export function parseTutorConfig(text: string, file: string): TutorConfig {
  const lines = text.replace(/^\uFEFF/, "").split(/\r?\n/);
  const parsed = parseYaml(text);
  if (!("document" in parsed) || !isMappingOrEmpty(parsed.document)) throw whereItBreaks(lines, file);
  const keys = keyLines(lines, file);
  const values = new Map<string, TutorValue>();
  const skipped = new Map<string, { line: number; what: string }>();
  for (const [key, value] of Object.entries(parsed.document ?? {})) {
    const found = keys.get(key);
    if (found === undefined) {
      throw new ConfigError(`${file}: the key ${key} is not at the start of a line, as KEY: value`);
    }
    const { line, after } = found;
    if (Array.isArray(value)) skipped.set(key, { line, what: "a list" });
    else if (value !== null && typeof value === "object") skipped.set(key, { line, what: "a map" });
    else if (/^[|>]/.test(after)) skipped.set(key, { line, what: "a block scalar" });
    else values.set(key, { value: asPyYaml(value as TutorScalar, after), line });
  }
  return { file, values, skipped };
}

/** Read and parse a Tutor config.yml; a missing or unreadable file is a ConfigError. */
export async function readTutorConfig(file: string): Promise<TutorConfig> {
  let text: string;
  try {
    text = await Bun.file(file).text();
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const reason = code === "ENOENT" ? "no such file" : (code ?? (error as Error).message);
    throw new ConfigError(
      `${file}: cannot read the Tutor configuration (${reason})`,
      "it is config.yml in the Tutor root: `tutor config printroot` prints that directory",
    );
  }
  return parseTutorConfig(text, file);
}

function parseYaml(text: string): { document: unknown } | { reason: string } {
  try {
    return { document: Bun.YAML.parse(text) };
  } catch (error) {
    // Bun says what broke in a short phrase ("Unexpected token"), never where; anything longer is
    // dropped rather than risk quoting the text.
    const reason = messageOf(error).replace(/^YAML Parse error: /, "");
    if (!/^[A-Za-z ]{1,60}$/.test(reason)) return { reason: "a syntax error" };
    return { reason: reason[0]!.toLowerCase() + reason.slice(1) };
  }
}

/** One mapping, or nothing at all (an empty file, only comments). */
function isMappingOrEmpty(document: unknown): document is Record<string, unknown> | null {
  return document === null || (typeof document === "object" && !Array.isArray(document));
}

/**
 * Bun does not say on which line YAML breaks: parse the text one top-level entry (a line at
 * column 0 that is not a comment or a list item) longer at a time, and name the first entry at
 * which it stops being one mapping.
 */
function whereItBreaks(lines: string[], file: string): ConfigError {
  const starts = lines.flatMap((line, i) => (line !== "" && !/^([\s#%]|-(\s|$))/.test(line) ? [i] : []));
  for (const [k, start] of starts.entries()) {
    const prefix = parseYaml(lines.slice(0, starts[k + 1] ?? lines.length).join("\n"));
    if ("document" in prefix && isMappingOrEmpty(prefix.document)) continue;
    // A second document makes the whole a list of documents.
    const marker = lines.slice(0, start + 1).findLastIndex((line) => DOCUMENT_MARKER.test(line));
    if ("document" in prefix && Array.isArray(prefix.document) && marker >= 0) {
      return new ConfigError(`${file}:${marker + 1}: a second YAML document: Tutor's config.yml holds one`);
    }
    const key = KEY_LINE.exec(lines[start]!)?.[1];
    if ("reason" in prefix && key !== undefined) {
      return new ConfigError(
        `${file}:${start + 1}: the value of ${key} is not valid YAML (${prefix.reason})`,
        SYNTAX_HINT,
      );
    }
    return new ConfigError(
      `${file}:${start + 1}: expected KEY: value (a name at the start of the line, a colon, a space)`,
    );
  }
  return new ConfigError(
    `${file}: expected KEY: value lines (a name at the start of each line, a colon, a space)`,
  );
}

/** The line of each top-level key and the text after its colon; a key set twice is an error. */
function keyLines(lines: string[], file: string): Map<string, { line: number; after: string }> {
  const found = new Map<string, { line: number; after: string }>();
  for (const [i, line] of lines.entries()) {
    const match = KEY_LINE.exec(line);
    if (!match) continue;
    const key = match[1]!;
    const first = found.get(key);
    // Bun keeps the last value silently; PyYAML too, but a key set twice is a mistake to fix.
    if (first) throw new ConfigError(`${file}:${i + 1}: ${key} is set twice (first on line ${first.line})`);
    found.set(key, { line: i + 1, after: match[2] ?? "" });
  }
  return found;
}

/**
 * Bun types plain scalars by YAML 1.2, PyYAML (which wrote the file) by YAML 1.1: there `off` is
 * false, `017` is 15 and `1_000` is 1000, while `0o17`, `1e3` and `09` are text (a password
 * PyYAML wrote unquoted must stay text). So a plain scalar is typed again from its text, as PyYAML
 * types it; a quoted one (or one behind an anchor, alias or tag) is kept as Bun read it.
 */
function asPyYaml(value: TutorScalar, after: string): TutorScalar {
  if (after === "" || /^['"#&*!]/.test(after)) return value;
  // Bun's string is the plain text (folded over lines); a number, boolean or null is one token.
  return resolvePlain(typeof value === "string" ? value : stripComment(after));
}

function stripComment(text: string): string {
  const at = text.search(/\s#/);
  return (at < 0 ? text : text.slice(0, at)).trim();
}

/** A plain scalar typed as PyYAML (YAML 1.1) types it: null, booleans, integers, floats, else text. */
function resolvePlain(text: string): TutorScalar {
  if (/^(|~|null|Null|NULL)$/.test(text)) return null;
  if (/^(true|True|TRUE|yes|Yes|YES|on|On|ON)$/.test(text)) return true;
  if (/^(false|False|FALSE|no|No|NO|off|Off|OFF)$/.test(text)) return false;
  const sign = text.startsWith("-") ? -1 : 1;
  const body = text.replace(/^[-+]/, "").replaceAll("_", "");
  if (/^[-+]?(0|[1-9][0-9_]*)$/.test(text)) return sign * Number(body);
  if (/^[-+]?0b[01_]+$/.test(text)) return sign * Number.parseInt(body.slice(2), 2);
  if (/^[-+]?0x[0-9a-fA-F_]+$/.test(text)) return sign * Number.parseInt(body.slice(2), 16);
  if (/^[-+]?0[0-7_]+$/.test(text)) return sign * Number.parseInt(body.slice(1), 8);
  if (/^[-+]?([0-9][0-9_]*)?\.[0-9_]*([eE][-+][0-9]+)?$/.test(text) && /\d/.test(text)) {
    return sign * Number(body);
  }
  if (/^[-+]?\.(inf|Inf|INF)$/.test(text)) return sign * Number.POSITIVE_INFINITY;
  if (/^\.(nan|NaN|NAN)$/.test(text)) return Number.NaN;
  return text;
}

/** Tutor settings → config key paths: Tutor's own names, then the plugin's (PANORAMA_*). */
export const TUTOR_KEYS: readonly (readonly [string, string])[] = [
  ["LMS_HOST", "lms_host"],
  ["MYSQL_HOST", "mysql.host"],
  ["MYSQL_PORT", "mysql.port"],
  ["OPENEDX_MYSQL_USERNAME", "mysql.user"],
  ["OPENEDX_MYSQL_PASSWORD", "mysql.password"],
  ["OPENEDX_MYSQL_DATABASE", "mysql.database"],
  ["MONGODB_HOST", "mongodb.host"],
  ["MONGODB_PORT", "mongodb.port"],
  ["MONGODB_USERNAME", "mongodb.user"],
  ["MONGODB_PASSWORD", "mongodb.password"],
  ["MONGODB_DATABASE", "mongodb.database"],
  ["MONGODB_AUTH_SOURCE", "mongodb.auth_source"],
  ["MONGODB_USE_SSL", "mongodb.tls"],
  // The plugin's account id only feeds its QuickSight ARN; here it is the one of the IAM policy.
  ["PANORAMA_AWS_ACCOUNT_ID", "datalake.account_id"],
  ...ENV_OVERRIDES.filter(([name]) => name !== "LMS_HOST"),
  ...ENV_CREDENTIALS,
];

/**
 * What Tutor uses when config.yml does not set a key: Tutor's defaults
 * (tutor/templates/config/defaults.yml) and, for the AWS keys, the plugin's
 * (tutorpanorama/plugin.py), which differ from panorama's own defaults.
 */
const TUTOR_DEFAULTS: Record<string, TutorScalar> = {
  MYSQL_HOST: TUTOR_CONTAINER_HOSTS.mysql,
  MYSQL_PORT: 3306,
  OPENEDX_MYSQL_USERNAME: "openedx",
  OPENEDX_MYSQL_DATABASE: "openedx",
  MONGODB_HOST: TUTOR_CONTAINER_HOSTS.mongodb,
  MONGODB_PORT: 27017,
  MONGODB_DATABASE: "openedx",
  MONGODB_AUTH_SOURCE: "admin",
  MONGODB_USE_SSL: false,
  OPENEDX_AWS_ACCESS_KEY: "",
  OPENEDX_AWS_SECRET_ACCESS_KEY: "",
  PANORAMA_AWS_ACCESS_KEY: "{{ OPENEDX_AWS_ACCESS_KEY }}",
  PANORAMA_AWS_SECRET_ACCESS_KEY: "{{ OPENEDX_AWS_SECRET_ACCESS_KEY }}",
};

export interface TutorSetting {
  keyPath: string;
  tutorKey: string;
  value: Exclude<TutorScalar, null>;
  /** 1-based line in config.yml, or null for a Tutor default */
  line: number | null;
  /** where the value comes from, for a person: "line 12", "Tutor's default" */
  source: string;
}

export interface TutorReading {
  file: string;
  /** set values, in TUTOR_KEYS order; null and empty values count as not set */
  settings: TutorSetting[];
  /** PANORAMA_* keys that no config key matches, with "(a list)" etc. when not a single value */
  unused: string[];
  /** mapped keys whose value could not be used, with why */
  unusable: { tutorKey: string; keyPath: string; line: number; reason: string }[];
  /** other keys that are lists, maps or block values: not read */
  skipped: string[];
}

/** The config values that a Tutor config.yml gives, and what in it panorama does not use. */
export function fromTutor(config: TutorConfig): TutorReading {
  const mapped = new Set(TUTOR_KEYS.map(([name]) => name));
  const settings: TutorSetting[] = [];
  const unusable: TutorReading["unusable"] = [];
  for (const [tutorKey, keyPath] of TUTOR_KEYS) {
    const nested = config.skipped.get(tutorKey);
    if (nested) {
      unusable.push({ tutorKey, keyPath, line: nested.line, reason: `${nested.what}, not a single value` });
      continue;
    }
    const found = config.values.get(tutorKey);
    const raw = found ? found.value : TUTOR_DEFAULTS[tutorKey];
    if (raw === undefined || raw === null) continue;
    const resolved = typeof raw === "string" ? expand(raw, config, 0) : { value: raw };
    if ("problem" in resolved) {
      unusable.push({ tutorKey, keyPath, line: found?.line ?? 0, reason: resolved.problem });
      continue;
    }
    if (resolved.value === "") continue;
    const source = found
      ? `line ${found.line}`
      : typeof raw === "string" && raw.includes("{{")
        ? `the plugin's default, ${raw}`
        : "Tutor's default";
    settings.push({ keyPath, tutorKey, value: resolved.value, line: found ? found.line : null, source });
  }
  const describe = (key: string) => {
    const nested = config.skipped.get(key);
    return nested ? `${key} (${nested.what})` : key;
  };
  const keys = [...config.values.keys(), ...config.skipped.keys()];
  return {
    file: config.file,
    settings: mongodbHostAsUri(settings),
    unused: keys.filter((k) => k.startsWith("PANORAMA_") && !mapped.has(k)).map(describe),
    unusable,
    skipped: [...config.skipped.keys()].filter((k) => !k.startsWith("PANORAMA_") && !mapped.has(k)),
  };
}

/**
 * Tutor hands MONGODB_HOST to pymongo as its host, which takes a connection string too (MongoDB
 * Atlas: `mongodb+srv://...`): such a value is `[mongodb] uri`, with MONGODB_USERNAME put in it
 * when it names no user (the password stays `[mongodb] password`); port and user are the URI's.
 */
function mongodbHostAsUri(settings: TutorSetting[]): TutorSetting[] {
  const host = settings.find((s) => s.keyPath === "mongodb.host");
  if (typeof host?.value !== "string" || !/^mongodb(\+srv)?:\/\//.test(host.value)) return settings;
  const user = settings.find((s) => s.keyPath === "mongodb.user");
  const parts = splitUri(host.value);
  const uri =
    parts.user || !user ? host.value : `${parts.head}${encodeURIComponent(String(user.value))}@${parts.rest}`;
  return settings
    .filter((s) => s.keyPath !== "mongodb.port" && s !== user)
    .map((s) => (s === host ? { ...host, keyPath: "mongodb.uri", value: uri } : s));
}

/**
 * A value with its `{{ NAME }}` references replaced, as Tutor renders it (config.yml may hold the
 * plugin's defaults, e.g. "{{ PANORAMA_BUCKET }}"); any other template text cannot be rendered here.
 */
function expand(text: string, config: TutorConfig, depth: number): { value: string } | { problem: string } {
  if (!text.includes("{{") && !text.includes("{%")) return { value: text };
  if (depth > 5) return { problem: "a Tutor template that refers to itself" };
  if (text.includes("{%") || /\{\{(?!\s*[A-Za-z_][A-Za-z0-9_]*\s*\}\})/.test(text)) {
    return { problem: "a Tutor template (only {{ NAME }} references can be filled in here)" };
  }
  let problem: string | null = null;
  const value = text.replace(/\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}/g, (_, name: string) => {
    const found = config.values.get(name);
    const raw = found ? found.value : TUTOR_DEFAULTS[name];
    if (raw === undefined) {
      problem ??= `refers to ${name}, which config.yml does not set`;
      return "";
    }
    if (raw === null) return "";
    if (typeof raw !== "string") return String(raw);
    const inner = expand(raw, config, depth + 1);
    if ("problem" in inner) {
      problem ??= inner.problem;
      return "";
    }
    return inner.value;
  });
  return problem === null ? { value } : { problem };
}
