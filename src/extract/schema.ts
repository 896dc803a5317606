// `schema pull`: the `[[tables]]` TOML of tables as information_schema describes them.
import { FORBIDDEN_FIELDS } from "../config/presets.ts";
import { IDENTIFIER } from "../config/reader.ts";
import type { TableConfig } from "../config/types.ts";
import type { ColumnInfo } from "./mysql.ts";

function tomlString(value: string): string {
  return JSON.stringify(value);
}

/** One `[[tables]]` block; the configured partitioning and incremental settings are kept. */
export function tableToml(name: string, columns: ColumnInfo[], configured: TableConfig | undefined): string {
  const forbidden = FORBIDDEN_FIELDS[name] ?? [];
  const lines = ["[[tables]]", `name = ${tomlString(name)}`];
  if (configured && configured.partition_fields.length > 0) {
    lines.push(`partition_fields = [${configured.partition_fields.map(tomlString).join(", ")}]`);
  }
  if (configured?.incremental) {
    lines.push(
      `incremental = { timestamp_field = ${tomlString(configured.incremental.timestamp_field)}, overlap = "${configured.incremental.overlap}s" }`,
    );
  }
  const extra = new Set(extraColumns(columns, configured));
  const field = (column: ColumnInfo): string => {
    const entry = `{ name = ${tomlString(column.name)}, type = ${tomlString(column.type)} },`;
    // A name the configuration would refuse: a comment, so that the file written still loads.
    if (!IDENTIFIER.test(column.name))
      return `  # ${entry}  # ${column.columnType}: not a name panorama reads (letters, digits, _)`;
    // Beyond the configured fields: a comment, so that pasting the block changes no layout;
    // uncommented, the column is extracted (a new CSV column: the next run reads in full).
    if (extra.has(column.name))
      return `  # ${entry}  # ${column.columnType}: not in the configured fields, not extracted today`;
    // A column never read stays in the fields: the layout must line up with upstream's raw table.
    return forbidden.includes(column.name)
      ? `  ${entry}  # never read: always an empty field (upstream's layout has it)`
      : `  ${entry}  # ${column.columnType}`;
  };
  lines.push("fields = [");
  // The configured fields first, in their order: the block pasted into [[tables]] writes the CSV
  // columns the objects already have (a preset's are upstream's), not in the database's order.
  const order = configured?.fields?.map((f) => f.name) ?? [];
  for (const name of order) {
    const column = columns.find((c) => c.name === name);
    lines.push(
      column
        ? field(column)
        : `  # ${tomlString(name)}: configured, not in this table${configured?.preset ? " (written as an empty field)" : ""}`,
    );
  }
  for (const column of columns) if (!order.includes(column.name)) lines.push(field(column));
  lines.push("]");
  return `${lines.join("\n")}\n`;
}

/** Columns of the table beyond the configured fields (none when the config takes every column). */
export function extraColumns(columns: ColumnInfo[], configured: TableConfig | undefined): string[] {
  const fields = configured?.fields;
  if (!fields) return [];
  return columns.map((c) => c.name).filter((name) => !fields.some((f) => f.name === name));
}
