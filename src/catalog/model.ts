// What the catalog holds for a config (DESIGN §6): one raw table per configured table (every
// column a string, in field order minus the field partitions; partition keys = base partitions
// then field partitions), one typed view per table, and the tracking-logs table. Pure: the Glue
// calls (glue-input.ts) and the printed DDL (ddl.ts) are both made from these definitions, so
// they cannot drift apart.
import type { Config, FieldDef, TableConfig } from "../config/types.ts";
import { tableLocationPrefix } from "../datalake/layout.ts";
import { ConfigError } from "../errors.ts";
import { COURSE_STRUCTURE_FIELDS } from "../extract/course-structure-fields.ts";
import { logsBucket } from "../logship/upload.ts";
import { checkCatalogName, rawTrackingLogsName } from "./sql.ts";

export const OPEN_CSV_SERDE = "org.apache.hadoop.hive.serde2.OpenCSVSerde";
export const LAZY_SIMPLE_SERDE = "org.apache.hadoop.hive.serde2.lazy.LazySimpleSerDe";
export const TEXT_INPUT_FORMAT = "org.apache.hadoop.mapred.TextInputFormat";
export const TEXT_OUTPUT_FORMAT = "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat";

/** The CSV dialect of DESIGN §5, as OpenCSVSerde is told it. */
export const CSV_SERDE_PARAMETERS: Readonly<Record<string, string>> = {
  escapeChar: "\\",
  quoteChar: '"',
  separatorChar: ",",
};

/** The key of the tracking-logs table in --tables and in messages. */
export const TRACKING_LOGS = "tracking_logs";
export const TRACKING_LOGS_COLUMN = "event";
export const TRACKING_LOGS_KEYS = ["lms", "year", "month", "day"] as const;

export interface RawTable {
  /** the configured table ("courseware_studentmodule"), or "tracking_logs" */
  source: string;
  /** the Glue table */
  name: string;
  columns: string[];
  partitionKeys: string[];
  /** "s3://bucket/prefix/" (or "file:///dir/prefix/" for a local datalake, in printed DDL only) */
  location: string;
  serde: { library: string; parameters: Record<string, string> };
  /** table properties */
  parameters: Record<string, string>;
}

export interface ViewColumn {
  name: string;
  /** MySQL type (lower case) that decides the cast; partition keys are "varchar" */
  type: string;
}

export interface ViewDef {
  name: string;
  /** the raw table it reads */
  table: string;
  columns: ViewColumn[];
}

/** One configured table's catalog objects. */
export interface TableCatalog {
  table: RawTable;
  view: ViewDef;
}

/** `s3://bucket/prefix`, or the local datalake directory as a file URL. */
export function locationOf(config: Config, bucket: string, prefix: string): string {
  if (config.datalake.target === "local") {
    const root = config.datalake.path.replace(/\/+$/, "");
    return `file://${root}/${prefix}`;
  }
  return `s3://${bucket}/${prefix}`;
}

/** Types of the course structure fields when the config does not list them. */
function courseStructureFields(table: TableConfig): FieldDef[] {
  if (table.fields) return table.fields;
  return COURSE_STRUCTURE_FIELDS.map((name) => ({ name, type: name === "weight" ? "double" : "varchar" }));
}

/**
 * The fields of a table as the datalake holds them: course structures have fixed ones; a MySQL
 * table's come from the config or, when it lists none, from `columnsOf` (information_schema).
 */
export async function fieldsOf(
  table: TableConfig,
  columnsOf: (table: TableConfig) => Promise<FieldDef[]>,
): Promise<FieldDef[]> {
  if (table.source === "course_structures") return courseStructureFields(table);
  return table.fields ?? (await columnsOf(table));
}

function basePartitionKeys(config: Config): string[] {
  return config.datalake.base_partitions.map(([key]) => key);
}

/** The raw table and view of one configured table whose fields are known. */
export function tableCatalog(config: Config, table: TableConfig, fields: FieldDef[]): TableCatalog {
  const file = config.file;
  const name = checkCatalogName(table.datalake_table, `datalake_table of table "${table.name}"`, file);
  const viewName = checkCatalogName(table.view, `view of table "${table.name}"`, file);
  if (name === viewName) {
    throw new ConfigError(
      `${file ?? "configuration"}: table "${table.name}": datalake_table and view are both "${name}"`,
      "give the view another name: a view and a table cannot share a name in one database",
    );
  }
  const base = basePartitionKeys(config);
  // Glue and Athena keep names in lower case, and the CSV meets the columns by position: a
  // MySQL column named `Key` is the catalog's `key`, its header in the CSV unchanged.
  const lower = (name: string) => name.toLowerCase();
  const partitionKeys = [...base, ...table.partition_fields.map(lower)];
  const columns = fields
    .map((f) => f.name)
    .filter((n) => !table.partition_fields.includes(n))
    .map(lower);
  for (const column of [...columns, ...partitionKeys]) {
    checkCatalogName(column, `a field of table "${table.name}"`, file);
  }
  const clash = base.find((k) => fields.some((f) => lower(f.name) === k));
  if (clash) {
    throw new ConfigError(
      `${file ?? "configuration"}: table "${table.name}": field "${clash}" has the name of a base partition`,
      "leave the field out or rename the base partition ([datalake.base_partitions])",
    );
  }
  const prefix = tableLocationPrefix(config.datalake.base_prefix, table.name);
  return {
    table: {
      source: table.name,
      name,
      columns,
      partitionKeys,
      location: locationOf(config, config.datalake.bucket, prefix),
      serde: { library: OPEN_CSV_SERDE, parameters: { ...CSV_SERDE_PARAMETERS } },
      parameters: {
        EXTERNAL: "TRUE",
        classification: "csv",
        "skip.header.line.count": "1",
      },
    },
    view: {
      name: viewName,
      table: name,
      columns: [
        ...fields.map((f) => ({ ...f, name: lower(f.name) })),
        ...base.map((key) => ({ name: key, type: "varchar" })),
      ],
    },
  };
}

/** The tracking-logs table's name, checked as a catalog name. */
export function trackingLogsTableName(config: Config): string {
  return checkCatalogName(
    rawTrackingLogsName(config),
    "tracking-logs table (<base_prefix>_raw_tracking_logs)",
    config.file,
  );
}

/**
 * `<base_prefix>_raw_tracking_logs`: one string column, the event's JSON line. LazySimpleSerDe
 * splits fields on \001, which a JSON line never holds raw, so the whole line is one column;
 * Athena reads the `.gz` objects by their extension.
 */
export function trackingLogsTable(config: Config): RawTable {
  const bucket = logsBucket(config);
  const sameBucket = bucket === config.datalake.bucket;
  const prefix = sameBucket
    ? tableLocationPrefix(config.datalake.base_prefix, TRACKING_LOGS)
    : "tracking_logs/";
  return {
    source: TRACKING_LOGS,
    name: trackingLogsTableName(config),
    columns: [TRACKING_LOGS_COLUMN],
    partitionKeys: [...TRACKING_LOGS_KEYS],
    location: locationOf(config, bucket, prefix),
    serde: { library: LAZY_SIMPLE_SERDE, parameters: { "serialization.format": "1" } },
    parameters: { EXTERNAL: "TRUE", classification: "json" },
  };
}
