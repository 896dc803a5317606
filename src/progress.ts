// Progress of a table extraction: a live status line on a terminal (rows as they stream, inside
// a partition too), and, unless the caller says each table's result itself (run), one line per
// table as soon as it is done. A cause shared by every table is said once, not per table.
import type { ExtractEvents, TableSummary } from "./extract/events.ts";
import { log, setStatus } from "./log.ts";

/** 1234567 → "1.2 MB": bytes as a person reads them. */
export function formatBytes(bytes: number): string {
  const units = ["B", "kB", "MB", "GB", "TB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  return unit === 0 ? `${bytes} B` : `${value.toFixed(1)} ${units[unit]}`;
}

/**
 * 1234567 → "1,234,567". Grouped here, not by an Intl.NumberFormat: making one loads ICU's
 * locale data, 5 ms of every command's start-up (a tenth of it before the first query).
 */
export function formatCount(n: number): string {
  if (!Number.isSafeInteger(n)) return n.toLocaleString("en-US");
  const digits = String(Math.abs(n));
  let grouped = digits.slice(0, digits.length % 3 || 3);
  for (let i = grouped.length; i < digits.length; i += 3) grouped += `,${digits.slice(i, i + 3)}`;
  return n < 0 ? `-${grouped}` : grouped;
}

/** 1 → "1 file", 2 → "2 files" */
export function plural(n: number, noun: string): string {
  return `${formatCount(n)} ${noun}${n === 1 ? "" : "s"}`;
}

/** `logSummary: false` when the caller prints its own line per table (run). */
export function tableProgress(logSummary = true): ExtractEvents {
  let table = "";
  let partitions = 0;
  let done = 0;
  let rows = 0;
  /** whether rows come as they stream (MySQL) or only per partition (course structures) */
  let streamed = false;
  let started = 0;
  let lastDraw = 0;
  const draw = (force = false) => {
    const now = performance.now();
    if (!force && now - lastDraw < 100) return;
    lastDraw = now;
    const rate = rows / Math.max((now - started) / 1000, 0.001);
    const parts = partitions > 1 ? `  ${done}/${partitions} partitions` : "";
    setStatus(`… ${table}${parts}  ${formatCount(rows)} rows  ${formatCount(Math.round(rate))}/s`);
  };
  return {
    tablePlanning(name) {
      setStatus(`… ${name}  listing partitions and changes`);
    },
    tableStarted(name, count) {
      table = name;
      partitions = count;
      done = 0;
      rows = 0;
      streamed = false;
      started = performance.now();
      draw(true);
    },
    rowsRead(_name, chunkRows) {
      rows += chunkRows;
      streamed = true;
      draw();
    },
    partitionDone(_name, partitionRows) {
      done++;
      if (!streamed) rows += partitionRows;
      draw();
    },
    sharedFailure(message) {
      log.error(message);
    },
    tableDone(summary: TableSummary) {
      setStatus(null);
      // An absent table was said when it was skipped.
      if (!logSummary || summary.absent) return;
      if (summary.error) {
        if (!summary.shared) log.error(summary.error, { table: summary.table });
        return;
      }
      const verb = summary.planned ? "would write" : "extracted";
      log.success(
        `${summary.table}: ${verb}`,
        {
          table: summary.table,
          rows: summary.rows,
          files: summary.files,
          bytes: summary.bytes,
          seconds: summary.seconds,
          ...(summary.watermark ? { watermark: summary.watermark } : {}),
        },
        `${summary.table}: ${verb} ${plural(summary.rows, "row")}, ${plural(summary.planned?.length ?? summary.files, "file")}, ${formatBytes(summary.bytes)} in ${summary.seconds} s`,
      );
    },
  };
}
