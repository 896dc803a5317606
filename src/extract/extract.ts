// Extract configured tables into the spool: plan each MySQL table (fields, partitions,
// watermark), stream every partition into its own spool file over a small connection pool,
// and advance the watermark only when the whole table succeeded; course structures come from
// MongoDB (course-structures.ts) into one file.
import type { Connection } from "mysql2";
import { modeAllows } from "../config/modes.ts";
import { FORBIDDEN_FIELDS } from "../config/presets.ts";
import { requiredFields } from "../config/tables.ts";
import type { Config, TableConfig } from "../config/types.ts";
import type { ManifestEntry } from "../datalake/spool.ts";
import { messageOf, PanoramaError } from "../errors.ts";
import { log } from "../log.ts";
import { namedPersonalColumns, pseudonymizedColumns } from "../privacy/fields.ts";
import { pseudonymsChanged, savePseudonymState } from "../privacy/state.ts";
import { syncFilesystem } from "../state/atomic.ts";
import { fullReadDue, markFullReadsOwed } from "../state/full-reads.ts";
import { saveProbes } from "../state/probes.ts";
import { forgetWatermark, readWatermarks, saveWatermark } from "../state/watermarks.ts";
import { compressionChanged, saveWrittenCompression } from "../state/written-compression.ts";
import { layoutChange, saveWrittenLayout, type WrittenLayout } from "../state/written-layout.ts";
import { columnKind } from "./csv.ts";
import type { ExtractEvents, TableSummary } from "./events.ts";
import {
  type Cell,
  type ColumnInfo,
  close,
  connect,
  ident,
  isConnectionLimit,
  isConnectionLost,
  isServerAway,
  isStatementStopped,
  mysqlError,
  notTheLmsDatabase,
  query,
  refuseHidden,
  similarTable,
  unnamableColumns,
} from "./mysql.ts";
import { type Column, groupByPartition, type PartitionJob, partitionKey } from "./partition.ts";
import { extractOverConnections, partitionFailure } from "./partition-pool.ts";
import { extractByScan, ScanGaveUp, scanApplies } from "./partition-scan.ts";
import { extractRanges, planRanges, RANGE_ROWS, RANGED_FROM_ROWS } from "./pk-ranges.ts";
import { type SchemaSnapshot, snapshotSchema } from "./schema-snapshot.ts";
import { ServerWait, sayDoneAgain } from "./server-wait.ts";
import { SpareConnections } from "./spare-connections.ts";
import type { TablePlan } from "./table-plan.ts";
import {
  lastProbe,
  type ProbeOutcome,
  probeUnchanged,
  readAll,
  unchangedSinceLastProbe,
} from "./unchanged-probe.ts";

/** A problem with one table (missing, misconfigured): reported, the other tables still run. */
export class TableError extends PanoramaError {}

/**
 * A table stopped by a cause that is not its own (the datalake cannot be written): the cause is
 * logged once for the whole run, so the table's summary is marked `shared`, not logged again.
 */
export class StoppedError extends PanoramaError {}

export interface ExtractOptions {
  full: boolean;
  /** seconds: an incremental table not read in full for this long is read in full (DESIGN §7) */
  fullEvery?: number;
  dryRun: boolean;
  /** called for each file as soon as it is complete in the spool (run uploads it at once) */
  onFile?: (entry: ManifestEntry) => void | Promise<void>;
  /** asked before each table: a reason to stop (the upload failed), or null to go on */
  stopReason?: () => string | null;
  events?: ExtractEvents;
}

/** A field of a table's layout (DESIGN §10: the layout never depends on the database). */
export interface LayoutField {
  name: string;
  /** the server's type when the column exists, else the configured one */
  type: string;
  /** written as an empty field: never read (DESIGN §9), or absent from this table (§10) */
  empty: boolean;
  /** the column exists and is NOT NULL */
  notNull: boolean;
}

export interface ResolvedFields {
  fields: LayoutField[];
  /** layout fields the table lacks (a preset table on another Open edX release) */
  missing: string[];
  /** the table's columns that exist, in table order */
  columns: ColumnInfo[];
}

/**
 * The fields of a table's layout, given its columns (null: the database lacks the table): the
 * configured ones, else every column in table order. A preset table the database lacks gives
 * null (skipped), and its missing columns stay in the layout as empty fields; a configured table
 * is strict: missing is an error.
 */
export function resolveFields(
  config: Config,
  table: TableConfig,
  columns: ColumnInfo[] | null,
  /** for a table the database lacks: the name of one of its tables close to this one's */
  similar?: string,
): ResolvedFields | null {
  const database = config.mysql.database;
  if (!columns) {
    if (table.preset) return null;
    throw new TableError(
      `${table.name}: table ${database}.${table.name} does not exist`,
      similar
        ? `${database} has a table ${similar}: fix the name in [[tables]] (or check [mysql] database)`
        : "fix the name in [[tables]], or leave the entry out, or check [mysql] database",
    );
  }
  const byName = new Map(columns.map((c) => [c.name, c]));
  const unnamable = table.fields ? null : unnamableColumns(table.name, columns);
  if (unnamable) throw new TableError(unnamable.message, unnamable.hint);
  const wanted = table.fields ?? columns;
  const forbidden = FORBIDDEN_FIELDS[table.name] ?? [];
  // A column that is never read is empty whether the table has it or not: not worth a word.
  const missing = wanted.filter((f) => !byName.has(f.name) && !forbidden.includes(f.name)).map((f) => f.name);
  if (missing.length > 0 && !table.preset) {
    throw new TableError(
      `${table.name}: configured column${missing.length > 1 ? "s" : ""} ${missing.map((m) => `"${m}"`).join(", ")} not found in ${database}.${table.name} (it has: ${columns.map((c) => c.name).join(", ")})`,
      "fix the table's fields in the config; `panorama schema pull` prints the real ones",
    );
  }
  // The server's type decides the encoding; the configured one only types the view.
  const fields = wanted.map((f) => {
    const column = byName.get(f.name);
    return {
      name: f.name,
      type: column?.type ?? f.type,
      empty: column === undefined || forbidden.includes(f.name),
      notNull: column?.nullable === false,
    };
  });
  return { fields, missing, columns };
}

/**
 * A table's plan, or null for a preset table this database does not have. `schema`: what
 * information_schema said of the run's tables; without it, it is asked for this table.
 */
export async function planTable(
  connection: Connection,
  config: Config,
  table: TableConfig,
  full: boolean,
  schema?: SchemaSnapshot,
): Promise<TablePlan | null> {
  const layout = await planLayout(connection, config, table, schema);
  return layout && listPartitions(connection, config, layout, full);
}

/**
 * A table's columns and facts, before its partitions are listed: a plan that reads nothing of a
 * partitioned table (no partitions, not full), the whole of an unpartitioned one.
 */
async function planLayout(
  connection: Connection,
  config: Config,
  table: TableConfig,
  schema?: SchemaSnapshot,
): Promise<TablePlan | null> {
  const facts = (schema ?? (await snapshotSchema(connection, config.mysql.database, [table.name]))).get(
    table.name,
  );
  const similar =
    facts || table.preset ? undefined : await similarTable(connection, config.mysql.database, table.name);
  const resolved = resolveFields(config, table, facts?.columns ?? null, similar);
  // What looks absent to a user without SELECT on it is not skipped or written empty in silence.
  const unseen = !resolved || !facts ? null : resolved.missing;
  if (table.preset && (unseen === null || unseen.length > 0)) {
    await refuseHidden(connection, config.mysql, table.name, unseen);
  }
  if (!resolved || !facts) return null;
  // information_schema lists no column of a view whose tables are gone: the server says why.
  if (resolved.columns.length === 0) await query(connection, `SELECT * FROM ${ident(table.name)} LIMIT 0`);
  const { fields, missing } = resolved;
  const existing = resolved.columns.map((c) => c.name);
  for (const [field, role] of requiredFields(table)) {
    if (!existing.includes(field)) {
      throw new TableError(
        `${table.name}: column "${field}" (${role}) not found in ${config.mysql.database}.${table.name}`,
        table.preset
          ? `the preset ${role === "partition field" ? "partitions this table by" : "reads this table incrementally by"} that column: configure the table in [[tables]] without it, or leave it out with [extract] exclude`
          : undefined,
      );
    }
  }
  const columns: Column[] = fields
    .filter((f) => !table.partition_fields.includes(f.name))
    .map((f) => ({
      name: f.name,
      kind: columnKind(f.type),
      ...(f.empty ? { empty: true } : {}),
      ...(f.notNull && !f.empty ? { notNull: true } : {}),
    }));
  if (columns.length === 0)
    throw new TableError(`${table.name}: no column left once partition fields are removed`);
  markPseudonymized(config, table, columns);
  const unpartitioned = table.partition_fields.length === 0;
  return {
    table,
    facts,
    columns,
    missing,
    partitions: unpartitioned ? [[]] : [],
    nextWatermark: null,
    since: null,
    full: unpartitioned,
  };
}

/** The partitions to read: all of them, or those in the overlap window of the watermark. */
async function listPartitions(
  connection: Connection,
  config: Config,
  layout: TablePlan,
  full: boolean,
): Promise<TablePlan> {
  const { table } = layout;
  if (table.partition_fields.length === 0) return layout;
  const from = `FROM ${ident(table.name)}`;
  let nextWatermark: string | null = null;
  let since: string | null = null;
  let where = "";
  const values: unknown[] = [];
  let wentBack = false;
  if (table.incremental) {
    const ts = ident(table.incremental.timestamp_field);
    const [max] = await query<{ max: string | null }>(connection, `SELECT MAX(${ts}) AS max ${from}`);
    nextWatermark = max?.max === null || max?.max === undefined ? null : String(max.max);
    const previous = readWatermarks(config.state_dir)[table.name]?.value;
    wentBack = !full && previous !== undefined && before(nextWatermark, previous);
    if (wentBack) {
      // Rows changed back to older saves keep their older timestamps: no window would find them.
      log.warn(
        `${table.name}: its newest ${table.incremental.timestamp_field} (${nextWatermark ?? "none: the table is empty"}) is older than the watermark (${previous}): its data went back (restored from a backup?), so every partition is read`,
        { table: table.name },
      );
    } else if (!full && previous) {
      where = ` WHERE ${ts} >= DATE_SUB(?, INTERVAL ? SECOND)`;
      values.push(previous, table.incremental.overlap);
      since = previous;
    }
  }
  // The whole table's listing is a DISTINCT through the index (milliseconds), which may fold
  // spellings the collation holds equal: the scan of a full read routes rows by their bytes and
  // gives up at one not listed, and a read partition by partition lists them exactly first
  // (exactRead). A window's listing is exact at once: it is small.
  const rows =
    where === ""
      ? await query<Cell[]>(
          connection,
          `SELECT DISTINCT ${table.partition_fields.map(ident).join(", ")} ${from}`,
          [],
          true,
        )
      : await groupByPartition(connection, table.partition_fields, "", `${from}${where}`, values);
  return {
    ...layout,
    partitions: rows,
    nextWatermark,
    since,
    full: where === "",
    ...(wentBack ? { wentBack } : {}),
  };
}

/**
 * What a full read reads partition by partition (the scan did not serve it): every partition
 * listed exactly, each spelling the collation folds its own (groupByPartition), less those the
 * probe found unchanged. The full listing was a DISTINCT, which may have folded them.
 */
async function exactRead(
  connection: Connection,
  config: Config,
  table: TableConfig,
  unread: Cell[][],
): Promise<Cell[][]> {
  const all = await groupByPartition(connection, table.partition_fields, "", `FROM ${ident(table.name)}`, []);
  const unchanged = new Set(unread.map((values) => partitionKey(config, table, values)));
  return all.filter((values) => !unchanged.has(partitionKey(config, table, values)));
}

/**
 * Whether a table's newest timestamp now is older than the watermark its last read left (none:
 * the table is empty). Both are the server's text of the same column: numbers compare as numbers,
 * dates and times as text.
 */
function before(newest: string | null, watermark: string): boolean {
  if (newest === null) return true;
  const number = /^-?\d+(\.\d+)?$/;
  if (number.test(newest) && number.test(watermark)) return Number(newest) < Number(watermark);
  return newest < watermark;
}

/**
 * Flag the columns written as pseudonyms (DESIGN §11). A `[privacy] columns` entry for a table
 * whose layout is only known now (every column of the table) is checked here.
 */
function markPseudonymized(config: Config, table: TableConfig, columns: Column[]): void {
  const named = namedPersonalColumns(config, table.name);
  for (const name of pseudonymizedColumns(config, table.name)) {
    const column = columns.find((c) => c.name === name);
    if (!column) {
      // A preset personal column that a [[tables]] entry's fields leave out is not written at
      // all: nothing of it leaves the host. Only an entry of [privacy] columns must be there.
      if (!named.has(name)) continue;
      throw new TableError(
        `${table.name}: [privacy] columns names "${table.name}.${name}", which is not a column of its layout (${columns.map((c) => c.name).join(", ")})`,
        "fix [privacy] columns in the config",
      );
    }
    if (column.empty) continue;
    if (column.kind !== "string") {
      throw new TableError(
        `${table.name}: [privacy] columns names "${table.name}.${name}", ${/^[aeiou]/.test(column.kind) ? "an" : "a"} ${column.kind} column; only text columns hold names, e-mail addresses or IP addresses`,
        "fix [privacy] columns in the config",
      );
    }
    column.pseudonymized = true;
  }
}

function emptySummary(table: string): TableSummary {
  return { table, rows: 0, files: 0, bytes: 0, seconds: 0, partitions: 0, watermark: null, error: null };
}

export async function extractTables(
  config: Config,
  tables: TableConfig[],
  options: ExtractOptions,
): Promise<TableSummary[]> {
  const summaries: TableSummary[] = [];
  // Opened at the first MySQL table: a run of course structures alone needs no connection here.
  let main: Connection | null = null;
  /** the pool's other connections, opened beside the main one and kept from table to table */
  const spares = new SpareConnections(config.mysql);
  const openMain = async () => {
    const opening = connect(config.mysql);
    spares.fill(config.mysql.connections - 1);
    try {
      return await opening;
    } catch (error) {
      // A spare opened at the same time took the last connection the server allows: it is the main one.
      const spare = isConnectionLimit(error) ? await spares.take(false) : null;
      if (!spare) throw error;
      spares.refuse(error);
      return spare;
    }
  };
  let unreachable: string | null = null;
  const shared = (table: TableConfig, error: string) => ({
    ...emptySummary(table.name),
    error,
    shared: true,
  });
  /** the server answered in this run: one that stops answering later is restarting, and waited for */
  let reached = false;
  /** this run's wait for servers that went away (MySQL's and MongoDB's) */
  const serverWait = new ServerWait();
  /** One table's summary; null for one the mode leaves out. */
  const extractOne = async (table: TableConfig): Promise<TableSummary | null> => {
    const stop = options.stopReason?.() ?? null;
    if (stop !== null) return shared(table, `not extracted: ${stop}`);
    if (table.source === "course_structures") {
      const gate = modeAllows(config.mode, "course-structures");
      if (gate.allowed) return extractStructuresTable(config, table, { ...options, mysql: main }, serverWait);
      log.info(`${table.name}: ${gate.reason}`);
      return null;
    }
    // Every MySQL table fails alike when the server cannot be reached: the cause is said once
    // with its fix, and each table only records it (the caller names them in one line). The
    // course structures still run, and the caller still stores and registers what it has.
    if (unreachable !== null) return shared(table, unreachable);
    // Dropped while it waited (the server restarted, a KILL, wait_timeout during the uploads):
    // opened again, as a spare is, rather than handed to a read that would fail.
    if (main !== null && main.state !== "authenticated") {
      main.destroy();
      main = null;
    }
    const opened = async (): Promise<Connection | null> => {
      try {
        if (unreachableAhead) throw unreachableAhead.error;
        main ??= reached ? await serverWait.whenBack(openMain, isServerAway) : await openMain();
        reached = true;
        return main;
      } catch (error) {
        unreachable = `not extracted: ${failureText(error)}`;
        options.events?.sharedFailure?.(failureText(error));
        return null;
      }
    };
    let connection = await opened();
    if (connection === null) return shared(table, unreachable ?? "not extracted");
    let failure: unknown = null;
    const attempt = async (from: Connection, prepared: Prepared | undefined) => {
      const summary = await extractTable(from, config, table, options, prepared, spares, (error) => {
        failure = error;
      });
      if (summary.error !== null) {
        // The failure may have left the connection mid-query or dead: start the next table afresh.
        from.destroy();
        main = null;
      }
      return summary;
    };
    const summary = await attempt(connection, ahead?.get(table));
    // A connection lost under the read (MySQL restarted, failed over, or cut): the table is read
    // again, once, when the server answers. What the first read put in the spool is written over
    // (the same keys), and nothing of it counted.
    if (summary.error === null || !isConnectionLost(failure) || (options.stopReason?.() ?? null) !== null) {
      return summary;
    }
    sayDoneAgain(failure, table.name);
    connection = await opened();
    if (connection === null) return summary;
    return attempt(connection, undefined);
  };
  /** the MySQL tables prepared before the first read (planAhead) */
  let ahead: Map<TableConfig, Prepared> | undefined;
  /** planAhead could not connect at all: the first MySQL table reports it without trying again */
  let unreachableAhead: { error: unknown } | null = null;
  try {
    const mysqlTables = tables.filter((t) => t.source !== "course_structures");
    if (mysqlTables.length > 1 && (options.stopReason?.() ?? null) === null) {
      const prepared = new Map<TableConfig, Prepared>();
      ahead = prepared;
      ({
        connection: main,
        unreachable: unreachableAhead,
        reached,
      } = await planAhead(config, mysqlTables, options, prepared, spares));
      const absent = mysqlTables.filter((t) => prepared.get(t)?.plan === null).map((t) => t.name);
      const wrong = notTheLmsDatabase(config.mysql, mysqlTables, absent);
      if (wrong) unreachableAhead = { error: wrong };
    }
    for (const table of tables) {
      const summary = await extractOne(table);
      if (summary === null) continue;
      options.events?.tableDone?.(summary);
      summaries.push(summary);
    }
  } finally {
    if (main) await close(main);
    await spares.closeAll();
  }
  return summaries;
}

/**
 * The course structures table (MongoDB): a server that cannot be reached fails this table only.
 * A connection lost mid-read (MongoDB restarted, a replica set changed its primary) has the table
 * read again, once, when the server answers (within the run's wait).
 */
async function extractStructuresTable(
  config: Config,
  table: TableConfig,
  options: ExtractOptions & { mysql: Connection | null },
  serverWait: ServerWait,
): Promise<TableSummary> {
  const started = performance.now();
  try {
    // Loaded only when needed: the MongoDB driver costs start-up time and memory to every run.
    const { extractCourseStructures } = await import("./course-structures.ts");
    const { isConnectionLost: isLost, waitForMongo } = await import("./mongodb.ts");
    try {
      return await extractCourseStructures(config, table, options);
    } catch (error) {
      if (!isLost(error) || (options.stopReason?.() ?? null) !== null) throw error;
      sayDoneAgain(error, table.name);
      await waitForMongo(config.mongodb, serverWait);
      return await extractCourseStructures(config, table, options);
    }
  } catch (error) {
    return {
      ...emptySummary(table.name),
      error: failureText(error),
      seconds: Math.round((performance.now() - started) / 10) / 100,
    };
  }
}

/** An error as a table's summary says it: the message, then the hint in parentheses. */
function failureText(error: unknown): string {
  const hint = error instanceof PanoramaError && error.hint ? ` (${error.hint})` : "";
  return `${messageOf(error)}${hint}`;
}

/**
 * Every partition in one scan (partition-scan.ts) when it applies, on a spare connection (given
 * back when the scan ends well); false when it does not apply or gave up (nothing kept): the
 * caller reads per partition.
 */
async function readByScan(
  config: Config,
  job: PartitionJob,
  read: Cell[][],
  /** the partitions the probe found unchanged */
  unread: number,
  plan: TablePlan,
  onEntry: (entry: ManifestEntry) => Promise<void>,
  spares: SpareConnections,
): Promise<boolean> {
  if (!scanApplies(config, job, read, plan, unread)) return false;
  // None allowed (the DBA's MAX_USER_CONNECTIONS): the main connection reads partition by partition.
  const connection = await spares.takeIfAllowed();
  if (!connection) return false;
  let entries: ManifestEntry[];
  try {
    entries = await extractByScan(connection, config, job, read);
  } catch (error) {
    // Given up or failed mid-scan, the connection may still be receiving rows: not kept.
    await close(connection);
    if (error instanceof ScanGaveUp) {
      log.info(`${error.message}: read one partition at a time`, { table: job.table.name });
      return false;
    }
    // The server's time limit (max_statement_time, max_execution_time) or a query killer stopped
    // the one long statement: a partition's statement is a fraction of it.
    if (isStatementStopped(error)) {
      log.warn(
        `${job.table.name}: the server stopped the scan of every partition (${messageOf(error)}): read one partition at a time`,
        { table: job.table.name },
      );
      return false;
    }
    throw partitionFailure(error, config, job.table.name);
  }
  spares.give(connection);
  log.debug(`${job.table.name}: ${entries.length} partitions read in one scan`, { table: job.table.name });
  // What the consumer throws (an upload that failed) is its own error, not MySQL's.
  for (const entry of entries) await onEntry(entry);
  return true;
}

/**
 * A big unpartitioned table in primary-key ranges over the pool, into its one file
 * (pk-ranges.ts); false when it is not one.
 */
async function readByRanges(
  main: Connection,
  config: Config,
  job: PartitionJob,
  read: Cell[][],
  plan: TablePlan,
  onEntry: (entry: ManifestEntry) => Promise<void>,
): Promise<boolean> {
  if (job.table.partition_fields.length > 0 || read.length !== 1 || job.dryRun) return false;
  const name = job.table.name;
  const ranged = await planRanges(main, config, name, RANGE_ROWS, RANGED_FROM_ROWS, plan.facts).catch(
    (error) => {
      throw mysqlError(error, config.mysql, `planning the read of ${name}`);
    },
  );
  if (!ranged) return false;
  const over = `${ranged.ranges.length} primary-key ranges over ${config.mysql.connections} connections`;
  log.debug(`${name}: ${over}`, { table: name });
  const entry = await extractRanges(main, config, job, ranged, config.mysql.connections);
  await onEntry(entry);
  return true;
}

/** A table's plan and the probe of what changed since its last read; plan null: no such table. */
type Prepared = { plan: null } | { plan: TablePlan; probe: ProbeOutcome; written: WrittenLayout };

/**
 * Plan a table and probe it for changes. Done ahead of the reads (planAhead): the probe is taken
 * before the read, so a change made in between is seen by the next run, never lost.
 */
async function prepareTable(
  connection: Connection,
  config: Config,
  table: TableConfig,
  options: ExtractOptions,
  schema?: SchemaSnapshot,
): Promise<Prepared> {
  // Listing a big table's partitions and probing them for changes takes seconds: said meanwhile.
  options.events?.tablePlanning?.(table.name);
  // Pseudonyms switched on or off, or a new key: older partitions hold the old values. Objects
  // written in another compression (verify --repair under another setting) are not what the
  // unchanged probe saw at the last read: read, so that each goes back to its variant.
  const failed = (error: unknown) => {
    throw error instanceof PanoramaError ? error : mysqlError(error, config.mysql, `reading ${table.name}`);
  };
  const layout = await planLayout(connection, config, table, schema).catch(failed);
  if (!layout) return { plan: null };
  const last = lastProbe(config, layout, options.fullEvery);
  const written = {
    fingerprint: last.fp,
    columns: layout.columns.map((c) => c.name),
    partitions: table.partition_fields,
  };
  const layoutChanged = layoutChange(config.state_dir, table.name, written, last.earlierFingerprint);
  if (layoutChanged && table.partition_fields.length > 0) {
    log.warn(
      `${table.name}: its layout changed since its objects were written (${layoutChanged}): every partition is read again, so that none keeps the old one`,
      { table: table.name },
    );
  }
  const full =
    options.full ||
    fullReadDue(config, table, options.fullEvery) ||
    pseudonymsChanged(config, table.name) ||
    compressionChanged(config, table.name) ||
    layoutChanged !== null;
  const probeOptions = {
    maySkip: !full,
    ...(options.fullEvery !== undefined ? { fullEvery: options.fullEvery } : {}),
  };
  // Nothing committed to it since its last probe: its partitions are not even listed.
  const unchanged = unchangedSinceLastProbe(layout, probeOptions, last);
  if (unchanged) return { plan: layout, probe: unchanged, written };
  const plan = await listPartitions(connection, config, layout, full).catch(failed);
  const probing = plan.wentBack ? { ...probeOptions, maySkip: false } : probeOptions;
  // Owed until its stale objects are deleted, as after `run --full`: the watermark the read saves
  // no longer shows the data went back, should the run die before the deletions.
  if (plan.wentBack && !options.dryRun) markFullReadsOwed(config.state_dir, [table.name]);
  const probe = await probeUnchanged(connection, config, plan, probing, last).catch((error) => {
    // A probe is only a shortcut: stopped by the DBA's time limit or a KILL QUERY, the table is read.
    if (!isStatementStopped(error))
      throw mysqlError(error, config.mysql, `probing ${table.name} for changes`);
    log.info(
      `${table.name}: the server stopped the probe for changes (${messageOf(error)}): the table is read`,
      {
        table: table.name,
      },
    );
    return readAll(plan);
  });
  return { plan, probe, written };
}

/**
 * Every MySQL table planned and probed before the first read, over `mysql.connections`
 * connections at once: an hourly run that finds nothing changed is mostly these probes (content
 * checksums are server scans), which the connections overlap. The reads come after, on the same
 * connections: the first healthy one is returned for the reads (null when none is left), the
 * others go to `spares`. A table whose preparation failed is prepared again in its turn, which
 * reports the failure.
 */
async function planAhead(
  config: Config,
  tables: TableConfig[],
  options: ExtractOptions,
  prepared: Map<TableConfig, Prepared>,
  spares: SpareConnections,
): Promise<{ connection: Connection | null; unreachable: { error: unknown } | null; reached: boolean }> {
  let next = 0;
  const healthy: Connection[] = [];
  let connected = false;
  let unreachable: { error: unknown } | null = null;
  /** a connection refused for a limit (the DBA's MAX_USER_CONNECTIONS) */
  let refusal: unknown;
  /**
   * What information_schema says of them all (undefined: it could not be asked, each table asks
   * for itself), asked by the first connection, and the order they are prepared in
   */
  let planning: Promise<{ schema: SchemaSnapshot | undefined; order: TableConfig[] }> | null = null;
  const worker = async () => {
    let connection: Connection | null = null;
    while (next < tables.length) {
      try {
        connection ??= await connect(config.mysql);
        connected = true;
      } catch (error) {
        // Refused for a limit while another is open: the others prepare its tables.
        if (isConnectionLimit(error)) refusal ??= error;
        // Not waited for again table after table: the reads say it once, with its fix.
        unreachable ??= { error };
        return;
      }
      planning ??= snapshotSchema(
        connection,
        config.mysql.database,
        tables.map((t) => t.name),
      )
        .catch(() => undefined)
        .then((schema) => ({ schema, order: largestFirst(tables, schema) }));
      const { schema, order } = await planning;
      // The other connections may have taken the last tables while this one connected.
      if (next >= order.length) break;
      const table = order[next++]!;
      try {
        prepared.set(table, await prepareTable(connection, config, table, options, schema));
      } catch {
        // The failure may have left the connection mid-query or dead: the next table gets another.
        connection.destroy();
        connection = null;
      }
    }
    if (connection !== null) healthy.push(connection);
  };
  await Promise.all(Array.from({ length: Math.min(config.mysql.connections, tables.length) }, worker));
  for (const connection of healthy.slice(1)) spares.give(connection);
  if (connected && refusal !== undefined) spares.refuse(refusal);
  return { connection: healthy[0] ?? null, unreachable: connected ? null : unreachable, reached: connected };
}

/**
 * The tables, the largest first by information_schema's estimate: a big table's probe (a
 * checksum or COUNT(*) of every row) taken last would leave the other connections idle while it
 * runs. In their own order when the estimate could not be had.
 */
function largestFirst(tables: TableConfig[], schema: SchemaSnapshot | undefined): TableConfig[] {
  const rows = (table: TableConfig) => schema?.get(table.name)?.estimatedRows ?? 0;
  return tables.toSorted((a, b) => rows(b) - rows(a));
}

async function extractTable(
  main: Connection,
  config: Config,
  table: TableConfig,
  options: ExtractOptions,
  ahead: Prepared | undefined,
  spares: SpareConnections,
  /** the error that failed the table, as thrown (its summary has its text) */
  onFailure: (error: unknown) => void = () => {},
): Promise<TableSummary> {
  const started = performance.now();
  const summary = emptySummary(table.name);
  try {
    const prepared = ahead ?? (await prepareTable(main, config, table, options));
    if (!prepared.plan) {
      log.info(
        `${table.name}: not in ${config.mysql.database}: skipped (this Open edX release has no such table)`,
        {
          table: table.name,
        },
      );
      summary.absent = true;
      return summary;
    }
    const { plan, probe, written } = prepared;
    if (plan.missing.length > 0) {
      log.warn(
        `${table.name}: column${plan.missing.length > 1 ? "s" : ""} ${plan.missing.join(", ")} not in ${config.mysql.database}.${table.name}: written as empty fields (the layout is kept)`,
        { table: table.name },
      );
    }
    if (probe.unchanged > 0) {
      summary.unchanged = probe.unchanged;
      const what = table.partition_fields.length === 0 ? "table" : `${probe.unchanged} partition(s)`;
      log.info(`${table.name}: ${what} unchanged since the last read: not read again`, {
        table: table.name,
        unchanged: probe.unchanged,
      });
    }
    options.events?.tableStarted?.(table.name, probe.read.length);
    // A dry run reads and encodes every partition like a run (DESIGN §2) and keeps nothing.
    if (options.dryRun) summary.planned = [];
    else summary.keys = [];
    // A skip is not a full read: nothing may be deleted for what was not read (DESIGN §7a).
    summary.full = plan.full && probe.unchanged === 0;
    // A table without a watermark window lists every partition it has on each run: the objects of
    // the unchanged ones stay, and what is neither read nor kept (a partition whose rows are all
    // gone) is stale, as after a full read.
    if (plan.full && probe.unchanged > 0 && table.partition_fields.length > 0 && !table.incremental) {
      summary.kept = probe.unread.map((values) => partitionKey(config, table, values));
    }
    const record = async (entry: ManifestEntry) => {
      summary.rows += entry.rows;
      summary.bytes += entry.bytes;
      summary.partitions++;
      options.events?.partitionDone?.(table.name, entry.rows);
      if (summary.planned) {
        summary.planned.push({ key: entry.key, rows: entry.rows, bytes: entry.bytes });
        return;
      }
      summary.files++;
      summary.keys?.push(entry.key);
      await options.onFile?.(entry);
    };
    const job = {
      table: plan.table,
      columns: plan.columns,
      dryRun: options.dryRun,
      onRows: (rows: number) => options.events?.rowsRead?.(table.name, rows),
      spares,
    };
    const readAt = new Date();
    let read = probe.read;
    let done = await readByScan(config, job, read, probe.unread.length, plan, record, spares);
    if (!done && !probe.exact && table.partition_fields.length > 0) {
      read = await exactRead(main, config, table, probe.unread);
    }
    done ||= await readByRanges(main, config, job, read, plan, record);
    if (!done) await extractOverConnections(main, config, job, read, config.mysql.connections, record);
    if (!options.dryRun) {
      // The files must be on disk before the watermark and the probes say they were extracted.
      if (read.length > 0) syncFilesystem(config.state_dir);
      if (plan.nextWatermark !== null) {
        saveWatermark(config.state_dir, table.name, plan.nextWatermark);
        summary.watermark = plan.nextWatermark;
      } else if (plan.full) {
        // Emptied: no watermark, or every later run would find the table gone back from it.
        forgetWatermark(config.state_dir, table.name);
      }
      saveProbes(config.state_dir, table.name, probe.record(readAt, summary.rows));
    }
    if (!options.dryRun) {
      savePseudonymState(config, table.name);
      saveWrittenCompression(config, table.name);
      saveWrittenLayout(config.state_dir, table.name, written);
    }
  } catch (error) {
    summary.error = failureText(error);
    if (error instanceof StoppedError) summary.shared = true;
    onFailure(error);
  }
  summary.seconds = Math.round((performance.now() - started) / 10) / 100;
  return summary;
}
