// What `run` says as it goes (DESIGN §12): each table's line as soon as it is extracted and all
// its files are stored, a cause that stops many tables once (with its fix) and no table blamed
// for it, then one line naming the tables not done and one summary line.
import type { ManifestEntry } from "./datalake/spool.ts";
import type { TableUploads, Uploader } from "./datalake/upload.ts";
import type { TableSummary } from "./extract/events.ts";
import { log } from "./log.ts";
import { formatBytes, plural } from "./progress.ts";

/** Why the tables after a failed upload are not done: the cause itself is logged once, apart. */
export const DATALAKE_FAILED = "the datalake could not be written";

export class RunReport {
  private readonly extracted = new Map<string, TableSummary>();
  private readonly reported = new Set<string>();
  private uploader: Uploader | null = null;
  private uploadFailureSaid = false;
  private readonly started = performance.now();

  /** `recorded` is told each table as its line is written (so that `status` shows it at once). */
  constructor(private readonly recorded: (summary: TableSummary) => void = () => {}) {}

  /** The uploader whose files the table lines wait for. */
  watch(uploader: Uploader): void {
    this.uploader = uploader;
  }

  /** A cause that stops every MySQL table: said once, before the tables it stops. */
  sharedFailure(message: string): void {
    log.error(message);
  }

  /** The first failed upload, said once: every later table is stopped by it. */
  uploadFailure(): void {
    const failure = this.uploader?.failure;
    if (!failure || this.uploadFailureSaid) return;
    this.uploadFailureSaid = true;
    log.error(this.uploader!.failureMessage()!, { key: failure.key });
  }

  tableExtracted(summary: TableSummary): void {
    this.extracted.set(summary.table, summary);
    this.tryReport(summary.table);
  }

  /** A file stored (or its upload failed): its table's line may now be due. */
  settled(entry: ManifestEntry, error: unknown): void {
    if (error) this.uploadFailure();
    this.tryReport(entry.table);
  }

  private uploads(table: string): TableUploads {
    return this.uploader?.tables.get(table) ?? { objects: 0, bytes: 0, skipped: 0 };
  }

  private tryReport(table: string): void {
    const summary = this.extracted.get(table);
    if (!summary || this.reported.has(table)) return;
    const uploads = this.uploads(table);
    if (summary.error === null && uploads.objects + uploads.skipped < summary.files) return;
    this.report(summary);
  }

  private report(summary: TableSummary): void {
    this.reported.add(summary.table);
    this.recorded(summary);
    if (summary.absent) return; // said when it was skipped (DESIGN §10)
    if (summary.error !== null) {
      if (!summary.shared) log.error(summary.error, { table: summary.table });
      return;
    }
    const uploads = this.uploads(summary.table);
    const notRead = summary.unchanged
      ? `, ${plural(summary.unchanged, "partition")} not read (unchanged)`
      : "";
    const unchanged = uploads.skipped > 0 ? ` (${uploads.skipped} unchanged)${notRead}` : notRead;
    log.success(
      `${summary.table}: done`,
      {
        table: summary.table,
        rows: summary.rows,
        objects: uploads.objects,
        bytes: uploads.bytes,
        skipped: uploads.skipped,
        ...(summary.unchanged ? { unchanged_not_read: summary.unchanged } : {}),
        seconds: summary.seconds,
        ...(summary.watermark ? { watermark: summary.watermark } : {}),
      },
      `${summary.table}: ${plural(summary.rows, "row")}, ${plural(uploads.objects, "object")}${unchanged}, ${formatBytes(uploads.bytes)} in ${summary.seconds}\u00a0s`,
    );
  }

  /**
   * Once every upload has settled: the lines still due, the tables not done in one line, and
   * the summary. True when every table is done.
   */
  finish(summaries: TableSummary[], catalogued = true): boolean {
    this.uploadFailure();
    for (const summary of summaries) if (!this.reported.has(summary.table)) this.report(summary);
    reportFailedTables(summaries);
    const failed = summaries.filter((s) => s.error !== null);
    let rows = 0;
    let objects = 0;
    let bytes = 0;
    let skipped = 0;
    for (const summary of summaries) {
      const uploads = this.uploads(summary.table);
      rows += summary.rows;
      objects += uploads.objects;
      bytes += uploads.bytes;
      skipped += uploads.skipped;
    }
    const seconds = Math.round((performance.now() - this.started) / 100) / 10;
    // A preset table this release does not have is neither done nor failed (DESIGN §10).
    const absent = summaries.filter((s) => s.absent).length;
    const ok = summaries.length - failed.length - absent;
    const fields = {
      tables: ok,
      absent,
      failed: failed.length,
      rows,
      objects,
      skipped,
      bytes,
      seconds,
      catalogued,
    };
    const absentText = absent > 0 ? `, ${absent} absent` : "";
    // The data is stored either way: the exit status says the catalog lags, so does this line.
    const catalogText = catalogued ? "" : "; the catalog is behind (see above)";
    const text = `run: ${plural(ok, "table")} done${absentText}, ${failed.length} failed; ${plural(rows, "row")}, ${plural(objects, "object")}, ${formatBytes(bytes)} in ${seconds}\u00a0s${catalogText}`;
    if (failed.length === 0 && catalogued) log.success("run: finished", fields, text);
    else log.info("run: finished", fields, text);
    return failed.length === 0;
  }
}

/** Logs the tables that failed, if any; true when none did. */
export function reportFailedTables(summaries: TableSummary[], kept = ""): boolean {
  const failed = summaries.filter((s) => s.error !== null);
  if (failed.length === 0) return true;
  log.error(
    `${failed.length} of ${summaries.length} tables failed (${failed.map((s) => s.table).join(", ")})${kept}`,
  );
  return false;
}
