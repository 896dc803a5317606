// The validated configuration, typed from its declaration (schema.ts) with what the loader adds.
// Keys keep the TOML spelling (snake_case) so that a key path in an error message is the same as
// the property path here.
import type { LOG_FORMATS, MODES, Parsed } from "./schema.ts";

export { LOG_FORMATS, MODES } from "./schema.ts";
export type Mode = (typeof MODES)[number];
export type LogFormat = (typeof LOG_FORMATS)[number];

/** A column of a table's layout; `type` is the MySQL data type without length, lower case. */
export type FieldDef = NonNullable<TableEntry["fields"]>[number];

/** overlap in seconds */
export type Incremental = NonNullable<TableEntry["incremental"]>;

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

type TableEntry = Parsed["tables"][number];

/** logs_bucket defaults to bucket, path to <state_dir>/datalake, base_partitions to [["lms", lms_host]] */
export type DatalakeConfig = Parsed["datalake"];
export type AwsConfig = Parsed["aws"];
/** password already read from password_file when that is set */
export type MysqlConfig = Omit<Parsed["mysql"], "password_file">;
export type MongodbConfig = Omit<Parsed["mongodb"], "password_file">;
/** full_every in seconds: a table is read in full at least this often (DESIGN §7); 0 = never forced */
export type ExtractConfig = Parsed["extract"];
/** max_file_size in uncompressed bytes per object, upload_timeout in seconds */
export type LogsConfig = Parsed["logs"];

export type ScheduleConfig = Parsed["schedule"] & {
  /** bad entries (each replaced by its default): `crontab` refuses them, the others warn */
  problems: string[];
};

/** textfile: the Prometheus textfile written after run, verify and log-ship; "" = none */
export type MetricsConfig = Parsed["metrics"];

export type PrivacyConfig = Parsed["privacy"] & {
  /** the key file's bytes, read at load when pseudonymize is on; null otherwise */
  key: Uint8Array | null;
};

export type Config = Omit<Parsed, "mysql" | "mongodb" | "tables" | "schedule" | "privacy"> & {
  /** absolute path of the file read, or null when no file was used */
  file: string | null;
  mysql: MysqlConfig;
  mongodb: MongodbConfig;
  /** the resolved table set: preset, include/exclude and [[tables]] overrides applied */
  tables: TableConfig[];
  schedule: ScheduleConfig;
  privacy: PrivacyConfig;
};
