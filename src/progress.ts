// Progress of a table extraction: a live line on a TTY, nothing extra in JSON mode (where each
// table ends with one summary object instead).
import type { ExtractEvents, TableSummary } from "./extract/extract.ts";
import { isJsonLogging, log } from "./log.ts";

const number = new Intl.NumberFormat("en-US");

/** `logSummary: false` when the caller prints its own summary per table (run). */
export function tableProgress(logSummary = true): ExtractEvents {
  const live = process.stderr.isTTY && !isJsonLogging();
  let table = "";
  let partitions = 0;
  let done = 0;
  let rows = 0;
  let started = 0;
  let lastDraw = 0;
  const draw = (force = false) => {
    const now = performance.now();
    if (!live || (!force && now - lastDraw < 100)) return;
    lastDraw = now;
    const rate = rows / Math.max((now - started) / 1000, 0.001);
    process.stderr.write(
      `\r\x1b[2K${table}  ${done}/${partitions} partitions  ${number.format(rows)} rows  ${number.format(Math.round(rate))} rows/s`,
    );
  };
  return {
    tableStarted(name, count) {
      table = name;
      partitions = count;
      done = 0;
      rows = 0;
      started = performance.now();
      draw(true);
    },
    partitionDone(_name, partitionRows) {
      done++;
      rows += partitionRows;
      draw();
    },
    tableDone(summary: TableSummary) {
      if (live) process.stderr.write("\r\x1b[2K");
      // An absent table was said when it was skipped.
      if (!logSummary || summary.absent) return;
      if (summary.error) {
        log.error(summary.error, { table: summary.table });
        return;
      }
      log.success(summary.planned ? `${summary.table}: would write` : `${summary.table}: extracted`, {
        table: summary.table,
        rows: summary.rows,
        files: summary.files,
        bytes: summary.bytes,
        seconds: summary.seconds,
        ...(summary.watermark ? { watermark: summary.watermark } : {}),
      });
    },
  };
}
