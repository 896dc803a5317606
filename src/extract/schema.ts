// `schema pull`: the `[[tables]]` TOML of tables as information_schema describes them.
import { FORBIDDEN_FIELDS } from "../config/presets.ts";
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
  lines.push("fields = [");
  for (const column of columns) {
    const entry = `{ name = ${tomlString(column.name)}, type = ${tomlString(column.type)} },`;
    // Kept visible but commented out, so nobody adds it back thinking it was forgotten.
    lines.push(
      forbidden.includes(column.name)
        ? `  # ${entry}  never extracted`
        : `  ${entry}  # ${column.columnType}`,
    );
  }
  lines.push("]");
  return `${lines.join("\n")}\n`;
}
