// A table's primary key as information_schema describes it: what the unchanged probe
// (unchanged-probe.ts) and the primary-key ranges (pk-ranges.ts) rely on.
import type { Connection } from "mysql2";
import { query } from "./mysql.ts";

const INTEGER_TYPES = ["tinyint", "smallint", "mediumint", "int", "bigint"];

export interface PrimaryKey {
  /** the single column of the primary key */
  column: string;
  /** an integer column */
  integer: boolean;
  /** AUTO_INCREMENT: a new row always takes a larger key than any before */
  autoIncrement: boolean;
}

/** The table's single-column primary key; null without one (none, or several columns). */
export async function primaryKey(
  connection: Connection,
  database: string,
  table: string,
): Promise<PrimaryKey | null> {
  // Both sides name the table as constants: joined on the other side's TABLE_SCHEMA and
  // TABLE_NAME, the server opens every table of the schema to list COLUMNS (6–8 ms a table here
  // with 40 tables, against 0.5; an LMS has hundreds).
  const columns = await query<{ name: string; type: string; extra: string }>(
    connection,
    `SELECT c.COLUMN_NAME AS name, c.DATA_TYPE AS type, c.EXTRA AS extra
       FROM information_schema.STATISTICS s
       JOIN information_schema.COLUMNS c ON c.COLUMN_NAME = s.COLUMN_NAME
      WHERE s.TABLE_SCHEMA = ? AND s.TABLE_NAME = ? AND s.INDEX_NAME = 'PRIMARY'
        AND c.TABLE_SCHEMA = ? AND c.TABLE_NAME = ?`,
    [database, table, database, table],
  );
  return primaryKeyOf(columns);
}

/** The primary key made of its columns as information_schema gives them; null unless just one. */
export function primaryKeyOf(columns: { name: string; type: string; extra: string }[]): PrimaryKey | null {
  if (columns.length !== 1) return null;
  const column = columns[0]!;
  return {
    column: String(column.name),
    integer: INTEGER_TYPES.includes(String(column.type).toLowerCase()),
    autoIncrement: String(column.extra).toLowerCase().includes("auto_increment"),
  };
}
