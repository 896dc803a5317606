// What information_schema says of the tables a run reads, asked once for all of them before they
// are planned (planAhead in extract.ts), or for one table when it is planned alone: their
// columns, whether each is a base table, its engine and estimated rows, its primary key, and the
// server's record of its last change (the change marker the unchanged probe compares first).
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
  /**
   * What the server records of the table's last change, as one comparable text (changeMarker);
   * null when that record cannot be trusted
   */
  changeMarker: string | null;
}

/** The columns of information_schema.TABLES (and the server) a change marker is made of. */
interface MarkerRow {
  engine: string | null;
  rows: number | string | null;
  updated: string | null;
  created: string | null;
  nextId: number | string | null;
  options: string | null;
  settled: number | string | null;
  tzOffset: number | string | null;
  server: string | null;
}

const MARKER_COLUMNS = `CAST(UPDATE_TIME AS CHAR) AS updated, CAST(CREATE_TIME AS CHAR) AS created,
       AUTO_INCREMENT AS nextId, CREATE_OPTIONS AS options, UPDATE_TIME <= NOW() - INTERVAL 2 SECOND AS settled,
       TIMESTAMPDIFF(SECOND, UTC_TIMESTAMP(), NOW()) AS tzOffset,
       CONCAT(@@hostname, ':', @@port, ' ', VERSION()) AS server`;

/**
 * InnoDB keeps in memory when a transaction last changed a table (information_schema.TABLES'
 * UPDATE_TIME: its commit on MySQL, the time it began on MariaDB; NULL after a restart, an
 * eviction from the dictionary cache, or ALTER TABLE ... FORCE). Taken before any probe or read
 * of the run, with what else a change moves (AUTO_INCREMENT and the row estimate: TRUNCATE leaves
 * UPDATE_TIME as it was), the session's offset from UTC (a clock change prints another time the
 * same) and the server: the same marker at the next run says nothing was committed in between.
 * Compared for equality, never as a time, since MariaDB's can go back. Null when not InnoDB,
 * split into MySQL partitions, not changed since the server started, or changed less than 2
 * seconds ago. A MariaDB transaction begun in that same second and committed after the probe
 * leaves the marker as it was: the next change, or the full read `full_every` forces, brings it
 * in (as for a save stamped before MAX(changed_field)).
 */
function changeMarker(row: MarkerRow): string | null {
  if (String(row.engine ?? "").toLowerCase() !== "innodb") return null;
  // EXCHANGE PARTITION swaps a partition's rows without a commit to the table.
  if (/partitioned/i.test(String(row.options ?? ""))) return null;
  if (row.updated === null || Number(row.settled) !== 1) return null;
  return JSON.stringify(
    [row.updated, row.created, row.nextId, row.rows, row.tzOffset, row.server].map(String),
  );
}

/**
 * MySQL 8 answers information_schema.TABLES from a cache refreshed once a day by default
 * (information_schema_stats_expiry); MariaDB and MySQL 5.7 ask the storage engine.
 */
export function cachesStatistics(version: string): boolean {
  return !/mariadb/i.test(version) && Number(/^(\d+)\./.exec(version)?.[1] ?? 0) >= 8;
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
  const asked = () =>
    query<MarkerRow & { name: string; type: string; version: string }>(
      connection,
      `SELECT TABLE_NAME AS name, TABLE_TYPE AS type, ENGINE AS engine, TABLE_ROWS AS \`rows\`,
         ${MARKER_COLUMNS}, VERSION() AS version
       FROM information_schema.TABLES WHERE ${among}`,
      values,
    );
  let tables = await asked();
  const version = String(tables[0]?.version ?? "");
  let markers = true;
  if (cachesStatistics(version)) {
    // This session asks the storage engine instead; without that, no markers are taken.
    markers = await query(connection, "SET SESSION information_schema_stats_expiry = 0").then(
      () => true,
      () => false,
    );
    if (markers) tables = await asked();
  }
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
      changeMarker: markers ? changeMarker(t) : null,
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
