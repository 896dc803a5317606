// `catalog --print-ddl`: the Athena DDL equivalent to the Glue and Athena calls that `catalog`
// makes, made from the same definitions (model.ts), so it works without AWS and with a local
// datalake. Partitions are printed with ADD IF NOT EXISTS, so the script can be run again.
import { type RawTable, TEXT_INPUT_FORMAT, TEXT_OUTPUT_FORMAT, type ViewDef } from "./model.ts";
import type { PartitionRef } from "./partitions.ts";
import { hiveName, hiveString, sqlName } from "./sql.ts";
import { viewSql } from "./views.ts";

function properties(record: Record<string, string>): string {
  return Object.entries(record)
    .map(([key, value]) => `  ${hiveString(key)}=${hiveString(value)}`)
    .join(",\n");
}

/** CREATE EXTERNAL TABLE of a raw table (Glue's EXTERNAL property is what EXTERNAL says). */
export function createTableDdl(table: RawTable, database: string): string {
  const { EXTERNAL: _external, ...tableProperties } = table.parameters;
  const lines = [
    `CREATE EXTERNAL TABLE IF NOT EXISTS ${hiveName(database)}.${hiveName(table.name)} (`,
    table.columns.map((c) => `  ${hiveName(c)} string`).join(",\n"),
    ")",
  ];
  if (table.partitionKeys.length > 0) {
    lines.push(
      `PARTITIONED BY (\n${table.partitionKeys.map((k) => `  ${hiveName(k)} string`).join(",\n")}\n)`,
    );
  }
  lines.push(
    `ROW FORMAT SERDE ${hiveString(table.serde.library)}`,
    `WITH SERDEPROPERTIES (\n${properties(table.serde.parameters)}\n)`,
    `STORED AS INPUTFORMAT ${hiveString(TEXT_INPUT_FORMAT)}`,
    `OUTPUTFORMAT ${hiveString(TEXT_OUTPUT_FORMAT)}`,
    `LOCATION ${hiveString(table.location)}`,
    `TBLPROPERTIES (\n${properties(tableProperties)}\n);`,
  );
  return lines.join("\n");
}

export function createViewDdl(view: ViewDef, database: string): string {
  return `${viewSql(view, database)};`;
}

export function addPartitionDdl(
  table: RawTable,
  database: string,
  partition: PartitionRef,
  location: string,
): string {
  const spec = table.partitionKeys.map((k, i) => `${hiveName(k)}=${hiveString(partition.values[i] ?? "")}`);
  return `ALTER TABLE ${hiveName(database)}.${hiveName(table.name)} ADD IF NOT EXISTS PARTITION (${spec.join(", ")}) LOCATION ${hiveString(location)};`;
}

export function dropDdl(name: string, database: string, kind: "TABLE" | "VIEW"): string {
  return kind === "TABLE"
    ? `DROP TABLE IF EXISTS ${hiveName(database)}.${hiveName(name)};`
    : `DROP VIEW IF EXISTS ${sqlName(database)}.${sqlName(name)};`;
}
