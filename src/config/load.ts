// Load the configuration: find the file, parse TOML, apply PANORAMA_* environment overrides,
// validate every key and resolve the table set. Precedence: flag > environment > file > default.
import { readFileSync, statSync } from "node:fs";
import { dirname, resolve } from "node:path";
import TOML from "@iarna/toml";
import * as v from "valibot";
import { ConfigError, messageOf } from "../errors.ts";
import { keyFileWarning, readKeyFile } from "../privacy/pseudonym.ts";
import { presetTables } from "./presets.ts";
import { configError, IDENTIFIER, isTable, type Origin, type Raw } from "./reader.ts";
import {
  configSchema,
  didYouMean,
  ENV_CREDENTIALS,
  ENV_OVERRIDES,
  fromText,
  lenientIssues,
  type Parsed,
  schemaAt,
} from "./schema.ts";
import { exposedFileWarning, uriCredentials } from "./secrets.ts";
import { resolveTables } from "./tables.ts";
import type { Config, PrivacyConfig, TableConfig } from "./types.ts";

/** Read from the declaration (schema.ts): the environment variables and the known keys. */
export { ENV_CREDENTIALS, ENV_OVERRIDES, KNOWN_KEYS } from "./schema.ts";

export const DEFAULT_CONFIG_PATHS = ["./panorama.toml", "/etc/panorama/panorama.toml"];

export interface LoadOptions {
  /** --config */
  configPath?: string | undefined;
  env?: Record<string, string | undefined>;
  cwd?: string;
}

export interface Loaded {
  config: Config;
  /** things a person should hear about (insecure permissions, ignored columns) */
  warnings: string[];
  /** the file as parsed, environment overrides applied (`k8s` hands it to the pods) */
  raw: Raw;
}

/** The config file to read: --config, else $PANORAMA_CONFIG, else ./panorama.toml, else /etc/panorama/panorama.toml. */
export function findConfigFile(options: LoadOptions): string {
  const env = options.env ?? process.env;
  const cwd = options.cwd ?? process.cwd();
  const explicit = options.configPath ?? env.PANORAMA_CONFIG;
  if (explicit) return resolve(cwd, explicit);
  for (const candidate of DEFAULT_CONFIG_PATHS) {
    const path = resolve(cwd, candidate);
    if (isFile(path)) return path;
  }
  throw new ConfigError(
    `no configuration file: looked for --config, $PANORAMA_CONFIG, ${DEFAULT_CONFIG_PATHS.join(", ")}`,
    "write one with `panorama init` (or `panorama init --from-tutor config.yml`)",
  );
}

/** Why the configuration file cannot be read, and what to do about it. */
function unreadableConfig(file: string, error: unknown, fromEnv: boolean): ConfigError {
  const code = (error as NodeJS.ErrnoException).code;
  const source = fromEnv ? " (the path came from $PANORAMA_CONFIG)" : "";
  if (code === "ENOENT") {
    return new ConfigError(
      `${file}: no such configuration file${source}`,
      fromEnv
        ? "set PANORAMA_CONFIG to an existing file, or unset it to use ./panorama.toml or /etc/panorama/panorama.toml"
        : "write one with `panorama init` (or `panorama init --from-tutor config.yml`)",
    );
  }
  if (code === "EACCES" || code === "EPERM") {
    let owner = "";
    try {
      const uid = statSync(file).uid;
      owner = uid === 0 ? " (root)" : ` (uid ${uid})`;
    } catch {
      // the directory may be the unreadable part: the hint still holds
    }
    return new ConfigError(
      `${file}: permission denied: cannot read the configuration file${source}`,
      `it holds secrets, so only its owner may read it: run the command with sudo, or as its owner${owner}`,
    );
  }
  return new ConfigError(`${file}: cannot read the configuration file${source} (${messageOf(error)})`);
}

export async function loadConfig(options: LoadOptions = {}): Promise<Loaded> {
  const file = findConfigFile(options);
  let text: string;
  try {
    text = await Bun.file(file).text();
  } catch (error) {
    throw unreadableConfig(
      file,
      error,
      !options.configPath && Boolean((options.env ?? process.env).PANORAMA_CONFIG),
    );
  }
  const loaded = parseConfig(text, file, options.env ?? process.env);
  const permissions = secretFileWarning(file, hasInlineSecret(loaded.raw));
  if (permissions) loaded.warnings.push(permissions);
  return loaded;
}

/**
 * The hint for a file that is not TOML but a YAML mapping: Tutor's config.yml given as --config,
 * or a configuration written as YAML. Anything else gets none: its TOML error says it all.
 */
function yamlHint(text: string): string | undefined {
  let document: unknown;
  try {
    document = Bun.YAML.parse(text);
  } catch {
    return undefined;
  }
  if (typeof document !== "object" || document === null || Array.isArray(document)) return undefined;
  return 'this is YAML: panorama reads TOML (key = "value", [section]; every key is in panorama.toml.example); a Tutor config.yml is read by `panorama init --from-tutor config.yml`, which writes the TOML';
}

/** Parse and validate config text; `file` is used for messages and relative paths. */
export function parseConfig(text: string, file: string, env: Record<string, string | undefined>): Loaded {
  let raw: Raw;
  try {
    raw = TOML.parse(text) as Raw;
  } catch (error) {
    const e = error as { line?: number; col?: number; message?: string };
    const reason = (e.message ?? String(error))
      .split("\n")[0]
      ?.replace(/ at row \d+, col \d+, pos \d+:?$/, "");
    const where = e.line !== undefined ? `:${e.line + 1}:${(e.col ?? 0) + 1}` : "";
    throw new ConfigError(`${file}${where}: TOML syntax error: ${reason}`, yamlHint(text));
  }
  const origin: Origin = { file, env: new Map() };
  const schema = configSchema(dirname(file));
  applyEnv(raw, env, origin, schema, ENV_OVERRIDES, true);
  applyEnv(raw, env, origin, schema, ENV_CREDENTIALS, false);
  const checked = v.safeParse(schema, raw, { abortEarly: true });
  if (!checked.success) throw issueError(origin, checked.issues[0]);
  const warnings: string[] = [];
  // A bad [schedule] entry fails only `crontab` (DESIGN §3): the others are told, and go on, so a
  // typo there never stops the hourly extraction already installed. The default stands in for it.
  const problems = lenientIssues(schema, raw).map(
    ([keyPath, issue]) => configError(origin, keyPath, issue.message, issue.input).message,
  );
  const config = join(checked.output, origin, problems, warnings);
  return { config, warnings, raw };
}

/**
 * Sets each variable's value at its key path, as the text would be written in the file (true for
 * "True", a number for "3306": what the key declares), so that the raw file handed on holds it too.
 */
function applyEnv(
  raw: Raw,
  env: Record<string, string | undefined>,
  origin: Origin,
  schema: v.GenericSchema,
  pairs: readonly (readonly [string, string])[],
  override: boolean,
): void {
  for (const [name, keyPath] of pairs) {
    const value = env[name];
    // Tutor leaves unset settings empty: an empty variable means "not set".
    if (value === undefined || value === "") continue;
    const keys = keyPath.split(".");
    let table = raw;
    for (const key of keys.slice(0, -1)) {
      const next = table[key];
      if (next === undefined) table[key] = {};
      else if (!isTable(next)) break;
      table = table[key] as Raw;
    }
    const last = keys[keys.length - 1]!;
    if (!override && table[last] !== undefined && table[last] !== "") continue;
    table[last] = fromText(schemaAt(schema, keyPath), value);
    origin.env.set(keyPath, name);
  }
}

/** The message of a schema issue: the key path from its path, what it expected, what it got. */
function issueError(origin: Origin, issue: v.BaseIssue<unknown>): ConfigError {
  let keyPath = "";
  for (const item of issue.path ?? []) {
    const key = item.key;
    keyPath += typeof key === "number" ? `[${key}]` : keyPath ? `.${String(key)}` : String(key);
  }
  return configError(origin, keyPath, issue.message, issue.input);
}

/** The checks and defaults that join keys of several sections, and what is read from other files. */
function join(parsed: Parsed, origin: Origin, problems: string[], warnings: string[]): Config {
  const { mode, lms_host, datalake } = parsed;
  if (datalake.target === "s3" && datalake.bucket === "" && mode !== "DEMO") {
    throw configError(origin, "datalake.bucket", 'required when target = "s3" (or set PANORAMA_BUCKET)');
  }
  if (datalake.base_partitions.length === 0) {
    if (lms_host === "" && mode !== "DEMO") {
      throw configError(
        origin,
        "lms_host",
        "required: it names this installation in the datalake (lms=<lms_host>); or set LMS_HOST",
      );
    }
    datalake.base_partitions.push(["lms", lms_host]);
  }
  datalake.path ||= `${parsed.state_dir}/datalake`;
  datalake.logs_bucket ||= datalake.bucket;
  const { aws } = parsed;
  if ((aws.access_key_id === "") !== (aws.secret_access_key === "")) {
    const missing = aws.access_key_id === "" ? "access_key_id" : "secret_access_key";
    throw configError(origin, `aws.${missing}`, "required when the other half of the key pair is set");
  }
  const { password_file: _m, ...mysql } = parsed.mysql;
  mysql.password = password(parsed.mysql, "mysql", origin, warnings);
  const { password_file: _g, ...mongodb } = parsed.mongodb;
  mongodb.password = password(parsed.mongodb, "mongodb", origin, warnings);
  const tables = resolveTables(parsed.tables, parsed.extract, datalake.base_prefix, origin, warnings);
  return {
    ...parsed,
    file: origin.file,
    mysql,
    mongodb,
    tables,
    schedule: { ...parsed.schedule, problems },
    privacy: privacy(parsed.privacy, origin, tables, warnings),
  };
}

/** A password given inline or through password_file (read now, so a bad path fails at load). */
function password(
  s: { password: string; password_file: string },
  section: string,
  origin: Origin,
  warnings: string[],
): string {
  const file = s.password_file;
  if (file === "") return s.password;
  const at = `${section}.password_file`;
  if (s.password !== "") throw configError(origin, at, "cannot be used together with password");
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? "";
    throw configError(origin, at, `cannot read ${file} (${code || (error as Error).message})`);
  }
  const warning = secretFileWarning(file, true);
  if (warning) warnings.push(warning);
  // One trailing newline is what `echo secret > file` leaves: it is not part of the password.
  return text.replace(/\r?\n$/, "");
}

/**
 * [privacy] (DESIGN §11). Each `columns` entry names a column of a table's layout, checked here
 * when the layout is known (preset or configured fields; otherwise at extraction). The key is
 * read now, so a missing or short key fails at load with how to make one.
 */
function privacy(
  parsed: Parsed["privacy"],
  origin: Origin,
  tables: TableConfig[],
  warnings: string[],
): PrivacyConfig {
  const fail = (key: string, problem: string, found?: unknown) =>
    configError(origin, `privacy.${key}`, problem, found);
  const known = new Map(tables.map((t) => [t.name, t]));
  const presets = new Set(presetTables("openedx").map((t) => t.name));
  for (const entry of parsed.columns) {
    const [table, column, ...rest] = entry.split(".");
    if (!table || !column || rest.length > 0 || !IDENTIFIER.test(table) || !IDENTIFIER.test(column)) {
      throw fail("columns", 'expected "table.column" names of letters, digits and underscores', entry);
    }
    const config = known.get(table);
    if (!config) {
      // A preset table left out by [extract] include/exclude: nothing of it is extracted.
      if (presets.has(table)) continue;
      throw fail(
        "columns",
        `"${entry}": no table "${table}" in the extracted set${didYouMean(table, [...known.keys()])}`,
      );
    }
    if (config.partition_fields.includes(column)) {
      throw fail(
        "columns",
        `"${entry}": ${column} partitions ${table}, and partition values are part of object keys: it cannot be pseudonymized`,
      );
    }
    if (config.fields && !config.fields.some((f) => f.name === column)) {
      const names = config.fields.map((f) => f.name);
      throw fail(
        "columns",
        `"${entry}": table ${table} has no column "${column}"${didYouMean(column, names)}`,
      );
    }
  }
  let key: Uint8Array | null = null;
  if (parsed.pseudonymize) {
    const read = readKeyFile(parsed.key_file);
    if ("problem" in read) throw new ConfigError(fail("key_file", read.problem).message, read.hint);
    key = read.key;
    const warning = keyFileWarning(parsed.key_file);
    if (warning) warnings.push(warning);
  }
  return { ...parsed, key };
}

function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

function hasInlineSecret(raw: Raw): boolean {
  const get = (section: string, key: string) => {
    const table = raw[section];
    return isTable(table) && typeof table[key] === "string" && table[key] !== "";
  };
  return (
    get("mysql", "password") ||
    get("mongodb", "password") ||
    get("aws", "secret_access_key") ||
    get("aws", "session_token") ||
    (isTable(raw.mongodb) &&
      typeof raw.mongodb.uri === "string" &&
      uriCredentials(raw.mongodb.uri).password !== "")
  );
}

/** A warning when a file holding a secret can be read by group or others. */
export function secretFileWarning(file: string, holdsSecret: boolean): string | null {
  if (!holdsSecret) return null;
  return exposedFileWarning(file, "a secret");
}
