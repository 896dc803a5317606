// What information_schema says of every table a run reads, asked once for all of them before
// they are planned (planAhead in extract.ts): their columns, whether each is a base table, its
// estimated rows, and its primary key. Asked table by table, that was four or five round trips a
// table: on a run that finds nothing changed, a fifth of the planning here, and more where
// MySQL is across a network.
import type { Connection } from "mysql2";
import { type ColumnInfo, query } from "./mysql.ts";
import { type PrimaryKey, primaryKeyOf } from "./table-key.ts";

export interface TableFacts {
  /** in table order */
  columns: ColumnInfo[];
  /** a table, not a view */
  baseTable: boolean;
  /** information_schema's estimate */
  estimatedRows: number;
  /** the single-column primary key; null without one */
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
  const tables = await query<{ name: string; type: string; rows: number | string | null }>(
    connection,
    `SELECT TABLE_NAME AS name, TABLE_TYPE AS type, TABLE_ROWS AS \`rows\` FROM information_schema.TABLES WHERE ${among}`,
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
      columns: own.map((c) => ({
        name: String(c.name),
        type: String(c.type).toLowerCase(),
        columnType: String(c.columnType),
        nullable: String(c.nullable).toUpperCase() !== "NO",
      })),
      baseTable: String(t.type) === "BASE TABLE",
      estimatedRows: Number(t.rows ?? 0),
      primaryKey: primaryKeyOf(
        key.map((column) => {
          const c = own.find((o) => String(o.name) === column);
          return { name: column, type: String(c?.type ?? ""), extra: String(c?.extra ?? "") };
        }),
      ),
    });
  }
  return snapshot;
}
