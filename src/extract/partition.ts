// One partition (or a whole unpartitioned table) from MySQL into one spool file, over the
// connection it is given (see partition-pool.ts for several at once).
import type { Connection } from "mysql2";
import type { Config, TableConfig } from "../config/types.ts";
import { objectKey } from "../datalake/layout.ts";
import { type ManifestEntry, SpoolWriter, spoolDir } from "../datalake/spool.ts";
import { Pseudonymizer } from "../privacy/pseudonym.ts";
import { type ColumnKind, encodeHeader } from "./csv.ts";
import { type Cell, ident, streamCsv } from "./mysql.ts";
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

/** WHERE clause and values selecting one partition. `=` (not `<=>`, which MariaDB cannot serve
 * from an index) for values, IS NULL for the NULL partition. */
export function partitionWhere(table: TableConfig, values: Cell[]): { sql: string; values: Cell[] } {
  if (table.partition_fields.length === 0) return { sql: "", values: [] };
  const terms = table.partition_fields.map((f, i) => `${ident(f)} ${values[i] === null ? "IS NULL" : "= ?"}`);
  return { sql: ` WHERE ${terms.join(" AND ")}`, values: values.filter((v) => v !== null) };
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
