// The jobs cron runs: `upload` (spool → target) and `run` (extract + upload + catalog) under the
// lock. Extraction and upload overlap: each finished spool file is queued for upload at once and
// extraction waits when the queue is full, so the spool holds a few partitions, not a table.

import { Glue } from "./aws/glue.ts";
import { tablesToHoldBack } from "./catalog/preflight.ts";
import { GlueReach, registerAfterUpload, registersPartitions } from "./catalog/register.ts";
import type { Config, TableConfig } from "./config/types.ts";
import { pruneUnproduced, unproducedKeys } from "./datalake/prune.ts";
import { S3Target } from "./datalake/s3-target.ts";
import { cleanSpool, listSpool, type ManifestEntry, spoolDir } from "./datalake/spool.ts";
import { createTarget } from "./datalake/target.ts";
import type { Target } from "./datalake/targets.ts";
import { type TableUploads, Uploader } from "./datalake/upload.ts";
import { messageOf } from "./errors.ts";
import type { TableSummary } from "./extract/events.ts";
import { extractTables, StoppedError } from "./extract/extract.ts";
import { log } from "./log.ts";
import { tableProgress } from "./progress.ts";
import { DATALAKE_FAILED, RunReport, reportFailedTables } from "./run-report.ts";
import { markFullReadsOwed, saveFullRead } from "./state/full-reads.ts";
import { saveRuns, type TableRun } from "./state/runs.ts";

export interface RunResult {
  ok: boolean;
  /** run only: each table's result and what was stored of it (for the metrics) */
  summaries?: TableSummary[];
  uploads?: ReadonlyMap<string, TableUploads>;
}

async function reportUploads(uploader: Uploader, spool: string): Promise<void> {
  for (const [table, t] of uploader.tables) {
    log.success(`${table}: uploaded`, { table, objects: t.objects, bytes: t.bytes, skipped: t.skipped });
  }
  await reportUploadFailure(uploader, spool);
}

async function reportUploadFailure(uploader: Uploader, spool: string): Promise<void> {
  if (!uploader.failure) return;
  log.error(uploader.failureMessage()!, { key: uploader.failure.key });
  const kept = (await listSpool(spool)).length;
  log.info(`${kept} file(s) kept in the spool; the next run uploads them`);
}

/** Glue on the S3 target's AWS client: one credential lookup (IMDS on EC2) serves both. */
function glueOf(config: Config, target: Target): Glue | undefined {
  return target instanceof S3Target ? new Glue(target.s3.client, config.datalake.database) : undefined;
}

/** What a killed run left in the target (open multipart uploads); a failure only delays it. */
async function recoverTarget(target: Target): Promise<void> {
  try {
    await target.recover?.();
  } catch (error) {
    log.warn(`could not clean up after an interrupted run (the next run retries): ${messageOf(error)}`);
  }
}

/**
 * The raw tables that would misread what is written under them (DESIGN §6), compared before
 * anything is stored; each is said once, as an error. Without a catalog there is nothing to compare.
 */
async function heldBack(
  config: Config,
  selected: TableConfig[],
  spooled: ManifestEntry[],
  target: Target,
  reach?: GlueReach,
): Promise<Map<string, string>> {
  const glue = registersPartitions(config) ? glueOf(config, target) : undefined;
  // The tables to extract and those with files in the spool: everything about to be written.
  const tables = config.tables.filter(
    (t) => selected.some((s) => s.name === t.name) || spooled.some((e) => e.table === t.name),
  );
  const misaligned = await tablesToHoldBack(config, tables, glue, reach);
  const reasons = new Map<string, string>();
  for (const [table, error] of misaligned) {
    reasons.set(table, `${error.message}; nothing is written under it until it is fixed (${error.hint})`);
  }
  return reasons;
}

/** Spool files of held-back tables stay in the spool, said once per table. */
function withoutHeldBack(entries: ManifestEntry[], held: Map<string, string>): ManifestEntry[] {
  const kept = entries.filter((e) => held.has(e.table));
  for (const table of new Set(kept.map((e) => e.table))) {
    log.error(
      `${table}: ${kept.filter((e) => e.table === table).length} file(s) kept in the spool: ${held.get(table)}`,
      {
        table,
      },
    );
  }
  return entries.filter((e) => !held.has(e.table));
}

/** Every entry to the target, waiting until all are stored; the first failure stops the rest. */
async function storeAll(uploader: Uploader, entries: ManifestEntry[]): Promise<void> {
  for (const entry of entries) {
    try {
      await uploader.enqueue(entry);
    } catch {
      break; // uploader.failure says which and why
    }
  }
  await uploader.drain();
}

/**
 * `panorama upload`: every complete spool file to the target. A dry run of `run` passes its
 * target and the tables it holds back, so that the raw tables are compared once.
 */
export async function uploadSpool(
  config: Config,
  dryRun: boolean,
  target: Target = createTarget(config),
  checked?: Map<string, string>,
): Promise<RunResult> {
  const spool = spoolDir(config.state_dir);
  if (!dryRun) await cleanSpool(spool);
  if (!dryRun) await recoverTarget(target);
  const spooled = await listSpool(spool);
  if (spooled.length === 0) {
    log.info("the spool is empty: nothing to upload");
    return { ok: true };
  }
  const reach = new GlueReach();
  const held = checked ?? (await heldBack(config, [], spooled, target, reach));
  const entries = withoutHeldBack(spooled, held);
  const uploader = new Uploader(config, target, { dryRun });
  await storeAll(uploader, entries);
  await reportUploads(uploader, spool);
  const catalogued =
    dryRun ||
    (await registerAfterUpload(config, uploader.done, glueOf(config, target), config.tables, reach));
  return { ok: uploader.failure === null && catalogued && held.size === 0 };
}

/** `panorama run`: leftovers of earlier runs first (all stored), then extract and upload together. */
export async function runJob(config: Config, tables: TableConfig[], full: boolean): Promise<RunResult> {
  const spool = spoolDir(config.state_dir);
  await cleanSpool(spool);
  const target = createTarget(config);
  await recoverTarget(target);
  const report = new RunReport((summary) => recordRuns(config, "run", [summary], uploader));
  const uploader = new Uploader(config, target, {
    onSettled: (entry, error) => report.settled(entry, error),
  });
  report.watch(uploader);
  const started = new Date();
  const spooled = await listSpool(spool);
  // Glue found silent before the writing is not waited for again at the registration.
  const reach = new GlueReach();
  const held = await heldBack(config, tables, spooled, target, reach);
  const leftovers = withoutHeldBack(spooled, held);
  if (leftovers.length > 0)
    log.info(`uploading ${leftovers.length} file(s) left in the spool by an earlier run`);
  // Stored before extraction starts: extraction may write the same keys again, and a leftover
  // still uploading would race the fresh file (the older content could land last, and its
  // removal take the fresh file along).
  await storeAll(uploader, leftovers);
  const progress = tableProgress(false);
  const extracted = tables.filter((t) => !held.has(t.name));
  if (full) {
    markFullReadsOwed(
      config.state_dir,
      extracted.filter((t) => t.partition_fields.length > 0).map((t) => t.name),
    );
  }
  const summaries = await extractTables(config, extracted, {
    full,
    fullEvery: config.extract.full_every,
    dryRun: false,
    onFile: async (entry) => {
      try {
        await uploader.enqueue(entry);
      } catch {
        throw new StoppedError(`stopped: ${DATALAKE_FAILED}`);
      }
    },
    stopReason: () => (uploader.failure ? DATALAKE_FAILED : null),
    events: {
      ...progress,
      sharedFailure: (message) => report.sharedFailure(message),
      tableDone: (summary) => {
        progress.tableDone?.(summary);
        report.tableExtracted(summary);
      },
    },
  });
  await uploader.drain();
  summaries.push(...heldSummaries(held));
  blameUploadFailure(summaries, uploader);
  const pruned = await pruneFullReads(config, tables, summaries, uploader, target, started);
  recordRuns(config, "run", summaries, uploader);
  report.uploadFailure();
  if (uploader.failure) {
    const kept = (await listSpool(spool)).length;
    log.info(`${kept} file(s) kept in the spool; the next run uploads them`);
  }
  if (config.datalake.target === "local") log.info("local datalake: there is no catalog to update");
  // --tables: the other tables' pending partitions wait for a run of theirs.
  const catalogued = await registerAfterUpload(config, uploader.done, glueOf(config, target), tables, reach);
  const tablesOk = report.finish(summaries, catalogued && pruned);
  return {
    ok: tablesOk && uploader.failure === null && catalogued && pruned,
    summaries,
    uploads: uploader.tables,
  };
}

/**
 * DESIGN §7a: a partitioned table read in full, every file of it stored, loses the objects of this
 * host that the read did not produce, and their catalog partitions. A failure to delete is the
 * table's error (its data is stored; the next full read deletes them). Returns false when the
 * catalog could not be updated.
 */
async function pruneFullReads(
  config: Config,
  tables: TableConfig[],
  summaries: TableSummary[],
  uploader: Uploader,
  target: Target,
  readAt: Date,
): Promise<boolean> {
  let catalogued = true;
  const glue = glueOf(config, target);
  for (const summary of summaries) {
    const table = prunable(tables, summary);
    if (!table || !summary.keys) continue;
    try {
      const produced = new Set([...summary.keys, ...(summary.kept ?? [])]);
      const result = await pruneUnproduced(config, target, uploader, table, produced, glue);
      catalogued &&= result.catalogued;
      if (result.deleted.length > 0) {
        log.info(`${table.name}: ${result.deleted.length} stale object(s) deleted (read in full)`, {
          table: table.name,
          objects: result.deleted.length,
        });
      }
      // Only a read of every partition is a full read (full_every counts from it; an
      // unpartitioned table counts from its probe's last read).
      if (summary.full && table.partition_fields.length > 0)
        saveFullRead(config.state_dir, table.name, readAt);
    } catch (error) {
      summary.error = `stale objects not deleted after a full read: ${messageOf(error)}`;
      log.error(summary.error, { table: table.name });
    }
  }
  return catalogued;
}

/** The summaries of the tables held back: not extracted, with the reason. */
function heldSummaries(held: Map<string, string>): TableSummary[] {
  return [...held].map(([table, reason]) => ({
    table,
    rows: 0,
    files: 0,
    bytes: 0,
    seconds: 0,
    partitions: 0,
    watermark: null,
    error: `not extracted: ${reason}`,
  }));
}

/**
 * After a failed upload the summaries name the tables it concerns, so that the exit code and
 * `status` tell the truth: the table of the file that failed carries the cause, and a table whose
 * files were extracted but not all stored says so (they stay in the spool). The cause is logged
 * once for the run, so these errors are `shared`: no table is blamed for another's failure.
 */
function blameUploadFailure(summaries: TableSummary[], uploader: Uploader): void {
  const failure = uploader.failure;
  if (!failure) return;
  for (const s of summaries) {
    const uploads = uploader.tables.get(s.table);
    const unstored = s.files - (uploads?.objects ?? 0) - (uploads?.skipped ?? 0);
    if (s.table === failure.table) {
      s.error = uploader.failureMessage();
      s.shared = true;
    } else if (s.error === null && unstored > 0) {
      s.error = `${unstored} of ${s.files} file(s) not stored: ${DATALAKE_FAILED}; they stay in the spool`;
      s.shared = true;
    }
  }
}

/**
 * `panorama run --dry-run`: the spool files a run would store first, then what it would extract
 * (keys and rows, read from MySQL and MongoDB), one line each on stdout. Writes nothing; the
 * catalog step is left out (`panorama catalog --dry-run` compares the partitions with Glue).
 */
export async function dryRunJob(config: Config, tables: TableConfig[], full: boolean): Promise<RunResult> {
  const target = createTarget(config);
  const held = await heldBack(config, tables, await listSpool(spoolDir(config.state_dir)), target);
  const stored = await uploadSpool(config, true, target, held);
  const summaries = await extractTables(
    config,
    tables.filter((t) => !held.has(t.name)),
    { full, fullEvery: config.extract.full_every, dryRun: true, events: tableProgress() },
  );
  const heldTables = heldSummaries(held).filter((h) => tables.some((t) => t.name === h.table));
  for (const summary of heldTables) log.error(summary.error!, { table: summary.table });
  summaries.push(...heldTables);
  printPlanned(summaries, "extract\t");
  await printStale(config, target, tables, summaries);
  return { ok: stored.ok && reportFailedTables(summaries) };
}

/** A dry run's deletions (DESIGN §7a): the objects a full read did not produce, `delete\t<key>`. */
async function printStale(
  config: Config,
  target: Target,
  tables: TableConfig[],
  summaries: TableSummary[],
): Promise<void> {
  for (const summary of summaries) {
    const table = prunable(tables, summary);
    if (!table) continue;
    const produced = new Set([...(summary.planned ?? []).map((p) => p.key), ...(summary.kept ?? [])]);
    for (const key of await unproducedKeys(config, target, table.name, produced)) {
      process.stdout.write(`delete\t${key}\n`);
    }
  }
}

/**
 * The table of `summary` when a full read of it (or a read of every partition that was not kept
 * as unchanged) ended well: what it did neither produce nor keep is stale. Every read of an
 * unpartitioned table is a full one; what else lies under its prefix is of an earlier layout
 * (partition fields or base partitions since removed), stale as verify says.
 */
function prunable(tables: TableConfig[], summary: TableSummary): TableConfig | null {
  const table = tables.find((t) => t.name === summary.table);
  if (!table) return null;
  return (summary.full || summary.kept !== undefined) && summary.error === null ? table : null;
}

/** A dry run's planned files, one `<key>\t<rows> rows\t<bytes> bytes` line each. */
export function printPlanned(summaries: TableSummary[], prefix = ""): void {
  for (const summary of summaries) {
    for (const file of summary.planned ?? []) {
      process.stdout.write(`${prefix}${file.key}\t${file.rows} rows\t${file.bytes} bytes\n`);
    }
  }
}

export function recordRuns(
  config: Config,
  command: TableRun["command"],
  summaries: TableSummary[],
  uploader: Uploader | null,
): void {
  const now = new Date().toISOString();
  const runs: Record<string, TableRun> = {};
  for (const s of summaries) {
    const uploads = uploader?.tables.get(s.table);
    runs[s.table] = {
      time: now,
      command,
      rows: s.rows,
      // Objects and bytes stored by this command (`extract` stores nothing: its spool files).
      objects: uploader ? (uploads?.objects ?? 0) : s.files,
      bytes: uploader ? (uploads?.bytes ?? 0) : s.bytes,
      skipped: uploads?.skipped ?? 0,
      seconds: s.seconds,
      watermark: s.watermark,
      error: s.error,
      ...(s.absent ? { absent: true } : {}),
      ...(s.unchanged ? { unread: s.unchanged } : {}),
    };
  }
  saveRuns(config.state_dir, runs);
}
