// The starter configuration of `panorama init`: the keys an operator must set, the others
// commented out with their defaults (panorama.toml.example explains each one at length), and,
// with --from-tutor, the values of a Tutor config.yml. Written 0600 at once: it holds secrets.
import { randomBytes } from "node:crypto";
import {
  closeSync,
  existsSync,
  fsyncSync,
  linkSync,
  mkdirSync,
  openSync,
  renameSync,
  rmSync,
  writeSync,
} from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { ENV_CREDENTIALS, ENV_OVERRIDES, parseConfig } from "../config/load.ts";
import { LOG_FORMATS } from "../config/schema.ts";
import { splitUri } from "../config/secrets.ts";
import { ConfigError, UsageError } from "../errors.ts";
import { KEY_BYTES } from "../privacy/pseudonym.ts";
import { syncDirectory } from "../state/atomic.ts";
import type { TutorReading, TutorScalar, TutorSetting } from "./tutor.ts";
import { tutorContainerHostAdvice } from "./tutor-hosts.ts";

type TomlValue = string | number | boolean | string[];

interface Entry {
  key: string;
  /** the default, which also gives the TOML type of the key */
  value: TomlValue;
  doc: string;
  /** written as a key (not commented out) even when nothing fills it: the operator must look at it */
  active?: boolean;
}

interface Block {
  table: string;
  doc?: string;
  entries: Entry[];
  /** commented lines after the entries */
  after?: string[];
}

/** The key file `init` writes, next to the config file (relative paths resolve against it). */
export const PSEUDONYM_KEY_FILE = "pseudonym.key";

const STARTER: Block[] = [
  {
    table: "",
    entries: [
      {
        key: "mode",
        value: "DEMO",
        doc: "DEMO | FREE | SAAS | CUSTOM. DEMO extracts and ships nothing: choose another mode once the keys below are right.",
        active: true,
      },
      {
        key: "lms_host",
        value: "",
        doc: "This installation's name in the datalake (lms=<lms_host>). Required, except in DEMO.",
        active: true,
      },
      { key: "state_dir", value: "/var/lib/panorama", doc: "Spool, watermarks, log offsets, run lock." },
    ],
  },
  {
    table: "datalake",
    entries: [
      { key: "target", value: "s3", doc: '"s3", or "local": a directory tree at path.' },
      {
        key: "path",
        value: "/var/lib/panorama/datalake",
        doc: 'target = "local" only. Default <state_dir>/datalake.',
      },
      {
        key: "bucket",
        value: "",
        doc: 'The datalake\'s S3 bucket. Required with target = "s3", except in DEMO.',
        active: true,
      },
      { key: "logs_bucket", value: "", doc: "The tracking logs' bucket. Default: bucket." },
      { key: "base_prefix", value: "openedx", doc: "First element of every object key and table name." },
      { key: "region", value: "us-east-1", doc: "AWS region of the bucket, Glue and Athena.", active: true },
      { key: "database", value: "panorama", doc: "Glue/Athena database." },
      { key: "workgroup", value: "panorama", doc: "Athena workgroup." },
      { key: "athena_results_bucket", value: "", doc: "Athena's results bucket, for `panorama iam-policy`." },
      { key: "account_id", value: "", doc: "12-digit AWS account id, for `panorama iam-policy`." },
      { key: "compression", value: "none", doc: '"none" (<table>.csv, as the Python tool wrote) or "gzip".' },
      { key: "kms_key_arn", value: "", doc: "SSE-KMS key for uploads." },
      { key: "endpoint", value: "", doc: "Custom S3 endpoint (MinIO)." },
    ],
    after: [
      "The partitions that lead every object key. Default: lms = <lms_host>.",
      "[datalake.base_partitions]",
      'lms = "lms.example.com"',
    ],
  },
  {
    table: "aws",
    doc: "An IAM user's key. Without: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, then the instance role.",
    entries: [
      { key: "access_key_id", value: "", doc: "" },
      { key: "secret_access_key", value: "", doc: "" },
      { key: "session_token", value: "", doc: "" },
    ],
  },
  {
    table: "mysql",
    doc: "The Open edX MySQL database; a read-only user is enough.",
    entries: [
      { key: "host", value: "127.0.0.1", doc: "", active: true },
      { key: "port", value: 3306, doc: "", active: true },
      { key: "user", value: "root", doc: "", active: true },
      {
        key: "password",
        value: "",
        doc: 'Or password_file = "/etc/panorama/mysql.pass" (not both).',
        active: true,
      },
      { key: "database", value: "edxapp", doc: "", active: true },
      { key: "socket", value: "", doc: "A Unix socket instead of host and port." },
      { key: "ssl", value: false, doc: "" },
      { key: "connections", value: 2, doc: "Parallel partition queries." },
    ],
  },
  {
    table: "mongodb",
    doc: "The MongoDB of the course structures.",
    entries: [
      {
        key: "uri",
        value: "",
        doc: "A connection string, instead of host, port and user (password and auth_source apply when it sets none).",
      },
      { key: "host", value: "127.0.0.1", doc: "", active: true },
      { key: "port", value: 27017, doc: "", active: true },
      { key: "user", value: "", doc: "", active: true },
      {
        key: "password",
        value: "",
        doc: 'Or password_file = "/etc/panorama/mongodb.pass" (not both).',
        active: true,
      },
      { key: "database", value: "edxapp", doc: "", active: true },
      { key: "auth_source", value: "", doc: "Default: database." },
      { key: "tls", value: false, doc: "" },
      { key: "use_split_mongo", value: true, doc: "Course index in MySQL (Open edX Maple and later)." },
    ],
  },
  {
    table: "extract",
    doc: "Add or override tables with [[tables]] blocks (see panorama.toml.example, `panorama schema pull`).",
    entries: [
      { key: "preset", value: "openedx", doc: '"openedx" (the Tutor plugin\'s tables) or "none".' },
      { key: "include", value: [], doc: "Only these tables." },
      { key: "exclude", value: [], doc: "Not these tables." },
      {
        key: "full_every",
        value: "24h",
        doc: 'A table is read in full at least this often (deletions reach the datalake); "0" = never.',
      },
    ],
  },
  {
    table: "logs",
    doc: "Tracking-log shipping (`panorama log-ship`).",
    entries: [
      { key: "paths", value: ["/openedx/data/logs/tracking.log"], doc: "Files or globs." },
      { key: "exclude", value: [], doc: "" },
      { key: "format", value: "auto", doc: LOG_FORMATS.join(" | ") },
      { key: "max_file_size", value: "1M", doc: "Uncompressed size of one uploaded object." },
      { key: "upload_timeout", value: "15m", doc: "Longest wait before a batch is uploaded." },
    ],
  },
  {
    table: "schedule",
    doc: "What `panorama crontab` writes.",
    entries: [
      { key: "run", value: "55 * * * *", doc: "`panorama run`." },
      { key: "log_ship", value: "*/5 * * * *", doc: "`panorama log-ship --once`." },
      { key: "verify", value: "30 3 * * *", doc: '`panorama verify --repair`; "" for none.' },
    ],
  },
  {
    table: "privacy",
    doc: "Keyed pseudonyms for names, e-mail and IP addresses before any data leaves this host.",
    entries: [
      { key: "pseudonymize", value: false, doc: "Replace personal values by pseudonyms (pz_...)." },
      {
        key: "key_file",
        value: PSEUDONYM_KEY_FILE,
        doc: "Written by `panorama init` next to this file (0600). Losing or changing the key changes every pseudonym.",
        active: true,
      },
      { key: "columns", value: [], doc: 'More "table.column" to pseudonymize.' },
      { key: "log_fields", value: [], doc: 'More event field paths ("event.user_name").' },
    ],
  },
];

/** Write a fresh key of 32 random bytes at `path` (mode 0600); an existing key is kept. */
export function writeKeyFile(path: string): "written" | "kept" {
  if (existsSync(path)) return "kept";
  writeConfigFile(path, randomBytes(KEY_BYTES), false);
  return "written";
}

const ENV_NAMES = new Map([...ENV_OVERRIDES, ...ENV_CREDENTIALS].map(([name, path]) => [path, name]));

/** Every key path the starter writes (active or commented out). */
export const STARTER_KEYS: readonly string[] = STARTER.flatMap((block) =>
  block.entries.map((e) => (block.table ? `${block.table}.${e.key}` : e.key)),
);

export interface Starter {
  text: string;
  /** key paths filled from config.yml */
  filled: string[];
  /** key paths filled from Tutor's defaults (absent from config.yml) */
  defaulted: string[];
  /** values that must never be printed */
  secrets: string[];
  /** what the operator should change before the first run, each naming its key */
  warnings: string[];
}

/** The starter configuration, filled from `tutor` when given. It always loads with parseConfig. */
export function starterConfig(tutor?: TutorReading): Starter {
  const settings = new Map<string, { setting: TutorSetting; value: TomlValue }>();
  const warnings: string[] = [];
  for (const setting of tutor?.settings ?? []) {
    const entry = findEntry(setting.keyPath);
    if (!entry) throw new Error(`init: no starter entry for ${setting.keyPath}`);
    settings.set(setting.keyPath, { setting, value: convert(setting, entry.value, tutor!.file) });
  }
  const lines: string[] = [
    tutor
      ? `# panorama configuration, written by \`panorama init --from-tutor\` from ${tutor.file}.`
      : "# panorama configuration, written by `panorama init`.",
    "# Every key is explained in panorama.toml.example; a commented-out key shows its default.",
    "# Precedence: command-line flag > environment variable (PANORAMA_*, LMS_HOST) > this file > default.",
    "# This file holds secrets: keep it readable by its owner only (mode 0600).",
  ];
  for (const block of STARTER) {
    lines.push("");
    if (block.table) lines.push(`[${block.table}]`);
    if (block.doc) lines.push(...comment(block.doc));
    for (const entry of block.entries) {
      const path = block.table ? `${block.table}.${entry.key}` : entry.key;
      const env = ENV_NAMES.get(path);
      const doc = [entry.doc, env ? `Env ${env}.` : ""].filter(Boolean).join(" ");
      if (doc) lines.push(...comment(doc));
      const filled = settings.get(path);
      if (!filled && tutor && path === "logs.paths") {
        // The LMS container's /openedx/data is <tutor root>/data/lms on the host, and config.yml
        // sits in the Tutor root.
        const log = join(resolve(dirname(tutor.file)), "data", "lms", "logs", "tracking.log");
        lines.push(`${entry.key} = ${tomlValue([log])}  # the LMS tracking log under the Tutor root`);
        continue;
      }
      // A connection string from config.yml names the server and user itself.
      const byUri =
        settings.has("mongodb.uri") && ["mongodb.host", "mongodb.port", "mongodb.user"].includes(path);
      if (!filled) {
        lines.push(`${entry.active && !byUri ? "" : "# "}${entry.key} = ${tomlValue(entry.value)}`);
        continue;
      }
      const { setting, value } = filled;
      const advice = hostAdvice(path, value);
      if (advice) {
        lines.push(...comment(`${advice}.`));
        warnings.push(`${path} = "${value}" (${setting.tutorKey}, ${setting.source}): ${advice}`);
      }
      lines.push(`${entry.key} = ${tomlValue(value)}  # ${setting.tutorKey} (${setting.source})`);
    }
    for (const line of block.after ?? []) lines.push(`# ${line}`);
  }
  if (tutor) lines.push(...tutorNotes(tutor));
  const text = `${lines.join("\n")}\n`;
  const all = [...settings.values()];
  const starter: Starter = {
    text,
    filled: all.filter((s) => s.setting.line !== null).map((s) => s.setting.keyPath),
    defaulted: all.filter((s) => s.setting.line === null).map((s) => s.setting.keyPath),
    secrets: [
      ...all
        .filter((s) => /password|secret/.test(s.setting.keyPath) && typeof s.value === "string")
        .map((s) => s.value as string),
      // A password inside a connection string.
      ...all
        .filter((s) => s.setting.keyPath === "mongodb.uri")
        .map((s) => splitUri(String(s.value)).password)
        .filter((password) => password !== ""),
    ],
    warnings,
  };
  validate(starter, tutor);
  return starter;
}

/** The end of the file: what config.yml holds that panorama does not use, so nothing goes unsaid. */
function tutorNotes(tutor: TutorReading): string[] {
  const notes: string[] = [];
  if (tutor.unusable.length > 0) {
    notes.push(
      `Not filled, set by hand: ${tutor.unusable.map((u) => `${u.keyPath} from ${u.tutorKey} (line ${u.line}: ${u.reason})`).join("; ")}.`,
    );
  }
  if (tutor.unused.length > 0) notes.push(`Not used by panorama: ${tutor.unused.join(", ")}.`);
  if (tutor.skipped.length > 0) {
    notes.push(`Not read (lists, maps and block values): ${tutor.skipped.join(", ")}.`);
  }
  if (notes.length === 0) return [];
  return ["", `# From ${tutor.file}:`, ...notes.flatMap((note) => comment(note))];
}

/** For [mysql] host and [mongodb] host holding one of Tutor's container names: what to set instead. */
function hostAdvice(path: string, value: TomlValue): string | undefined {
  if (typeof value !== "string") return undefined;
  if (path === "mysql.host") return tutorContainerHostAdvice("mysql", value);
  if (path === "mongodb.host") return tutorContainerHostAdvice("mongodb", value);
  return undefined;
}

function findEntry(path: string): Entry | undefined {
  const dot = path.lastIndexOf(".");
  const table = dot < 0 ? "" : path.slice(0, dot);
  const key = path.slice(dot + 1);
  return STARTER.find((b) => b.table === table)?.entries.find((e) => e.key === key);
}

/** A Tutor value as the TOML type of its key; a value of the wrong kind names its line. */
function convert(setting: TutorSetting, fallback: TomlValue, file: string): TomlValue {
  const value: Exclude<TutorScalar, null> = setting.value;
  const where = `${file}:${setting.line ?? 0}: ${setting.tutorKey}`;
  if (typeof fallback === "number") {
    const n = typeof value === "string" && /^\s*\d+\s*$/.test(value) ? Number(value) : value;
    if (typeof n !== "number" || !Number.isInteger(n)) {
      throw new ConfigError(`${where}: expected an integer for ${setting.keyPath}`);
    }
    return n;
  }
  if (typeof fallback === "boolean") {
    if (typeof value === "boolean") return value;
    const text = String(value).trim().toLowerCase();
    if (["true", "yes", "on", "1"].includes(text)) return true;
    if (["false", "no", "off", "0"].includes(text)) return false;
    throw new ConfigError(`${where}: expected true or false for ${setting.keyPath}`);
  }
  if (typeof value === "boolean") throw new ConfigError(`${where}: expected text for ${setting.keyPath}`);
  return String(value);
}

/** Fail before writing when the values would not load; name the Tutor key, never its value. */
function validate(starter: Starter, tutor: TutorReading | undefined): void {
  const file = "panorama.toml";
  try {
    parseConfig(starter.text, file, {});
  } catch (error) {
    if (!(error instanceof ConfigError) || !tutor) throw error;
    const message = error.message.replace(`${file}: `, "");
    const culprit = tutor.settings.find((s) => message.startsWith(`${s.keyPath}:`));
    // A key config.yml sets in a form panorama cannot read (a Jinja expression, a list): its
    // value is missing now, and the reason is what the operator needs to hear.
    const unread = tutor.unusable.find((u) => message.startsWith(`${u.keyPath}:`));
    const where = culprit
      ? `${tutor.file}:${culprit.line ?? 0}: ${culprit.tutorKey} cannot be used as ${message}`
      : unread
        ? `${tutor.file}:${unread.line}: ${unread.tutorKey} could not be read (${unread.reason}), so ${message}`
        : `${tutor.file}: the values read would not make a valid configuration: ${message}`;
    throw new ConfigError(
      where,
      "fix the value in config.yml (tutor config save --set KEY=VALUE), or run `panorama init` without --from-tutor and edit the file",
    );
  }
}

/** `# ` comment lines wrapped at `width`, never inside parentheses. */
function comment(text: string, width = 100): string[] {
  const words: string[] = [];
  let depth = 0;
  for (const part of text.split(" ")) {
    if (depth > 0) words[words.length - 1] += ` ${part}`;
    else words.push(part);
    depth += (part.match(/\(/g)?.length ?? 0) - (part.match(/\)/g)?.length ?? 0);
  }
  const out: string[] = [];
  let line = "#";
  for (const word of words) {
    if (line.length + 1 + word.length > width && line !== "#") {
      out.push(line);
      line = "#";
    }
    line += ` ${word}`;
  }
  out.push(line);
  return out;
}

/** A TOML value: strings as basic strings with every character that needs it escaped. */
export function tomlValue(value: TomlValue): string {
  if (Array.isArray(value)) return `[${value.map(tomlString).join(", ")}]`;
  if (typeof value === "string") return tomlString(value);
  return String(value);
}

const TOML_ESCAPES: Record<string, string> = {
  "\\": "\\\\",
  '"': '\\"',
  "\b": "\\b",
  "\t": "\\t",
  "\n": "\\n",
  "\f": "\\f",
  "\r": "\\r",
};

export function tomlString(text: string): string {
  const escaped = text.replace(
    /[\\"\p{Cc}]/gu,
    (ch) => TOML_ESCAPES[ch] ?? `\\u${ch.charCodeAt(0).toString(16).toUpperCase().padStart(4, "0")}`,
  );
  return `"${escaped}"`;
}

/**
 * Write `text` to `path` as a new file of mode 0600: a temporary file in the same directory,
 * created with that mode, then linked (refuses an existing file, atomically) or, with `force`,
 * renamed over it.
 */
export function writeConfigFile(path: string, text: string | Uint8Array, force: boolean): void {
  const dir = dirname(path);
  mkdirSync(dir, { recursive: true });
  const temp = join(dir, `.${basename(path)}.${randomBytes(6).toString("hex")}.tmp`);
  // O_EXCL: never write through a file or link that is already there.
  const fd = openSync(temp, "wx", 0o600);
  try {
    try {
      writeSync(fd, typeof text === "string" ? Buffer.from(text) : text);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    if (force) renameSync(temp, path);
    else link(temp, path);
    syncDirectory(dir);
  } finally {
    rmSync(temp, { force: true });
  }
}

function link(temp: string, path: string): void {
  const exists = () => new UsageError(`${path} exists: use --force to overwrite it`);
  try {
    linkSync(temp, path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "EEXIST") throw exists();
    // A filesystem without hard links: check, then rename (not atomic against a concurrent writer).
    if (code !== "EPERM" && code !== "ENOTSUP" && code !== "EOPNOTSUPP") throw error;
    if (existsSync(path)) throw exists();
    renameSync(temp, path);
  }
}
