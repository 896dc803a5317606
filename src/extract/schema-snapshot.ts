// What information_schema says of the tables a run reads, asked once for all of them before they
// are planned (planAhead in extract.ts), or for one table when it is planned alone: their
// columns, whether each is a base table, its engine and estimated rows, and its primary key.
// Planning, the unchanged probe (unchanged-probe.ts) and the primary-key ranges (pk-ranges.ts)
// read these facts instead of asking for them again: asked table by table, that was four to six
// round trips a table.
import type { Connection } from "mysql2";
import { type ColumnInfo, columnInfo, query } from "./mysql.ts";

const INTEGER_TYPES = ["tinyint", "smallint", "mediumint", "int", "bigint"];

export interface PrimaryKey {
  /** the single column of the primary key */
  column: string;
  /** an integer column */
  integer: boolean;
  /** AUTO_INCREMENT: a new row always takes a larger key than any before */
  autoIncrement: boolean;
}

export interface TableFacts {
  /** in table order */
  columns: ColumnInfo[];
  /** a table, not a view */
  baseTable: boolean;
  /** the storage engine, lower case ("innodb"); "" for a view */
  engine: string;
  /** information_schema's estimate */
  estimatedRows: number;
  /** the single-column primary key; null without one (none, or several columns) */
  primaryKey: PrimaryKey | null;
}

/** table name → its facts; a table the database lacks is absent */
export type SchemaSnapshot = Map<string, TableFacts>;

export async function snapshotSchema(
  connection: Connection,
  database: string,
  names: string[],
): Promise<SchemaSnapshot> {
  const snapshot: SchemaSnapshot = new Map();
  const unique = [...new Set(names)];
  if (unique.length === 0) return snapshot;
  const among = `TABLE_SCHEMA = ? AND TABLE_NAME IN (${unique.map(() => "?").join(", ")})`;
  const values = [database, ...unique];
  const tables = await query<{
    name: string;
    type: string;
    engine: string | null;
    rows: number | string | null;
  }>(
    connection,
    `SELECT TABLE_NAME AS name, TABLE_TYPE AS type, ENGINE AS engine, TABLE_ROWS AS \`rows\`
       FROM information_schema.TABLES WHERE ${among}`,
    values,
  );
  const columns = await query<{
    table: string;
    name: string;
    type: string;
    columnType: string;
    nullable: string;
    extra: string;
  }>(
    connection,
    `SELECT TABLE_NAME AS \`table\`, COLUMN_NAME AS name, DATA_TYPE AS type, COLUMN_TYPE AS columnType,
            IS_NULLABLE AS nullable, EXTRA AS extra
       FROM information_schema.COLUMNS WHERE ${among} ORDER BY TABLE_NAME, ORDINAL_POSITION`,
    values,
  );
  const keys = await query<{ table: string; name: string }>(
    connection,
    `SELECT TABLE_NAME AS \`table\`, COLUMN_NAME AS name FROM information_schema.STATISTICS
      WHERE ${among} AND INDEX_NAME = 'PRIMARY'`,
    values,
  );
  for (const t of tables) {
    const name = String(t.name);
    const own = columns.filter((c) => String(c.table) === name);
    const key = keys.filter((k) => String(k.table) === name).map((k) => String(k.name));
    snapshot.set(name, {
      columns: own.map(columnInfo),
      baseTable: String(t.type) === "BASE TABLE",
      engine: String(t.engine ?? "").toLowerCase(),
      estimatedRows: Number(t.rows ?? 0),
      primaryKey: primaryKeyOf(key.map((column) => own.find((c) => String(c.name) === column))),
    });
  }
  return snapshot;
}

/** The primary key made of its columns as information_schema gives them; null unless just one. */
function primaryKeyOf(
  columns: ({ name: string; type: string; extra: string } | undefined)[],
): PrimaryKey | null {
  if (columns.length !== 1 || columns[0] === undefined) return null;
  const column = columns[0];
  return {
    column: String(column.name),
    integer: INTEGER_TYPES.includes(String(column.type).toLowerCase()),
    autoIncrement: String(column.extra).toLowerCase().includes("auto_increment"),
  };
}
