// Names and literals in the two SQL dialects the catalog speaks: Hive DDL (CREATE EXTERNAL TABLE,
// ALTER TABLE ... ADD PARTITION, backquoted names, backslash escapes in strings) and Athena's
// Trino SQL (views: double-quoted names, '' inside strings). Names are validated before they are
// quoted, so quoting is never what keeps a name from breaking the statement.
import type { Config } from "../config/types.ts";
import { ConfigError } from "../errors.ts";

/** `<base_prefix>_raw_tracking_logs`, the Glue table of the tracking logs (the policy names it too). */
export function rawTrackingLogsName(config: Config): string {
  return `${config.datalake.base_prefix}_raw_tracking_logs`;
}

/** Glue stores names folded to lower case; a mixed-case name would not be found again by it. */
const CATALOG_NAME = /^[a-z0-9_]{1,255}$/;

/**
 * A Glue/Athena table, view, column or database name from the config, checked: lower-case
 * letters, digits and `_`. `what` names the config key in the error ("view of table x").
 */
export function checkCatalogName(name: string, what: string, file: string | null): string {
  if (CATALOG_NAME.test(name)) return name;
  const lower = name.toLowerCase();
  const hint = CATALOG_NAME.test(lower)
    ? `write it in lower case ("${lower}"): Glue and Athena keep lower-case names only`
    : "use lower-case letters, digits and _ only (at most 255)";
  throw new ConfigError(`${file ?? "configuration"}: ${what}: "${name}" is not a valid catalog name`, hint);
}

/** `name` in Hive DDL. */
export function hiveName(name: string): string {
  return `\`${name.replaceAll("`", "``")}\``;
}

/** A Hive DDL string literal: backslash escapes, as Hive's parser reads them. */
export function hiveString(value: string): string {
  return `'${value.replaceAll("\\", "\\\\").replaceAll("'", "\\'")}'`;
}

/** "name" in Athena (Trino) SQL. */
export function sqlName(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/** An Athena (Trino) SQL string literal: a quote is doubled, a backslash is just a backslash. */
export function sqlString(value: string): string {
  return `'${value.replaceAll("'", "''")}'`;
}
