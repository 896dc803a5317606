// Extract configured tables into the spool: plan each MySQL table (fields, partitions,
// watermark), stream every partition into its own spool file over a small connection pool,
// and advance the watermark only when the whole table succeeded; course structures come from
// MongoDB (course-structures.ts) into one file.
import type { Connection } from "mysql2";
import { modeAllows } from "../config/modes.ts";
import type { Config, TableConfig } from "../config/types.ts";
import type { ManifestEntry } from "../datalake/spool.ts";
import { messageOf, PanoramaError } from "../errors.ts";
import { log } from "../log.ts";
import { syncFilesystem } from "../state/atomic.ts";
import { readWatermarks, saveWatermark } from "../state/watermarks.ts";
import { columnKind } from "./csv.ts";
import {
  type Cell,
  close,
  connect,
  extractableColumns,
  ident,
  mysqlError,
  query,
  tableColumns,
} from "./mysql.ts";
import type { Column } from "./partition.ts";
import { extractOverConnections } from "./partition-pool.ts";

/** A problem with one table (missing, misconfigured): reported, the other tables still run. */
export class TableError extends PanoramaError {}

/**
 * A table stopped by a cause that is not its own (the datalake cannot be written): the cause is
 * logged once for the whole run, so the table's summary is marked `shared`, not logged again.
 */
export class StoppedError extends PanoramaError {}

export interface ExtractOptions {
  full: boolean;
  dryRun: boolean;
  /** called for each file as soon as it is complete in the spool (run uploads it at once) */
  onFile?: (entry: ManifestEntry) => void | Promise<void>;
  /** asked before each table: a reason to stop (the upload failed), or null to go on */
  stopReason?: () => string | null;
  events?: ExtractEvents;
}

export interface ExtractEvents {
  tableStarted?(table: string, partitions: number): void;
  /** rows streamed into the spool so far, as they come (inside a partition too) */
  rowsRead?(table: string, rows: number): void;
  partitionDone?(table: string, rows: number): void;
  tableDone?(summary: TableSummary): void;
  /** a cause that stops every MySQL table (the server cannot be reached): said once, before them */
  sharedFailure?(message: string): void;
}

export interface TableSummary {
  table: string;
  rows: number;
  files: number;
  bytes: number;
  seconds: number;
  /** partitions extracted, of how many the table has */
  partitions: number;
  watermark: string | null;
  error: string | null;
  /** the error follows from a cause logged once for the run (MySQL or the datalake unreachable) */
  shared?: boolean;
  /** --dry-run: the files that would be written */
  planned?: { key: string; rows: number; bytes: number }[];
}

export interface TablePlan {
  table: TableConfig;
  /** CSV columns: the fields minus the partition fields */
  columns: Column[];
  /** values of the partition fields, one tuple per partition; [[]] for an unpartitioned table */
  partitions: Cell[][];
  /** largest timestamp_field seen now, the next watermark */
  nextWatermark: string | null;
}

/** The fields to extract: the configured ones (which must exist), else all columns in table order. */
export async function resolveFields(
  connection: Connection,
  config: Config,
  table: TableConfig,
): Promise<{ name: string; type: string }[]> {
  const columns = await extractableColumns(
    connection,
    config.mysql.database,
    table.name,
    (message) =>
      new TableError(
        `${table.name}: ${message}`,
        "leave it out with [extract] exclude, or check [mysql] database",
      ),
  );
  if (!table.fields) return columns;
  const byName = new Map(columns.map((c) => [c.name, c]));
  const missing = table.fields.filter((f) => !byName.has(f.name)).map((f) => f.name);
  if (missing.length > 0) {
    throw new TableError(
      `${table.name}: configured column${missing.length > 1 ? "s" : ""} ${missing.map((m) => `"${m}"`).join(", ")} not found in ${config.mysql.database}.${table.name} (it has: ${columns.map((c) => c.name).join(", ")})`,
      "fix the table's fields in the config; `panorama schema pull` prints the real ones",
    );
  }
  // The server's type decides the encoding; the configured one only types the view.
  return table.fields.map((f) => ({ name: f.name, type: byName.get(f.name)!.type }));
}

export async function planTable(
  connection: Connection,
  config: Config,
  table: TableConfig,
  full: boolean,
): Promise<TablePlan> {
  const fields = await resolveFields(connection, config, table);
  const names = fields.map((f) => f.name);
  for (const field of [
    ...table.partition_fields,
    ...(table.incremental ? [table.incremental.timestamp_field] : []),
  ]) {
    if (!names.includes(field) && !(await hasColumn(connection, config, table, field))) {
      throw new TableError(
        `${table.name}: column "${field}" (partition or timestamp field) not found in ${config.mysql.database}.${table.name}`,
      );
    }
  }
  const columns = fields
    .filter((f) => !table.partition_fields.includes(f.name))
    .map((f) => ({ name: f.name, kind: columnKind(f.type) }));
  if (columns.length === 0)
    throw new TableError(`${table.name}: no column left once partition fields are removed`);
  const from = `FROM ${ident(table.name)}`;
  if (table.partition_fields.length === 0) return { table, columns, partitions: [[]], nextWatermark: null };

  const partitionList = table.partition_fields.map(ident).join(", ");
  let nextWatermark: string | null = null;
  let where = "";
  const values: unknown[] = [];
  if (table.incremental) {
    const ts = ident(table.incremental.timestamp_field);
    const [max] = await query<{ max: string | null }>(connection, `SELECT MAX(${ts}) AS max ${from}`);
    nextWatermark = max?.max === null || max?.max === undefined ? null : String(max.max);
    const previous = readWatermarks(config.state_dir)[table.name]?.value;
    if (!full && previous) {
      where = ` WHERE ${ts} >= DATE_SUB(?, INTERVAL ? SECOND)`;
      values.push(previous, table.incremental.overlap);
    }
  }
  const rows = await query<Cell[]>(
    connection,
    `SELECT DISTINCT ${partitionList} ${from}${where}`,
    values,
    true,
  );
  return { table, columns, partitions: rows, nextWatermark };
}

async function hasColumn(
  connection: Connection,
  config: Config,
  table: TableConfig,
  name: string,
): Promise<boolean> {
  const columns = await tableColumns(connection, config.mysql.database, table.name);
  return columns?.some((c) => c.name === name) ?? false;
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
  let unreachable: string | null = null;
  const shared = (table: TableConfig, error: string) => ({
    ...emptySummary(table.name),
    error,
    shared: true,
  });
  /** One table's summary; null for one the mode leaves out. */
  const extractOne = async (table: TableConfig): Promise<TableSummary | null> => {
    const stop = options.stopReason?.() ?? null;
    if (stop !== null) return shared(table, `not extracted: ${stop}`);
    if (table.source === "course_structures") {
      const gate = modeAllows(config.mode, "course-structures");
      if (gate.allowed) return extractStructuresTable(config, table, options);
      log.info(`${table.name}: ${gate.reason}`);
      return null;
    }
    // Every MySQL table fails alike when the server cannot be reached: the cause is said once
    // with its fix, and each table only records it (the caller names them in one line). The
    // course structures still run, and the caller still stores and registers what it has.
    if (unreachable !== null) return shared(table, unreachable);
    let connection: Connection;
    try {
      connection = main ??= await connect(config.mysql);
    } catch (error) {
      unreachable = `not extracted: ${failureText(error)}`;
      options.events?.sharedFailure?.(failureText(error));
      return shared(table, unreachable);
    }
    const summary = await extractTable(connection, config, table, options);
    if (summary.error !== null) {
      // The failure may have left the connection mid-query or dead: start the next table afresh.
      connection.destroy();
      main = null;
    }
    return summary;
  };
  try {
    for (const table of tables) {
      const summary = await extractOne(table);
      if (summary === null) continue;
      options.events?.tableDone?.(summary);
      summaries.push(summary);
    }
  } finally {
    if (main) await close(main);
  }
  return summaries;
}

/** The course structures table (MongoDB): a server that cannot be reached fails this table only. */
async function extractStructuresTable(
  config: Config,
  table: TableConfig,
  options: ExtractOptions,
): Promise<TableSummary> {
  const started = performance.now();
  try {
    // Loaded only when needed: the MongoDB driver costs start-up time and memory to every run.
    const { extractCourseStructures } = await import("./course-structures.ts");
    return await extractCourseStructures(config, table, options);
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

async function extractTable(
  main: Connection,
  config: Config,
  table: TableConfig,
  options: ExtractOptions,
): Promise<TableSummary> {
  const started = performance.now();
  const summary = emptySummary(table.name);
  try {
    const plan = await planTable(main, config, table, options.full).catch((error) => {
      throw error instanceof PanoramaError ? error : mysqlError(error, config.mysql, `reading ${table.name}`);
    });
    options.events?.tableStarted?.(table.name, plan.partitions.length);
    // A dry run reads and encodes every partition like a run (DESIGN §2) and keeps nothing.
    if (options.dryRun) summary.planned = [];
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
      await options.onFile?.(entry);
    };
    const job = {
      table: plan.table,
      columns: plan.columns,
      dryRun: options.dryRun,
      onRows: (rows: number) => options.events?.rowsRead?.(table.name, rows),
    };
    await extractOverConnections(main, config, job, plan.partitions, config.mysql.connections, record);
    if (!options.dryRun && plan.nextWatermark !== null) {
      // The files must be on disk before the watermark says they were extracted.
      syncFilesystem(config.state_dir);
      saveWatermark(config.state_dir, table.name, plan.nextWatermark);
      summary.watermark = plan.nextWatermark;
    }
  } catch (error) {
    summary.error = failureText(error);
    if (error instanceof StoppedError) summary.shared = true;
  }
  summary.seconds = Math.round((performance.now() - started) / 10) / 100;
  return summary;
}
