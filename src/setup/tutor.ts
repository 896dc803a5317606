// Read a Tutor config.yml without a YAML library. Tutor writes it with PyYAML: one flat mapping of
// KEY: value, plain or quoted scalars (quoted ones may span lines), and a few lists (PLUGINS)
// whose items follow at column 0 or indented. Only top-level scalars are read; nested and
// block values are named as skipped so that the caller can say so. Errors give the file and
// line but never quote the text: it may hold a password.
import { ENV_CREDENTIALS, ENV_OVERRIDES } from "../config/load.ts";
import { ConfigError } from "../errors.ts";

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

const KEY_LINE = /^([A-Za-z_][A-Za-z0-9_.-]*)[ \t]*:(?:[ \t]+(.*))?$/;

/** The settings of a Tutor config.yml; errors name the file and the line. */
export function parseTutorConfig(text: string, file: string): TutorConfig {
  const lines = text.replace(/^\uFEFF/, "").split(/\r?\n/);
  const values = new Map<string, TutorValue>();
  const skipped = new Map<string, { line: number; what: string }>();
  const seen = new Map<string, number>();
  const fail = (index: number, problem: string) => new ConfigError(`${file}:${index + 1}: ${problem}`);
  let sawKey = false;
  let i = 0;
  while (i < lines.length) {
    const line = lines[i]!;
    if (isBlankOrComment(line)) {
      i++;
      continue;
    }
    if (line.startsWith("%") && !sawKey) {
      i++;
      continue;
    }
    if (/^---(\s|$)/.test(line)) {
      if (sawKey) throw fail(i, "a second YAML document: Tutor's config.yml holds one");
      i++;
      continue;
    }
    if (/^\.\.\.(\s|$)/.test(line)) break;
    if (/^[ \t]/.test(line) || line.startsWith("- ")) {
      throw fail(i, "unexpected indented line or list item: expected KEY: value at the start of the line");
    }
    const match = KEY_LINE.exec(line);
    // The line is not quoted back: it may hold a secret.
    if (!match) throw fail(i, "expected KEY: value (a name at the start of the line, a colon, a space)");
    const key = match[1]!;
    const rest = (match[2] ?? "").trim();
    // The value's column: match[2] starts right after the blanks that follow the colon.
    const column = line.length - (match[2] ?? "").length;
    const previous = seen.get(key);
    if (previous !== undefined) throw fail(i, `${key} is set twice (first on line ${previous})`);
    seen.set(key, i + 1);
    sawKey = true;
    const start = i;
    i++;
    const first = rest[0];
    if (rest === "" || first === "#") {
      // A list or a map follows on the next lines (indented, or `- item` at column 0), or nothing: null.
      const end = nestedEnd(lines, i);
      const content = lines.slice(i, end).find((l) => !isBlankOrComment(l));
      if (content === undefined) values.set(key, { value: null, line: start + 1 });
      else
        skipped.set(key, { line: start + 1, what: content.trimStart().startsWith("-") ? "a list" : "a map" });
      i = end;
    } else if (first === "'" || first === '"') {
      const quoted = readQuoted(lines, start, column, fail);
      values.set(key, { value: quoted.value, line: start + 1 });
      i = quoted.next;
    } else if (first === "|" || first === ">") {
      skipped.set(key, { line: start + 1, what: "a block scalar" });
      i = nestedEnd(lines, i);
    } else if (first === "[" || first === "{") {
      skipped.set(key, { line: start + 1, what: first === "[" ? "a list" : "a map" });
      i = flowEnd(lines, start, column);
      if (i < 0)
        throw fail(
          start,
          `the ${first === "[" ? "list" : "map"} of ${key} has no closing ${first === "[" ? "]" : "}"}`,
        );
    } else if (first === "&" || first === "*" || first === "!") {
      skipped.set(key, { line: start + 1, what: "a YAML anchor, alias or tag" });
      i = nestedEnd(lines, i);
    } else {
      // A plain scalar may continue on indented lines (PyYAML wraps long ones): a line break is a
      // space, an empty line a newline. A comment ends it.
      let textValue = stripComment(rest);
      let ended = /\s#/.test(rest);
      const end = nestedEnd(lines, i);
      for (let j = i; j < end; j++) {
        const more = lines[j]!.trim();
        if (more === "") {
          if (!ended) textValue += "\n";
          continue;
        }
        if (more.startsWith("#")) {
          ended = true;
          continue;
        }
        // Not indented, after a comment, or a key or list item: not the same value any more.
        if (ended || !/^[ \t]/.test(lines[j]!) || /^(- |[\w.-]+[ \t]*:(\s|$))/.test(more)) {
          throw fail(j, `unexpected line after the value of ${key} (line ${start + 1})`);
        }
        textValue += `${textValue.endsWith("\n") ? "" : " "}${stripComment(more)}`;
        if (/\s#/.test(more)) ended = true;
      }
      if (/:(\s|$)/.test(textValue)) {
        throw fail(start, `the value of ${key} holds ": ": quote it ('...' or "...")`);
      }
      values.set(key, { value: resolvePlain(textValue.trim()), line: start + 1 });
      i = end;
    }
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

function isBlankOrComment(line: string): boolean {
  const trimmed = line.trim();
  return trimmed === "" || trimmed.startsWith("#");
}

/** The first line at or after `from` that starts a new top-level entry (or the end). */
function nestedEnd(lines: string[], from: number): number {
  let i = from;
  while (i < lines.length) {
    const line = lines[i]!;
    const continues = /^[ \t]/.test(line) || line.startsWith("- ") || line === "-" || isBlankOrComment(line);
    if (!continues) break;
    i++;
  }
  // Trailing blank lines belong to nobody; keeping them out keeps line numbers honest.
  while (i > from && lines[i - 1]!.trim() === "") i--;
  return i;
}

/** The line after a flow collection ([...] or {...}) that may span lines; -1 when it never closes. */
function flowEnd(lines: string[], start: number, column: number): number {
  let depth = 0;
  let quote: string | null = null;
  for (let i = start; i < lines.length; i++) {
    const line = lines[i]!;
    for (let c = i === start ? column : 0; c < line.length; c++) {
      const ch = line[c]!;
      if (quote) {
        if (ch === "\\" && quote === '"') c++;
        else if (ch === quote) quote = null;
      } else if (ch === "'" || ch === '"') quote = ch;
      else if (ch === "#" && (c === 0 || /\s/.test(line[c - 1]!))) break;
      else if (ch === "[" || ch === "{") depth++;
      else if (ch === "]" || ch === "}") {
        depth--;
        if (depth === 0) return i + 1;
      }
    }
  }
  return -1;
}

function stripComment(text: string): string {
  const at = text.search(/\s#/);
  return (at < 0 ? text : text.slice(0, at)).trimEnd();
}

const DOUBLE_ESCAPES: Record<string, string> = {
  "0": "\0",
  a: "\x07",
  b: "\b",
  t: "\t",
  "\t": "\t",
  n: "\n",
  v: "\v",
  f: "\f",
  r: "\r",
  e: "\x1b",
  " ": " ",
  '"': '"',
  "/": "/",
  "\\": "\\",
  N: "\x85",
  _: "\xa0",
  L: "\u2028",
  P: "\u2029",
};
const HEX_ESCAPES: Record<string, number> = { x: 2, u: 4, U: 8 };

/**
 * A single- or double-quoted scalar starting at `column` of line `start`, which may continue on
 * the following lines (YAML folding: a line break is a space, an empty line a newline).
 */
function readQuoted(
  lines: string[],
  start: number,
  column: number,
  fail: (index: number, problem: string) => ConfigError,
): { value: string; next: number } {
  const line0 = lines[start]!;
  const quote = line0[column]!;
  let out = "";
  let i = start;
  let c = column + 1;
  let line = line0;
  for (;;) {
    if (c >= line.length) {
      // Fold to the next line.
      out = out.replace(/[ \t]+$/, "");
      let newlines = 0;
      i++;
      while (i < lines.length && lines[i]!.trim() === "") {
        newlines++;
        i++;
      }
      // The value goes on only on indented lines: anything else means the closing quote is missing.
      if (i >= lines.length || !/^[ \t]/.test(lines[i]!)) {
        throw fail(
          start,
          `unterminated ${quote === "'" ? "single" : "double"}-quoted value (no closing ${quote})`,
        );
      }
      out += newlines > 0 ? "\n".repeat(newlines) : " ";
      line = lines[i]!;
      c = line.search(/\S/);
      continue;
    }
    const ch = line[c]!;
    if (quote === "'") {
      if (ch === "'") {
        if (line[c + 1] === "'") {
          out += "'";
          c += 2;
          continue;
        }
        break;
      }
      out += ch;
      c++;
      continue;
    }
    if (ch === '"') break;
    if (ch !== "\\") {
      out += ch;
      c++;
      continue;
    }
    const next = line[c + 1];
    if (next === undefined) {
      // An escaped line break joins the lines without a space.
      i++;
      if (i >= lines.length) throw fail(start, 'unterminated double-quoted value (no closing ")');
      line = lines[i]!;
      c = Math.max(0, line.search(/\S/));
      continue;
    }
    const simple = DOUBLE_ESCAPES[next];
    if (simple !== undefined) {
      out += simple;
      c += 2;
      continue;
    }
    const digits = HEX_ESCAPES[next];
    const hex = digits === undefined ? "" : line.slice(c + 2, c + 2 + digits);
    if (digits === undefined || !new RegExp(`^[0-9A-Fa-f]{${digits}}$`).test(hex)) {
      throw fail(i, `invalid escape \\${next} in a double-quoted value`);
    }
    out += String.fromCodePoint(Number.parseInt(hex, 16));
    c += 2 + digits;
  }
  const after = line.slice(c + 1).trim();
  if (after !== "" && !after.startsWith("#")) {
    throw fail(i, "unexpected text after the closing quote (a quote inside '...' is written '')");
  }
  return { value: out, next: i + 1 };
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
  MYSQL_HOST: "mysql",
  MYSQL_PORT: 3306,
  OPENEDX_MYSQL_USERNAME: "openedx",
  OPENEDX_MYSQL_DATABASE: "openedx",
  MONGODB_HOST: "mongodb",
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
    settings,
    unused: keys.filter((k) => k.startsWith("PANORAMA_") && !mapped.has(k)).map(describe),
    unusable,
    skipped: [...config.skipped.keys()].filter((k) => !k.startsWith("PANORAMA_") && !mapped.has(k)),
  };
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
