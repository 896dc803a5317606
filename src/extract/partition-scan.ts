// Every partition of a table from one scan. Read one query per partition, a full read costs the
// server an index look-up per row (courseware_studentmodule by course_id: 4 to 4.5 s of server
// time for 1 M rows, against 0.75 s for one scan in key order). When every partition is read,
// they are few enough to keep a file open for each, and the partition field is one plain column,
// one SELECT reads the table in key order and the WebAssembly encoder routes each row to its
// partition's file by its first cell: the rows of each file in the order its own query gives (the
// key's), the same bytes. A row of a partition that was not listed (created since), or a column
// the module does not encode, makes the scan give up before anything reaches the spool: the
// caller reads per partition.
import type { Connection } from "mysql2";
import type { Config } from "../config/types.ts";
import { type ManifestEntry, SpoolWriter, spoolDir } from "../datalake/spool.ts";
import { encodeHeader } from "./csv.ts";
import { type Cell, ident, streamCsv } from "./mysql.ts";
import { type PartitionJob, partitionKey, partitionPairs, selectList } from "./partition.ts";
import type { TablePlan } from "./table-plan.ts";
import { RoutingRefused } from "./wasm/rows-to-csv.ts";

/** Files open at once at most (one a partition), well under the usual limit of 1,024. */
export const SCAN_MAX_PARTITIONS = 256;

/** The scan cannot serve this read: nothing was kept, read per partition instead. */
export class ScanGaveUp extends Error {}

/**
 * Whether one scan can read these partitions: all of the table's, few, of one plain field. The
 * plan lists every partition of the table only when it is full: the partitions of a watermark
 * window are some of them, and a scan would meet the others' rows.
 */
export function scanApplies(
  config: Config,
  job: PartitionJob,
  read: Cell[][],
  plan: TablePlan,
  /** the partitions not read (unchanged): a scan reads them all or none */
  unread: number,
): boolean {
  return (
    !job.dryRun &&
    job.table.partition_fields.length === 1 &&
    plan.full &&
    read.length > 1 &&
    unread === 0 &&
    read.length <= SCAN_MAX_PARTITIONS &&
    config.datalake.compression === "none" &&
    !job.columns.some((c) => c.pseudonymized) &&
    read.every(([value]) => value === null || typeof value === "string" || typeof value === "number")
  );
}

interface Target {
  values: Cell[];
  writer: SpoolWriter;
}

/**
 * Read `read` (every partition of the table) with one query into their spool files; their
 * entries in partition order. Throws ScanGaveUp (nothing kept) when the scan cannot serve it.
 */
export async function extractByScan(
  connection: Connection,
  config: Config,
  job: PartitionJob,
  read: Cell[][],
): Promise<ManifestEntry[]> {
  const { table, columns, onRows } = job;
  const all: Target[] = [];
  try {
    for (const values of read) {
      const key = partitionKey(config, table, values);
      // Files written directly: 256 streams would keep their chunks in flight, and wait on them.
      const writer = await SpoolWriter.openDirect(spoolDir(config.state_dir), key);
      all.push({ values, writer });
      writer.write(encodeHeader(columns.map((c) => c.name)));
    }
    const kinds = columns.map((c) => c.kind);
    const field = ident(table.partition_fields[0]!);
    const sql = `SELECT ${field}, ${selectList(columns)} FROM ${ident(table.name)}`;
    const route = {
      keys: read.map(([value]) =>
        value === null || value === undefined ? null : Buffer.from(String(value), "utf8"),
      ),
      deliver: (part: number, csv: Uint8Array, rows: number) => {
        onRows?.(rows);
        return all[part]!.writer.write(csv, rows);
      },
    };
    await streamCsv(connection, sql, [], kinds, () => undefined, undefined, null, route).catch((error) => {
      throw error instanceof RoutingRefused ? new ScanGaveUp(`${table.name}: ${error.message}`) : error;
    });
    const entries: ManifestEntry[] = [];
    for (const t of all) {
      entries.push(
        await t.writer.commit({ table: table.name, partitions: partitionPairs(config, table, t.values) }),
      );
    }
    return entries;
  } catch (error) {
    await Promise.all(all.map((t) => t.writer.abort()));
    throw error;
  }
}
