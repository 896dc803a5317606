// DESIGN §7: an unpartitioned table, or a candidate partition (one that the overlap window
// selects, or any partition of a table without a watermark window), is not read again when it
// cannot have changed since its last successful read. A table with an auto-increment primary key
// and a timestamp every save updates (changed_field, or the incremental timestamp_field) is probed
// cheaply: an insert moves COUNT(*) and MAX(pk), a delete COUNT(*), a save MAX(timestamp). Any
// other table is probed by a checksum of the content it would read (content-checksum.ts). One
// query per table (one GROUP BY for a table's candidate partitions). Any doubt reads: no earlier
// probe, another layout, a timestamp too recent to trust, a row the checksum could not hash, a
// NULL partition value, `full_every` reached. A view is read on every run. Before any of these,
// the server's own record of the table's last change (the change marker, schema-snapshot.ts):
// when it is what it was at the last probe, no change has committed since, and no query is made.

import type { Connection } from "mysql2";
import type { Config } from "../config/types.ts";
import { log } from "../log.ts";
import { pseudonymState } from "../privacy/state.ts";
import { readProbes, type TableProbes } from "../state/probes.ts";
import { checksumMeasures, checksumSignature } from "./content-checksum.ts";
import { type Cell, ident, query } from "./mysql.ts";
import { groupByPartition } from "./partition.ts";
import type { TablePlan } from "./table-plan.ts";

/**
 * A timestamp this close to the server's clock may still be shared by a save that has not
 * happened yet (a DATETIME without fractions): such a signature is not trusted.
 */
const RECENT_SECONDS = 2;

export interface ProbeOutcome {
  /** the partitions to read ([[]] for an unpartitioned table that must be read) */
  read: Cell[][];
  /** the partitions not read because they cannot have changed ([[]]: the unpartitioned table) */
  unread: Cell[][];
  /** partitions not read because they cannot have changed (1 for an unpartitioned table) */
  unchanged: number;
  /**
   * what to record once the table succeeded, given the rows its read wrote; null: the table does
   * not qualify (forget it)
   */
  record: (readAt: Date, rowsRead: number) => TableProbes | null;
  /**
   * `read` and `unread` hold every partition as its own bytes: the probe grouped the whole table
   * exactly (groupByPartition), where the plan's full listing, a DISTINCT, may fold spellings
   * that the collation holds equal.
   */
  exact?: boolean;
}

export interface ProbeOptions {
  /** the partitions may be skipped: not `run --full`, not a full read forced by full_every */
  maySkip: boolean;
  /** seconds: an unpartitioned table not read for this long is read (0 or undefined: never forced) */
  fullEvery?: number;
}

/** The key a partition's signature is stored under. */
export function probeKey(values: Cell[]): string {
  return JSON.stringify(values.map((v) => (v instanceof Uint8Array ? Buffer.from(v).toString("hex") : v)));
}

/**
 * What the plan would write, beyond the rows: a change of it makes every partition read again
 * (the probe's signatures no longer count, and extract.ts reads the table in full).
 */
export function layoutFingerprint(config: Config, plan: TablePlan): string {
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

/** How a table's partitions are probed: the aggregates (SQL) and the signature made of them. */
interface Measure {
  sql: string;
  /** the aggregates' values, in order → a signature, or null when it is not to be trusted */
  signature: (values: unknown[]) => string | null;
  /** the cheap measure's columns: partitions are then probed through indexes (probeByIndex) */
  keys?: { pk: string; changed: string };
}

/** COUNT(*), MAX(pk) and MAX(timestamp): untrusted when the timestamp is NULL or too recent. */
function maxMeasure(pk: string, changed: string): Measure {
  return {
    sql: `COUNT(*) AS n, ${maxima(pk, changed)}`,
    signature: ([n, max, latest, recent]) =>
      Number(recent) === 1 || latest === null ? null : `${String(n)}/${String(max)}/${String(latest)}`,
    keys: { pk, changed },
  };
}

/** MAX(pk), MAX(timestamp), and whether that timestamp is too recent to trust. */
function maxima(pk: string, changed: string): string {
  const ts = ident(changed);
  return `MAX(${ident(pk)}) AS pk, MAX(${ts}) AS ts,
      MAX(${ts}) >= DATE_SUB(LEAST(UTC_TIMESTAMP(6), NOW(6)), INTERVAL ${RECENT_SECONDS} SECOND) AS recent`;
}

/** The content checksum (content-checksum.ts) of the columns the plan reads from the table. */
function checksumMeasure(plan: TablePlan): Measure {
  const columns = plan.columns.filter((c) => !c.empty);
  return { sql: checksumMeasures(columns), signature: ([n, s]) => checksumSignature(n, s) };
}

/**
 * The cheap measure when the table qualifies (auto-increment key, and a changed timestamp it
 * has), else the content checksum.
 */
function measureOf(config: Config, plan: TablePlan): Measure {
  const table = plan.table;
  const database = config.mysql.database;
  const changed = table.changed_field ?? table.incremental?.timestamp_field ?? null;
  if (changed === null) return checksumMeasure(plan);
  if (!plan.facts.columns.some((c) => c.name === changed)) {
    // A preset table on a release without the column just probes its content; a configured one says why.
    if (!table.preset) {
      log.warn(
        `${table.name}: changed_field "${changed}" not found in ${database}.${table.name}: the table is probed by a checksum of its content`,
        { table: table.name },
      );
    }
    return checksumMeasure(plan);
  }
  const key = plan.facts.primaryKey;
  return key?.autoIncrement ? maxMeasure(key.column, changed) : checksumMeasure(plan);
}

/** What the table's last probe left, read once for both steps of the probe. */
export interface LastProbe {
  /** the plan's fingerprint now */
  fp: string;
  /** the last probe, if made with the same fingerprint */
  previous: TableProbes | undefined;
  /** `full_every` is due for the unpartitioned table */
  due: boolean;
  /** the fingerprint of the last probe, whatever it was (undefined: none recorded) */
  earlierFingerprint: string | undefined;
}

/** The table's last probe and whether `full_every` is due (the plan's partitions play no part). */
export function lastProbe(config: Config, plan: TablePlan, fullEvery: number | undefined): LastProbe {
  const fp = layoutFingerprint(config, plan);
  const before = readProbes(config.state_dir)[plan.table.name];
  const previous = before?.fingerprint === fp ? before : undefined;
  const due =
    plan.table.partition_fields.length === 0 &&
    fullEvery !== undefined &&
    fullEvery > 0 &&
    (previous === undefined || Date.now() - Date.parse(previous.read_at) >= fullEvery * 1000);
  return { fp, previous, due, earlierFingerprint: before?.fingerprint };
}

/**
 * The outcome when the table's change marker (schema-snapshot.ts) is the one its last probe
 * recorded: nothing has been committed to it since, so every partition probed then is as it was,
 * and neither its partitions are listed nor its aggregates asked for. Null otherwise.
 */
export function unchangedSinceLastProbe(
  plan: TablePlan,
  options: ProbeOptions,
  { previous, due }: LastProbe,
): ProbeOutcome | null {
  // A view has no marker: it is read on every run.
  const marker = plan.facts.changeMarker;
  if (!options.maySkip || marker === null || due || previous?.marker !== marker) return null;
  const partitioned = plan.table.partition_fields.length > 0;
  return {
    read: [],
    unread: partitioned ? [] : plan.partitions,
    unchanged: partitioned ? Object.keys(previous.signatures).length : 1,
    record: () => previous,
    // Nothing to read, nothing listed.
    exact: true,
  };
}

/**
 * Which of the plan's partitions to read, and what to remember of the others: the probe by the
 * table's measure, and its change marker for the next run's unchangedSinceLastProbe.
 */
export async function probeUnchanged(
  connection: Connection,
  config: Config,
  plan: TablePlan,
  options: ProbeOptions,
  last: LastProbe,
): Promise<ProbeOutcome> {
  // A view is read on every run: probing it may cost what reading it does (a join, a slow filter).
  if (!plan.facts.baseTable) return readAll(plan);
  const outcome = await probeByMeasure(connection, config, plan, options, last);
  const marker = plan.facts.changeMarker;
  if (marker === null) return outcome;
  return {
    ...outcome,
    record: (readAt, rowsRead) => {
      const probes = outcome.record(readAt, rowsRead);
      return probes && { ...probes, marker };
    },
  };
}

export function readAll(plan: TablePlan): ProbeOutcome {
  return { read: plan.partitions, unread: [], unchanged: 0, record: () => null };
}

/** The probe by the table's measure: its aggregates, against their values at the last probe. */
async function probeByMeasure(
  connection: Connection,
  config: Config,
  plan: TablePlan,
  options: ProbeOptions,
  context: LastProbe,
): Promise<ProbeOutcome> {
  const { fp, previous, due } = context;
  const table = plan.table;
  const measure = measureOf(config, plan);
  const from = `FROM ${ident(table.name)}`;

  if (table.partition_fields.length === 0) {
    // A table read whatever the probe says (no earlier probe, a full read) with the cheap
    // measure counts the rows its read writes, not a COUNT(*) scan before it (1 M rows: 0.09 s of
    // the server's time, on the read's path); the maxima come from the indexes. Taken before the
    // read, as the full probe is: a row saved or inserted meanwhile is in the lake, not in the
    // maxima, and the next run reads again; a row deleted meanwhile is in neither the count nor
    // the lake.
    const counted = measure.keys && (!options.maySkip || due || previous === undefined) ? measure.keys : null;
    const sql = counted ? maxima(counted.pk, counted.changed) : measure.sql;
    const [row] = await query<unknown[]>(connection, `SELECT ${sql} ${from}`, [], true);
    const seen = row && !counted ? measure.signature(row) : null;
    const skip = options.maySkip && !due && seen !== null && previous?.signatures[""] === seen;
    return {
      read: skip ? [] : plan.partitions,
      unread: skip ? plan.partitions : [],
      unchanged: skip ? 1 : 0,
      record: (readAt, rowsRead) => {
        const signature = row && counted ? measure.signature([rowsRead, ...row]) : seen;
        return {
          fingerprint: fp,
          read_at: skip && previous ? previous.read_at : readAt.toISOString(),
          signatures: signature === null ? ({} as Record<string, string>) : { "": signature },
        };
      },
    };
  }

  const fields = table.partition_fields.map(ident).join(", ");
  let where = "";
  const values: unknown[] = [];
  if (table.incremental) {
    // The candidate partitions: the overlap window of this run (or, on a full read, of the next
    // one, so that the run after a full read can skip too).
    const since = plan.since ?? plan.nextWatermark;
    if (since === null) return readAll(plan);
    const tuple = table.partition_fields.length > 1 ? `(${fields})` : fields;
    const ts = ident(table.incremental.timestamp_field);
    where = ` WHERE ${tuple} IN (SELECT ${fields} ${from} WHERE ${ts} >= DATE_SUB(?, INTERVAL ? SECOND))`;
    values.push(since, table.incremental.overlap);
  }
  // Without a watermark window every partition is read on each run: each is a candidate.
  if (measure.keys) {
    return probeByIndex(connection, plan, options, measure.keys, { fp, previous, where, values });
  }
  // Every column of every row is hashed: grouped through the partition field's index, each row
  // was then looked up by its key (200,000 rows of 500 bytes in 50 partitions, 9.4 s), where a
  // scan of the table grouped in a temporary table takes 0.4 s.
  const rows = await groupByPartition(
    connection,
    table.partition_fields,
    measure.sql,
    `${from} USE INDEX FOR GROUP BY ()${where}`,
    values,
  );
  const width = table.partition_fields.length;
  const seen: Record<string, string> = {};
  for (const row of rows) {
    const partition = row.slice(0, width);
    // A NULL partition value is never trusted (the window's IN leaves it out the same way).
    if (partition.some((value) => value === null)) continue;
    const sig = measure.signature(row.slice(width));
    if (sig !== null) seen[probeKey(partition)] = sig;
  }
  const unchanged = (values: Cell[]) => {
    if (!options.maySkip || previous === undefined) return false;
    const k = probeKey(values);
    return seen[k] !== undefined && previous.signatures[k] === seen[k];
  };
  const listed = where === "" ? rows.map((row) => row.slice(0, width)) : null;
  return partitionOutcome(plan, unchanged, { fingerprint: fp, previous, signatures: seen }, {}, listed);
}

/**
 * The partitions read and not read, and what to record: the signatures seen, and `extra`.
 * `listed`: every partition, as the probe's grouping of the whole table found them (exact),
 * instead of the plan's listing.
 */
function partitionOutcome(
  plan: TablePlan,
  unchanged: (values: Cell[]) => boolean,
  seen: { fingerprint: string; previous: TableProbes | undefined; signatures: Record<string, string> },
  extra: Partial<TableProbes> = {},
  listed: Cell[][] | null = null,
): ProbeOutcome {
  const candidates = listed ?? plan.partitions;
  const read = candidates.filter((values) => !unchanged(values));
  const unread = candidates.filter(unchanged);
  const { previous } = seen;
  return {
    read,
    unread,
    exact: listed !== null || !plan.full,
    unchanged: unread.length,
    record: (readAt) => ({
      fingerprint: seen.fingerprint,
      read_at: read.length === 0 && previous ? previous.read_at : readAt.toISOString(),
      signatures: seen.signatures,
      ...extra,
    }),
  };
}

/**
 * The cheap probe of a partitioned table through its indexes, instead of one GROUP BY reading
 * every candidate row (3 s on 1 M courseware_studentmodule rows, 0.2 s this way): COUNT(*) and
 * MAX(pk) per partition come from the partition field's index (InnoDB's secondary indexes hold
 * the key), and the partitions with a save since the last probe from the timestamp's index: those
 * with a timestamp after the newest one seen then (not recorded when too recent to trust). An
 * insert moves the count and MAX(pk), a delete the count, a save the timestamp. A save stamped
 * before that newest timestamp (a clock behind the others, a transaction committing late) is
 * caught where the partition is read anyway, or at the full read `full_every` forces.
 */
async function probeByIndex(
  connection: Connection,
  plan: TablePlan,
  options: ProbeOptions,
  keys: { pk: string; changed: string },
  context: { fp: string; previous: TableProbes | undefined; where: string; values: unknown[] },
): Promise<ProbeOutcome> {
  const table = plan.table;
  const { fp, previous } = context;
  const from = `FROM ${ident(table.name)}`;
  const ts = ident(keys.changed);
  const rows = await groupByPartition(
    connection,
    table.partition_fields,
    `COUNT(*), MAX(${ident(keys.pk)})`,
    `${from}${context.where}`,
    context.values,
  );
  const [newest] = await query<Cell[]>(
    connection,
    `SELECT MAX(${ts}), MAX(${ts}) >= DATE_SUB(LEAST(UTC_TIMESTAMP(6), NOW(6)), INTERVAL ${RECENT_SECONDS} SECOND) ${from}`,
    [],
    true,
  );
  // A timestamp this recent may still be shared by a save that has not happened yet.
  const latest = newest && Number(newest[1]) !== 1 ? (newest[0] ?? null) : null;
  const width = table.partition_fields.length;
  let touched: Set<string> | null = null;
  if (options.maySkip && previous?.changed_max) {
    const saved = await groupByPartition(connection, table.partition_fields, "", `${from} WHERE ${ts} > ?`, [
      previous.changed_max,
    ]);
    touched = new Set(saved.map((row) => probeKey(row.slice(0, width))));
  }
  const seen: Record<string, string> = {};
  for (const row of rows) {
    const partition = row.slice(0, width);
    // A NULL partition value is never trusted (the window's IN leaves it out the same way).
    if (partition.some((value) => value === null)) continue;
    seen[probeKey(partition)] = `${String(row[width])}/${String(row[width + 1])}`;
  }
  const unchanged = (values: Cell[]) => {
    if (touched === null || previous === undefined) return false;
    const k = probeKey(values);
    return !touched.has(k) && seen[k] !== undefined && previous.signatures[k] === seen[k];
  };
  return partitionOutcome(
    plan,
    unchanged,
    { fingerprint: fp, previous, signatures: seen },
    latest === null ? {} : { changed_max: String(latest) },
    context.where === "" ? rows.map((row) => row.slice(0, width)) : null,
  );
}
