// DESIGN §7: an unpartitioned table, or a partition that the overlap window selects, is not read
// again when it cannot have changed since its last successful read. It qualifies when it has an
// auto-increment primary key and a timestamp every save updates (changed_field, or the
// incremental timestamp_field): then an insert moves COUNT(*) and MAX(pk), a delete COUNT(*), a
// save MAX(timestamp). One query per table (one GROUP BY for a table's candidate partitions).
// Any doubt reads: no earlier probe, another layout, a timestamp too recent to trust, a NULL
// partition value, `full_every` reached.

import type { Connection } from "mysql2";
import type { Config } from "../config/types.ts";
import { log } from "../log.ts";
import { pseudonymState } from "../privacy/state.ts";
import { readProbes, type TableProbes } from "../state/probes.ts";
import { type Cell, ident, query } from "./mysql.ts";
import { primaryKey } from "./table-key.ts";
import type { TablePlan } from "./table-plan.ts";

/**
 * A timestamp this close to the server's clock may still be shared by a save that has not
 * happened yet (a DATETIME without fractions): such a signature is not trusted.
 */
const RECENT_SECONDS = 2;

export interface ProbeOutcome {
  /** the partitions to read ([[]] for an unpartitioned table that must be read) */
  read: Cell[][];
  /** partitions not read because they cannot have changed (1 for an unpartitioned table) */
  unchanged: number;
  /** what to record once the table succeeded; null: the table does not qualify (forget it) */
  record: (readAt: Date) => TableProbes | null;
}

export interface ProbeOptions {
  /** the partitions may be skipped: not `run --full`, not a full read forced by full_every */
  maySkip: boolean;
  /** seconds: an unpartitioned table not read for this long is read (0 or undefined: never forced) */
  fullEvery?: number;
}

async function hasColumn(connection: Connection, database: string, table: string, column: string) {
  const rows = await query<unknown>(
    connection,
    "SELECT 1 FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND COLUMN_NAME = ?",
    [database, table, column],
  );
  return rows.length > 0;
}

/** The key a partition's signature is stored under. */
export function probeKey(values: Cell[]): string {
  return JSON.stringify(values.map((v) => (v instanceof Uint8Array ? Buffer.from(v).toString("hex") : v)));
}

/** What the plan would write, beyond the rows: a change of it makes every partition read again. */
function fingerprint(config: Config, plan: TablePlan): string {
  // Pseudonyms (DESIGN §11) change the bytes too: which columns, under which key (its HMAC id,
  // never the key itself).
  const privacy = pseudonymState(config, plan.table.name);
  const layout = {
    columns: plan.columns,
    partition_fields: plan.table.partition_fields,
    base_prefix: config.datalake.base_prefix,
    base_partitions: config.datalake.base_partitions,
    compression: config.datalake.compression,
    privacy,
  };
  return Bun.hash.xxHash64(JSON.stringify(layout)).toString(16);
}

function signature(row: { n: unknown; pk: unknown; ts: unknown; recent: unknown }): string | null {
  if (Number(row.recent) === 1 || row.ts === null) return null;
  return `${String(row.n)}/${String(row.pk)}/${String(row.ts)}`;
}

/** Which of the plan's partitions to read, and what to remember of the others. */
export async function probeUnchanged(
  connection: Connection,
  config: Config,
  plan: TablePlan,
  options: ProbeOptions,
): Promise<ProbeOutcome> {
  const readAll: ProbeOutcome = { read: plan.partitions, unchanged: 0, record: () => null };
  const table = plan.table;
  const changed = table.changed_field ?? table.incremental?.timestamp_field ?? null;
  if (changed === null) return readAll;
  // A partitioned table without a watermark window reads every partition anyway.
  if (table.partition_fields.length > 0 && !table.incremental) return readAll;
  const key = await primaryKey(connection, config.mysql.database, table.name);
  if (!key?.autoIncrement) return readAll;
  if (!(await hasColumn(connection, config.mysql.database, table.name, changed))) {
    // A preset table on a release without the column just reads; a configured one says why.
    if (!table.preset) {
      log.warn(
        `${table.name}: changed_field "${changed}" not found in ${config.mysql.database}.${table.name}: the table is read on every run`,
        { table: table.name },
      );
    }
    return readAll;
  }
  const fp = fingerprint(config, plan);
  const before = readProbes(config.state_dir)[table.name];
  const previous = before?.fingerprint === fp ? before : undefined;
  const ts = ident(changed);
  const measures = `COUNT(*) AS n, MAX(${ident(key.column)}) AS pk, MAX(${ts}) AS ts,
    MAX(${ts}) >= DATE_SUB(LEAST(UTC_TIMESTAMP(6), NOW(6)), INTERVAL ${RECENT_SECONDS} SECOND) AS recent`;
  const from = `FROM ${ident(table.name)}`;

  if (table.partition_fields.length === 0) {
    const [row] = await query<{ n: unknown; pk: unknown; ts: unknown; recent: unknown }>(
      connection,
      `SELECT ${measures} ${from}`,
    );
    const seen = row ? signature(row) : null;
    const due =
      options.fullEvery !== undefined &&
      options.fullEvery > 0 &&
      (previous === undefined || Date.now() - Date.parse(previous.read_at) >= options.fullEvery * 1000);
    const skip = options.maySkip && !due && seen !== null && previous?.signatures[""] === seen;
    return {
      read: skip ? [] : plan.partitions,
      unchanged: skip ? 1 : 0,
      record: (readAt) => ({
        fingerprint: fp,
        read_at: skip && previous ? previous.read_at : readAt.toISOString(),
        signatures: seen === null ? ({} as Record<string, string>) : { "": seen },
      }),
    };
  }

  // The candidate partitions: the overlap window of this run (or, on a full read, of the next
  // one, so that the run after a full read can skip too).
  const since = plan.since ?? plan.nextWatermark;
  if (since === null || table.incremental === null) return readAll;
  const fields = table.partition_fields.map(ident).join(", ");
  const tuple = table.partition_fields.length > 1 ? `(${fields})` : fields;
  const rows = await query<Cell[]>(
    connection,
    `SELECT ${fields}, ${measures} ${from}
      WHERE ${tuple} IN (SELECT ${fields} ${from} WHERE ${ts} >= DATE_SUB(?, INTERVAL ? SECOND))
      GROUP BY ${fields}`,
    [since, table.incremental.overlap],
    true,
  );
  const width = table.partition_fields.length;
  const seen: Record<string, string> = {};
  for (const row of rows) {
    const sig = signature({ n: row[width], pk: row[width + 1], ts: row[width + 2], recent: row[width + 3] });
    if (sig !== null) seen[probeKey(row.slice(0, width))] = sig;
  }
  const read = plan.partitions.filter((values) => {
    if (!options.maySkip || previous === undefined) return true;
    const k = probeKey(values);
    return seen[k] === undefined || previous.signatures[k] !== seen[k];
  });
  return {
    read,
    unchanged: plan.partitions.length - read.length,
    record: (readAt) => ({
      fingerprint: fp,
      read_at: read.length === 0 && previous ? previous.read_at : readAt.toISOString(),
      signatures: seen,
    }),
  };
}
