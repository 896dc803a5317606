// The validated configuration. Keys keep the TOML spelling (snake_case) so that a key path in an
// error message is the same as the property path here.

export const MODES = ["DEMO", "FREE", "SAAS", "CUSTOM"] as const;
export type Mode = (typeof MODES)[number];

export const LOG_FORMATS = ["auto", "json", "prefixed", "docker", "cri"] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

export interface FieldDef {
  name: string;
  /** MySQL data type without length, lower case: "int", "varchar", "datetime", ... */
  type: string;
}

export interface Incremental {
  timestamp_field: string;
  /** overlap in seconds */
  overlap: number;
}

/** Where a table's rows come from. */
export type TableSource = "mysql" | "course_structures";

export interface TableConfig {
  name: string;
  source: TableSource;
  /** Glue table name: default `<base_prefix>_raw_<name>` */
  datalake_table: string;
  /** Athena view name: default `<base_prefix>_table_<name>` */
  view: string;
  partition_fields: string[];
  incremental: Incremental | null;
  /** null = every column of the MySQL table, in table order (read from information_schema) */
  fields: FieldDef[] | null;
  /**
   * A timestamp every save updates (DESIGN §7): with an auto-increment primary key it lets an
   * unchanged table be skipped; null = none (an incremental table then uses its timestamp_field).
   */
  changed_field: string | null;
  /**
   * A preset table the operator did not configure in [[tables]] (DESIGN §10): when the table is
   * absent it is skipped, and its missing columns are written as empty fields. Configured tables
   * are strict: missing is an error.
   */
  preset?: boolean;
}

export interface DatalakeConfig {
  target: "s3" | "local";
  path: string;
  bucket: string;
  /** defaults to bucket */
  logs_bucket: string;
  base_prefix: string;
  region: string;
  database: string;
  workgroup: string;
  athena_results_bucket: string;
  account_id: string;
  compression: "none" | "gzip";
  kms_key_arn: string;
  endpoint: string;
  glue_endpoint: string;
  athena_endpoint: string;
  /** ordered (key, value) pairs; default [["lms", lms_host]] */
  base_partitions: [string, string][];
}

export interface AwsConfig {
  access_key_id: string;
  secret_access_key: string;
  session_token: string;
}

export interface MysqlConfig {
  host: string;
  port: number;
  user: string;
  /** already read from password_file when that is set */
  password: string;
  database: string;
  socket: string;
  ssl: boolean;
  connections: number;
}

export interface MongodbConfig {
  uri: string;
  host: string;
  port: number;
  user: string;
  password: string;
  database: string;
  auth_source: string;
  tls: boolean;
  use_split_mongo: boolean;
}

export interface ExtractConfig {
  preset: "openedx" | "none";
  include: string[];
  exclude: string[];
  /** seconds: a table is read in full at least this often (DESIGN §7); 0 = never forced */
  full_every: number;
}

export interface LogsConfig {
  paths: string[];
  exclude: string[];
  format: LogFormat;
  /** uncompressed bytes per object */
  max_file_size: number;
  /** seconds */
  upload_timeout: number;
}

export interface ScheduleConfig {
  run: string;
  log_ship: string;
  /** `verify --repair`, daily by default; "" = no cron line */
  verify: string;
  /** bad entries (each replaced by its default): `crontab` refuses them, the others warn */
  problems: string[];
}

export interface MetricsConfig {
  /** Prometheus textfile written after run, verify and log-ship; "" = none */
  textfile: string;
}

export interface PrivacyConfig {
  pseudonymize: boolean;
  key_file: string;
  /** extra "table.column" names; the preset's personal columns are always included */
  columns: string[];
  /** extra event field paths ("event.user_name"); the defaults are always included */
  log_fields: string[];
  /** the key file's bytes, read at load when pseudonymize is on; null otherwise */
  key: Uint8Array | null;
}

export interface Config {
  /** absolute path of the file read, or null when no file was used */
  file: string | null;
  mode: Mode;
  lms_host: string;
  state_dir: string;
  datalake: DatalakeConfig;
  aws: AwsConfig;
  mysql: MysqlConfig;
  mongodb: MongodbConfig;
  extract: ExtractConfig;
  /** the resolved table set: preset, include/exclude and [[tables]] overrides applied */
  tables: TableConfig[];
  logs: LogsConfig;
  schedule: ScheduleConfig;
  metrics: MetricsConfig;
  privacy: PrivacyConfig;
}
