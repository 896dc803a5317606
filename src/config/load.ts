// Load the configuration: find the file, parse TOML, apply PANORAMA_* environment overrides,
// validate every key and resolve the table set. Precedence: flag > environment > file > default.
import { readFileSync, statSync } from "node:fs";
import { dirname, isAbsolute, resolve } from "node:path";
import TOML from "@iarna/toml";
import { ConfigError, messageOf } from "../errors.ts";
import { keyFileWarning, readKeyFile } from "../privacy/pseudonym.ts";
import { FORBIDDEN_FIELDS, presetTables } from "./presets.ts";
import {
  closest,
  IDENTIFIER,
  IDENTIFIER_EXPECTED,
  isTable,
  type Origin,
  type Raw,
  Section,
} from "./reader.ts";
import { uriCredentials } from "./secrets.ts";
import {
  type Config,
  type DatalakeConfig,
  type FieldDef,
  LOG_FORMATS,
  type LogsConfig,
  MODES,
  type MongodbConfig,
  type MysqlConfig,
  type PrivacyConfig,
  type ScheduleConfig,
  type TableConfig,
} from "./types.ts";

/** The Tutor plugin's variable names, so an operator moving from Tutor keeps their values. */
export const ENV_OVERRIDES: readonly (readonly [string, string])[] = [
  ["PANORAMA_MODE", "mode"],
  ["LMS_HOST", "lms_host"],
  ["PANORAMA_STATE_DIR", "state_dir"],
  ["PANORAMA_BUCKET", "datalake.bucket"],
  ["PANORAMA_RAW_LOGS_BUCKET", "datalake.logs_bucket"],
  ["PANORAMA_BASE_PREFIX", "datalake.base_prefix"],
  ["PANORAMA_REGION", "datalake.region"],
  ["PANORAMA_DATALAKE_DATABASE", "datalake.database"],
  ["PANORAMA_DATALAKE_WORKGROUP", "datalake.workgroup"],
  ["PANORAMA_USE_SPLIT_MONGO", "mongodb.use_split_mongo"],
  ["PANORAMA_LOGS_TOTAL_FILE_SIZE", "logs.max_file_size"],
  ["PANORAMA_LOGS_UPLOAD_TIMEOUT", "logs.upload_timeout"],
  ["PANORAMA_CRONTAB", "schedule.run"],
];

/** Credentials from the environment come after the file's [aws] table (issue: credential order). */
export const ENV_CREDENTIALS: readonly (readonly [string, string])[] = [
  ["PANORAMA_AWS_ACCESS_KEY", "aws.access_key_id"],
  ["PANORAMA_AWS_SECRET_ACCESS_KEY", "aws.secret_access_key"],
];

export const DEFAULT_CONFIG_PATHS = ["./panorama.toml", "/etc/panorama/panorama.toml"];

export const MYSQL_TYPES = [
  "tinyint",
  "smallint",
  "mediumint",
  "int",
  "integer",
  "bigint",
  "year",
  "bit",
  "decimal",
  "numeric",
  "float",
  "double",
  "real",
  "datetime",
  "timestamp",
  "date",
  "time",
  "char",
  "varchar",
  "tinytext",
  "text",
  "mediumtext",
  "longtext",
  "enum",
  "set",
  "json",
  "binary",
  "varbinary",
  "tinyblob",
  "blob",
  "mediumblob",
  "longblob",
  "uuid",
] as const;

const TOP_KEYS = [
  "mode",
  "lms_host",
  "state_dir",
  "datalake",
  "aws",
  "mysql",
  "mongodb",
  "extract",
  "tables",
  "logs",
  "schedule",
  "metrics",
  "privacy",
];
const DATALAKE_KEYS = [
  "target",
  "path",
  "bucket",
  "logs_bucket",
  "base_prefix",
  "region",
  "database",
  "workgroup",
  "athena_results_bucket",
  "account_id",
  "compression",
  "kms_key_arn",
  "endpoint",
  "glue_endpoint",
  "athena_endpoint",
  "base_partitions",
];
const AWS_KEYS = ["access_key_id", "secret_access_key", "session_token"];
const MYSQL_KEYS = [
  "host",
  "port",
  "user",
  "password",
  "password_file",
  "database",
  "socket",
  "ssl",
  "connections",
];
const MONGODB_KEYS = [
  "uri",
  "host",
  "port",
  "user",
  "password",
  "password_file",
  "database",
  "auth_source",
  "tls",
  "use_split_mongo",
];
const EXTRACT_KEYS = ["preset", "include", "exclude", "full_every"];
const TABLE_KEYS = [
  "name",
  "datalake_table",
  "view",
  "partition_fields",
  "incremental",
  "changed_field",
  "fields",
];
const LOGS_KEYS = ["paths", "exclude", "format", "max_file_size", "upload_timeout"];
const SCHEDULE_KEYS = ["run", "log_ship", "verify"];
const METRICS_KEYS = ["textfile"];
const PRIVACY_KEYS = ["pseudonymize", "key_file", "columns", "log_fields"];

/** Every key the loader knows, by section ("" = top level, "tables" = each [[tables]] entry). */
export const KNOWN_KEYS: Record<string, readonly string[]> = {
  "": TOP_KEYS,
  datalake: DATALAKE_KEYS,
  aws: AWS_KEYS,
  mysql: MYSQL_KEYS,
  mongodb: MONGODB_KEYS,
  extract: EXTRACT_KEYS,
  tables: TABLE_KEYS,
  "tables.incremental": ["timestamp_field", "overlap"],
  "tables.fields": ["name", "type"],
  logs: LOGS_KEYS,
  schedule: SCHEDULE_KEYS,
  metrics: METRICS_KEYS,
  privacy: PRIVACY_KEYS,
};

const BUCKET = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;
const BUCKET_EXPECTED = "an S3 bucket name (3-63 lowercase letters, digits, dots and hyphens)";
const REGION = /^[a-z]{2}(-[a-z]+)+-\d+$/;
const URL_PATTERN = /^https?:\/\/[^\s/]+(\/\S*)?$/;

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
    throw new ConfigError(`${file}${where}: TOML syntax error: ${reason}`);
  }
  const origin: Origin = { file, env: new Map() };
  applyEnv(raw, env, origin, ENV_OVERRIDES, true);
  applyEnv(raw, env, origin, ENV_CREDENTIALS, false);
  const warnings: string[] = [];
  const config = validate(new Section(origin, "", raw, TOP_KEYS), dirname(file), warnings);
  return { config, warnings, raw };
}

function applyEnv(
  raw: Raw,
  env: Record<string, string | undefined>,
  origin: Origin,
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
    table[last] = value;
    origin.env.set(keyPath, name);
  }
}

function validate(top: Section, baseDir: string, warnings: string[]): Config {
  const path = (value: string) => (value === "" || isAbsolute(value) ? value : resolve(baseDir, value));
  if (!top.has("mode")) {
    throw top.error("mode", 'required: one of "DEMO", "FREE", "SAAS", "CUSTOM" (or set PANORAMA_MODE)');
  }
  const mode = top.choice("mode", MODES, "DEMO", true);
  const lms_host = top.matching("lms_host", "", /^[A-Za-z0-9._:-]+$/, "a host name such as lms.example.com");
  const state_dir = path(top.string("state_dir", "/var/lib/panorama"));
  if (state_dir === "") throw top.error("state_dir", "expected a directory path", "");

  const datalake = validateDatalake(top.section("datalake", DATALAKE_KEYS), mode, lms_host, state_dir, path);
  const awsSection = top.section("aws", AWS_KEYS);
  const aws = {
    access_key_id: awsSection.string("access_key_id", ""),
    secret_access_key: awsSection.string("secret_access_key", ""),
    session_token: awsSection.string("session_token", ""),
  };
  if ((aws.access_key_id === "") !== (aws.secret_access_key === "")) {
    const missing = aws.access_key_id === "" ? "access_key_id" : "secret_access_key";
    throw awsSection.error(missing, "required when the other half of the key pair is set");
  }
  const mysql = validateMysql(top.section("mysql", MYSQL_KEYS), path, warnings);
  const mongodb = validateMongodb(top.section("mongodb", MONGODB_KEYS), path, warnings);

  const extractSection = top.section("extract", EXTRACT_KEYS);
  const extract = {
    preset: extractSection.choice("preset", ["openedx", "none"] as const, "openedx"),
    include: extractSection.identifiers("include"),
    exclude: extractSection.identifiers("exclude"),
    full_every: extractSection.durationOrNever("full_every", "24h"),
  };
  const tables = resolveTables(top, extractSection, extract, datalake.base_prefix, warnings);

  const logs = validateLogs(top.section("logs", LOGS_KEYS), path);
  const schedule = validateSchedule(top.section("schedule", SCHEDULE_KEYS));
  const metrics = { textfile: path(top.section("metrics", METRICS_KEYS).string("textfile", "")) };
  const privacy = validatePrivacy(top.section("privacy", PRIVACY_KEYS), path, tables, warnings);

  return {
    file: top.origin.file,
    mode,
    lms_host,
    state_dir,
    datalake,
    aws,
    mysql,
    mongodb,
    extract,
    tables,
    logs,
    schedule,
    privacy,
    metrics,
  };
}

/**
 * A bad [schedule] entry fails only `crontab` (DESIGN §3): the others are told, and go on, so a
 * typo there never stops the hourly extraction already installed. The default stands in for it.
 */
function validateSchedule(s: Section): ScheduleConfig {
  const problems: string[] = [];
  const entry = (key: string, fallback: string, none = false) => {
    try {
      return none ? s.cronOrNone(key, fallback) : s.cron(key, fallback);
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      problems.push(error.message);
      return fallback;
    }
  };
  return {
    run: entry("run", "55 * * * *"),
    log_ship: entry("log_ship", "*/5 * * * *"),
    verify: entry("verify", "30 3 * * *", true),
    problems,
  };
}

function validateDatalake(
  s: Section,
  mode: Config["mode"],
  lmsHost: string,
  stateDir: string,
  path: (value: string) => string,
): DatalakeConfig {
  const target = s.choice("target", ["s3", "local"] as const, "s3");
  const bucket = s.matching("bucket", "", BUCKET, BUCKET_EXPECTED);
  if (target === "s3" && bucket === "" && mode !== "DEMO") {
    throw s.error("bucket", 'required when target = "s3" (or set PANORAMA_BUCKET)');
  }
  const basePartitions = s.section("base_partitions", Object.keys(s.raw.base_partitions ?? {}));
  const base_partitions: [string, string][] = [];
  for (const key of Object.keys(basePartitions.raw)) {
    if (!IDENTIFIER.test(key))
      throw basePartitions.error(key, `expected the key to be ${IDENTIFIER_EXPECTED}`);
    const value = basePartitions.string(key, "");
    if (value === "") throw basePartitions.error(key, "expected a non-empty string", value);
    base_partitions.push([key, value]);
  }
  if (base_partitions.length === 0) {
    if (lmsHost === "" && mode !== "DEMO") {
      throw new Section(s.origin, "", {}, []).error(
        "lms_host",
        "required: it names this installation in the datalake (lms=<lms_host>); or set LMS_HOST",
      );
    }
    base_partitions.push(["lms", lmsHost]);
  }
  return {
    target,
    path: path(s.string("path", "")) || `${stateDir}/datalake`,
    bucket,
    logs_bucket: s.matching("logs_bucket", "", BUCKET, BUCKET_EXPECTED) || bucket,
    base_prefix: s.identifier("base_prefix", "openedx"),
    region: s.matching("region", "us-east-1", REGION, 'an AWS region such as "us-east-1"', false),
    database: s.identifier("database", "panorama"),
    workgroup: s.matching(
      "workgroup",
      "panorama",
      /^[A-Za-z0-9._-]{1,128}$/,
      "an Athena workgroup name",
      false,
    ),
    athena_results_bucket: s.matching("athena_results_bucket", "", BUCKET, BUCKET_EXPECTED),
    account_id: s.matching("account_id", "", /^\d{12}$/, "a 12-digit AWS account id"),
    compression: s.choice("compression", ["none", "gzip"] as const, "none"),
    kms_key_arn: s.matching(
      "kms_key_arn",
      "",
      /^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key\/[A-Za-z0-9-]+$/,
      "a KMS key ARN such as arn:aws:kms:us-east-1:123456789012:key/<key id>",
    ),
    endpoint: s.matching("endpoint", "", URL_PATTERN, "an http(s) URL"),
    glue_endpoint: s.matching("glue_endpoint", "", URL_PATTERN, "an http(s) URL"),
    athena_endpoint: s.matching("athena_endpoint", "", URL_PATTERN, "an http(s) URL"),
    base_partitions,
  };
}

/** A password given inline or through password_file (read now, so a bad path fails at load). */
function password(s: Section, path: (value: string) => string, warnings: string[]): string {
  const inline = s.string("password", "");
  const file = path(s.string("password_file", ""));
  if (file === "") return inline;
  if (inline !== "") throw s.error("password_file", "cannot be used together with password");
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? "";
    throw s.error("password_file", `cannot read ${file} (${code || (error as Error).message})`);
  }
  const warning = secretFileWarning(file, true);
  if (warning) warnings.push(warning);
  // One trailing newline is what `echo secret > file` leaves: it is not part of the password.
  return text.replace(/\r?\n$/, "");
}

function validateMysql(s: Section, path: (value: string) => string, warnings: string[]): MysqlConfig {
  return {
    host: s.matching("host", "127.0.0.1", /^[A-Za-z0-9._:-]+$/, "a host name or IP address", false),
    port: s.integer("port", 3306, 1, 65535),
    user: s.string("user", "root"),
    password: password(s, path, warnings),
    database: s.identifier("database", "edxapp"),
    socket: path(s.string("socket", "")),
    ssl: s.boolean("ssl", false),
    connections: s.integer("connections", 2, 1, 16),
  };
}

function validateMongodb(s: Section, path: (value: string) => string, warnings: string[]): MongodbConfig {
  return {
    uri: s.matching("uri", "", /^mongodb(\+srv)?:\/\/\S+$/, "a mongodb:// or mongodb+srv:// URI"),
    host: s.matching("host", "127.0.0.1", /^[A-Za-z0-9._:,-]+$/, "a host name or IP address", false),
    port: s.integer("port", 27017, 1, 65535),
    user: s.string("user", ""),
    password: password(s, path, warnings),
    database: s.identifier("database", "edxapp"),
    auth_source: s.matching("auth_source", "", IDENTIFIER, IDENTIFIER_EXPECTED),
    tls: s.boolean("tls", false),
    use_split_mongo: s.boolean("use_split_mongo", true),
  };
}

function validateLogs(s: Section, path: (value: string) => string): LogsConfig {
  return {
    paths: s.strings("paths", ["/openedx/data/logs/tracking.log"]).map(path),
    exclude: s.strings("exclude", []).map(path),
    format: s.choice("format", LOG_FORMATS, "auto"),
    max_file_size: s.size("max_file_size", "1M"),
    upload_timeout: s.duration("upload_timeout", "15m"),
  };
}

const LOG_FIELD = /^[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*$/;

/**
 * [privacy] (DESIGN §11). Each `columns` entry names a column of a table's layout, checked here
 * when the layout is known (preset or configured fields; otherwise at extraction). The key is
 * read now, so a missing or short key fails at load with how to make one.
 */
function validatePrivacy(
  s: Section,
  path: (value: string) => string,
  tables: TableConfig[],
  warnings: string[],
): PrivacyConfig {
  const pseudonymize = s.boolean("pseudonymize", false);
  const key_file = path(s.string("key_file", "/etc/panorama/pseudonym.key"));
  if (key_file === "") throw s.error("key_file", "expected a file path", "");
  const columns = s.strings("columns", []);
  const known = new Map(tables.map((t) => [t.name, t]));
  const presets = new Set(presetTables("openedx").map((t) => t.name));
  for (const entry of columns) {
    const [table, column, ...rest] = entry.split(".");
    if (!table || !column || rest.length > 0 || !IDENTIFIER.test(table) || !IDENTIFIER.test(column)) {
      throw s.error("columns", 'expected "table.column" names of letters, digits and underscores', entry);
    }
    const config = known.get(table);
    if (!config) {
      // A preset table left out by [extract] include/exclude: nothing of it is extracted.
      if (presets.has(table)) continue;
      const suggestion = closest(table, [...known.keys()]);
      throw s.error(
        "columns",
        `"${entry}": no table "${table}" in the extracted set${suggestion ? ` (did you mean "${suggestion}"?)` : ""}`,
      );
    }
    if (config.partition_fields.includes(column)) {
      throw s.error(
        "columns",
        `"${entry}": ${column} partitions ${table}, and partition values are part of object keys: it cannot be pseudonymized`,
      );
    }
    if (config.fields && !config.fields.some((f) => f.name === column)) {
      const suggestion = closest(
        column,
        config.fields.map((f) => f.name),
      );
      throw s.error(
        "columns",
        `"${entry}": table ${table} has no column "${column}"${suggestion ? ` (did you mean "${suggestion}"?)` : ""}`,
      );
    }
  }
  const log_fields = s.strings("log_fields", []);
  for (const field of log_fields) {
    if (!LOG_FIELD.test(field))
      throw s.error("log_fields", 'expected event field paths such as "event.user_name"', field);
  }
  let key: Uint8Array | null = null;
  if (pseudonymize) {
    const read = readKeyFile(key_file);
    if ("problem" in read) throw new ConfigError(s.error("key_file", read.problem).message, read.hint);
    key = read.key;
    const warning = keyFileWarning(key_file);
    if (warning) warnings.push(warning);
  }
  return { pseudonymize, key_file, columns, log_fields, key };
}

function validateFields(s: Section): FieldDef[] | null {
  const items = s.sections("fields", ["name", "type"]);
  if (!s.has("fields")) return null;
  if (items.length === 0)
    throw s.error("fields", "expected at least one field (omit the key for all columns)");
  const seen = new Set<string>();
  return items.map((item) => {
    const name = item.identifier("name", "");
    if (seen.has(name)) throw item.error("name", `duplicate field "${name}"`);
    seen.add(name);
    const type = item.string("type", "").toLowerCase();
    if (!(MYSQL_TYPES as readonly string[]).includes(type)) {
      const suggestion = closest(type, MYSQL_TYPES);
      throw item.error(
        "type",
        `expected a MySQL data type such as int, varchar, datetime, double${suggestion ? ` (did you mean "${suggestion}"?)` : ""}`,
        type,
      );
    }
    return { name, type };
  });
}

function resolveTables(
  top: Section,
  extractSection: Section,
  extract: Config["extract"],
  basePrefix: string,
  warnings: string[],
): TableConfig[] {
  const tables = new Map(presetTables(extract.preset).map((t) => [t.name, t]));
  const overridden = new Set<string>();
  for (const s of top.sections("tables", TABLE_KEYS)) {
    if (!s.has("name")) throw s.error("name", "required: the MySQL table name");
    const name = s.identifier("name", "");
    if (overridden.has(name)) throw s.error("name", `table "${name}" is configured twice`);
    overridden.add(name);
    const table: TableConfig = tables.get(name) ?? {
      name,
      source: "mysql",
      datalake_table: "",
      view: "",
      partition_fields: [],
      incremental: null,
      changed_field: null,
      fields: null,
    };
    // Configured by the operator: strict from now on (DESIGN §10).
    delete table.preset;
    if (s.has("datalake_table")) table.datalake_table = s.identifier("datalake_table", "");
    if (s.has("view")) table.view = s.identifier("view", "");
    if (s.has("partition_fields")) table.partition_fields = s.identifiers("partition_fields");
    if (s.has("fields")) table.fields = validateFields(s);
    if (s.has("incremental")) {
      const inc = s.section("incremental", ["timestamp_field", "overlap"]);
      if (!inc.has("timestamp_field"))
        throw inc.error("timestamp_field", "required: the column that says when a row changed");
      table.incremental = {
        timestamp_field: inc.identifier("timestamp_field", ""),
        overlap: inc.duration("overlap", "2 hours"),
      };
    }
    if (s.has("changed_field")) table.changed_field = s.identifier("changed_field", "") || null;
    if (table.incremental && table.partition_fields.length === 0) {
      throw s.error(
        "incremental",
        "an incremental table needs partition_fields (DESIGN §7: whole partitions are re-extracted)",
      );
    }
    if (table.fields) {
      const names = table.fields.map((f) => f.name);
      for (const field of table.partition_fields) {
        if (!names.includes(field))
          throw s.error("partition_fields", `"${field}" is not one of the table's fields`, field);
      }
      if (table.fields.length === table.partition_fields.length) {
        throw s.error("partition_fields", "every field is a partition field: the CSV would have no column");
      }
    }
    const forbidden = FORBIDDEN_FIELDS[name] ?? [];
    const readForPartitions = [...table.partition_fields, table.incremental?.timestamp_field ?? ""];
    const forbiddenKey = forbidden.find((f) => readForPartitions.includes(f));
    if (forbiddenKey) {
      throw s.error(
        table.partition_fields.includes(forbiddenKey) ? "partition_fields" : "incremental",
        `"${forbiddenKey}" of ${name} is never read (DESIGN §9): it cannot partition the table`,
      );
    }
    if (s.has("fields") && table.fields?.some((f) => forbidden.includes(f.name))) {
      warnings.push(
        `${top.origin.file}: ${s.path}: ${forbidden.join(", ")} of ${name} is never read; it is written as an empty column`,
      );
    }
    tables.set(name, table);
  }
  const known = [...tables.keys()];
  for (const key of ["include", "exclude"] as const) {
    for (const name of extract[key]) {
      if (tables.has(name)) continue;
      const suggestion = closest(name, known);
      throw extractSection.error(
        key,
        `unknown table "${name}"${suggestion ? ` (did you mean "${suggestion}"?)` : ""}; add it with [[tables]]`,
      );
    }
  }
  const selected = [...tables.values()].filter(
    (t) =>
      (extract.include.length === 0 || extract.include.includes(t.name)) && !extract.exclude.includes(t.name),
  );
  for (const table of selected) {
    table.datalake_table ||= `${basePrefix}_raw_${table.name}`;
    table.view ||= `${basePrefix}_table_${table.name}`;
  }
  return selected;
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
  try {
    const mode = statSync(file).mode & 0o777;
    if ((mode & 0o077) === 0) return null;
    return `${file} holds a secret and is readable by group or others (mode ${mode.toString(8).padStart(4, "0")}); run: chmod 600 ${file}`;
  } catch {
    return null;
  }
}
