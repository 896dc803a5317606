// One partition (or a whole unpartitioned table) from MySQL into one spool file, over the
// connection it is given (see partition-pool.ts for several at once).
import type { Connection } from "mysql2";
import type { Config, TableConfig } from "../config/types.ts";
import { objectKey } from "../datalake/layout.ts";
import { type ManifestEntry, SpoolWriter, spoolDir } from "../datalake/spool.ts";
import { Pseudonymizer } from "../privacy/pseudonym.ts";
import { type ColumnKind, encodeHeader } from "./csv.ts";
import { type Cell, ident, query, streamCsv } from "./mysql.ts";
import type { PseudonymColumns } from "./raw-csv.ts";
import type { SpareConnections } from "./spare-connections.ts";

/** Hive's name for a NULL partition value; Athena reads it back as NULL. */
export const NULL_PARTITION = "__HIVE_DEFAULT_PARTITION__";

export interface Column {
  name: string;
  kind: ColumnKind;
  /** never read (DESIGN §9) or absent from the table (§10): selected as NULL, written empty */
  empty?: boolean;
  /** a personal value, written as its pseudonym (DESIGN §11) */
  pseudonymized?: boolean;
  /** the server's column is NOT NULL (the content checksum need not tell NULL from a value) */
  notNull?: boolean;
}

/** The select list: each column, or a NULL in its place (the column itself is never named). */
export function selectList(columns: Column[]): string {
  return columns.map((c) => (c.empty ? `NULL AS ${ident(c.name)}` : ident(c.name))).join(", ");
}

/** What a partition extraction needs to know of its table. */
export interface PartitionJob {
  table: TableConfig;
  /** CSV columns: the fields minus the partition fields */
  columns: Column[];
  /** read and encode every row, keep nothing: the entries say what the files would be */
  dryRun?: boolean;
  /** told the rows of each chunk as it is written (live progress inside a partition) */
  onRows?: (rows: number) => void;
  /** where more connections come from and go back to; without it they are opened for the job */
  spares?: SpareConnections;
}

/** The partition pairs of a spool file: base partitions then the field partitions' values. */
export function partitionPairs(config: Config, table: TableConfig, values: Cell[]): [string, string][] {
  const fieldPairs = table.partition_fields.map((name, i): [string, string] => {
    const value = values[i];
    if (value === null || value === undefined) return [name, NULL_PARTITION];
    if (value instanceof Uint8Array) return [name, Buffer.from(value).toString("hex")];
    return [name, String(value)];
  });
  return [...config.datalake.base_partitions, ...fieldPairs];
}

/** The object key of one partition of `table` (its values in partition_fields order). */
export function partitionKey(config: Config, table: TableConfig, values: Cell[]): string {
  return objectKey({
    basePrefix: config.datalake.base_prefix,
    table: table.name,
    partitions: partitionPairs(config, table, values),
    compression: config.datalake.compression,
  });
}

/**
 * `SELECT <fields>[, <aggregates>] <from> GROUP BY <fields>`, each partition a group. A text
 * column's collation folds values that are partitions of their own here ('MITx' and 'mitx', 'a'
 * and 'a ', 'é' and 'e' under a `_ci` collation): grouped by the fields alone, the rows of both
 * are one group, named by either spelling from one query to the next. So each group also says
 * whether it holds one spelling (the least and greatest bytes agree: the same pass over the
 * fields' index); only when one holds several is the query grouped by the bytes as well, which
 * takes a temporary table (8 s instead of 0.2 s for 1 M rows in 200 partitions).
 */
export async function groupByPartition(
  connection: Connection,
  fields: ReadonlyArray<string>,
  aggregates: string,
  from: string,
  values: unknown[],
): Promise<Cell[][]> {
  const names = fields.map(ident).join(", ");
  const select = aggregates ? `${names}, ${aggregates}` : names;
  const bytes = fields.map((f) => `CAST(${ident(f)} AS BINARY)`);
  const oneSpelling = bytes.map((b) => `MIN(${b}) = MAX(${b})`).join(" AND ");
  const rows = await query<Cell[]>(
    connection,
    `SELECT ${select}, ${oneSpelling} ${from} GROUP BY ${names}`,
    values,
    true,
  );
  // NULL: the NULL partition, one group whatever the collation.
  if (rows.every((row) => row[row.length - 1] === null || Number(row[row.length - 1]) === 1)) {
    return rows.map((row) => row.slice(0, -1));
  }
  return query<Cell[]>(
    connection,
    `SELECT ${select} ${from} GROUP BY ${names}, ${bytes.join(", ")}`,
    values,
    true,
  );
}

/** WHERE clause and values selecting one partition. `=` (not `<=>`, which MariaDB cannot serve
 * from an index) for values, IS NULL for the NULL partition; a text value is also compared as
 * its bytes, as groupByPartition() lists it, so that the rows of a spelling the collation folds
 * into it stay out. */
export function partitionWhere(table: TableConfig, values: Cell[]): { sql: string; values: Cell[] } {
  if (table.partition_fields.length === 0) return { sql: "", values: [] };
  const terms: string[] = [];
  const params: Cell[] = [];
  for (const [i, f] of table.partition_fields.entries()) {
    const value = values[i] ?? null;
    if (value === null) terms.push(`${ident(f)} IS NULL`);
    else if (typeof value === "string") {
      terms.push(
        `${ident(f)} = ? AND CAST(CONVERT(${ident(f)} USING utf8mb4) AS BINARY) = CAST(? AS BINARY)`,
      );
      params.push(value, value);
    } else {
      terms.push(`${ident(f)} = ?`);
      params.push(value);
    }
  }
  return { sql: ` WHERE ${terms.join(" AND ")}`, values: params };
}

/** The pseudonymized columns of a job, or null when there are none. */
export function pseudonymColumns(config: Config, columns: Column[]): PseudonymColumns | null {
  const indexes = columns.flatMap((c, i) => (c.pseudonymized ? [i] : []));
  if (indexes.length === 0) return null;
  const key = config.privacy.key;
  // Never write a personal value in clear because a key went missing on the way.
  if (!key) throw new Error("pseudonymized columns without a pseudonym key");
  return { columns: indexes, pseudonymizer: new Pseudonymizer(key) };
}

/** Stream one partition into a spool file; the file appears in the spool only when complete. */
export async function extractPartition(
  connection: Connection,
  config: Config,
  job: PartitionJob,
  values: Cell[],
): Promise<ManifestEntry> {
  const { table, columns, dryRun, onRows } = job;
  const partitions = partitionPairs(config, table, values);
  const key = partitionKey(config, table, values);
  const writer = dryRun
    ? SpoolWriter.discarding(key)
    : await SpoolWriter.open(spoolDir(config.state_dir), key);
  try {
    writer.write(encodeHeader(columns.map((c) => c.name)));
    const kinds = columns.map((c) => c.kind);
    const where = partitionWhere(table, values);
    const sql = `SELECT ${selectList(columns)} FROM ${ident(table.name)}${where.sql}`;
    await streamCsv(
      connection,
      sql,
      where.values,
      kinds,
      (data, rows) => {
        onRows?.(rows);
        return writer.write(data, rows);
      },
      undefined,
      pseudonymColumns(config, columns),
    );
    return await writer.commit({ table: table.name, partitions });
  } catch (error) {
    await writer.abort();
    throw error;
  }
}
