// `panorama status`: per table the last run, the watermark and what waits in the spool; per
// tracking log the bytes not shipped yet and the last upload.

import { PartitionState } from "./catalog/partitions.ts";
import { registersPartitions } from "./catalog/register.ts";
import { rawTrackingLogsName } from "./catalog/sql.ts";
import { modeAllows } from "./config/modes.ts";
import type { Config } from "./config/types.ts";
import { listSpool, spoolDir } from "./datalake/spool.ts";
import {
  type LogLoss,
  type LogShipFileStatus,
  logShipLosses,
  logShipStatus,
  logshipDir,
} from "./logship/checkpoint.ts";
import { type PseudonymsStatus, pseudonymsLine, pseudonymsStatus } from "./privacy/report.ts";
import { formatBytes, formatCount } from "./progress.ts";
import { type LockHolder, lockHolder } from "./state/lock.ts";
import { readRuns, type TableRun } from "./state/runs.ts";
import { readVerifyRecord, type VerifyRecord } from "./state/verify-record.ts";
import { readWatermarks } from "./state/watermarks.ts";

export interface TableStatus {
  table: string;
  last_run: TableRun | null;
  watermark: string | null;
  /** files of this table extracted but not yet uploaded */
  spooled_files: number;
  spooled_bytes: number;
  /** partition_fields configured: "not read" counts partitions, else it is the table */
  partitioned: boolean;
  /** partitions uploaded but not yet registered in Glue (the next run retries); null without a catalog */
  pending_partitions: number | null;
}

export interface Status {
  mode: Config["mode"];
  target: string;
  tables: TableStatus[];
  /** per tracking-log file (rotated ones still on disk included); empty when the mode ships none */
  logs: LogShipFileStatus[];
  /** per log (its live path): lines lost in files removed before log-ship finished them */
  logs_lost: ({ log: string } & LogLoss)[];
  /** tracking-log day partitions stored but not yet registered in Glue; null without a catalog or logs */
  logs_pending_partitions: number | null;
  /** the last `verify`; null when none ran */
  last_verify: VerifyRecord | null;
  /** the holders of the locks now: `run` (or `extract`) and `log-ship`; null when none runs */
  in_progress: { run: LockHolder | null; log_ship: LockHolder | null };
  /** personal values replaced by keyed pseudonyms before they leave the host (DESIGN §11) */
  pseudonyms: PseudonymsStatus;
}

export async function collectStatus(config: Config): Promise<Status> {
  const runs = readRuns(config.state_dir);
  const watermarks = readWatermarks(config.state_dir);
  const spooled = await listSpool(spoolDir(config.state_dir));
  const shipsLogs = modeAllows(config.mode, "log-ship").allowed;
  const partitions = registersPartitions(config)
    ? new PartitionState(config.state_dir, config.datalake.database)
    : null;
  return {
    mode: config.mode,
    target: config.datalake.target === "s3" ? `s3://${config.datalake.bucket}` : config.datalake.path,
    tables: config.tables.map((t) => {
      const files = spooled.filter((e) => e.table === t.name);
      return {
        table: t.name,
        partitioned: t.partition_fields.length > 0,
        last_run: runs[t.name] ?? null,
        watermark: watermarks[t.name]?.value ?? null,
        spooled_files: files.length,
        spooled_bytes: files.reduce((sum, e) => sum + e.bytes, 0),
        pending_partitions: partitions ? partitions.pending(t.datalake_table).length : null,
      };
    }),
    logs: shipsLogs ? logShipStatus(config) : [],
    logs_lost: shipsLogs ? logShipLosses(config) : [],
    logs_pending_partitions:
      partitions && shipsLogs ? partitions.pending(rawTrackingLogsName(config)).length : null,
    last_verify: readVerifyRecord(config.state_dir),
    in_progress: {
      run: lockHolder(config.state_dir),
      log_ship: lockHolder(logshipDir(config.state_dir)),
    },
    pseudonyms: pseudonymsStatus(config),
  };
}

function columns(header: string[], rows: string[][]): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i]!))
      .join("  ")
      .trimEnd();
  return [header, ...rows].map(line);
}

/**
 * One line per tracking log. A path too long for the line (a Kubernetes container log's, some
 * 130 characters) loses its beginning, not the numbers after it; `wide`: whole.
 */
function logLines(logs: LogShipFileStatus[], wide: boolean): string[] {
  if (logs.length === 0) return [];
  const header = ["tracking log", "bytes", "not shipped", "last upload"];
  const numbers = logs.map((l) => [
    formatCount(l.size),
    formatCount(l.unshipped),
    l.last_upload ? l.last_upload.replace("T", " ").slice(0, 19) : "never",
  ]);
  const numbersWidth = columns(header.slice(1), numbers).reduce((w, l) => Math.max(w, l.length), 0);
  const room = Math.max(header[0]!.length, STATUS_WIDTH - numbersWidth - 2);
  const path = (p: string) => (wide || p.length <= room ? p : `…${p.slice(p.length - room + 1)}`);
  return [
    "",
    ...columns(
      header,
      logs.map((l, i) => [path(l.path), ...numbers[i]!]),
    ),
  ];
}

function verifyLine(record: VerifyRecord | null): string {
  if (!record) return "last verify: never";
  const total = (counts: VerifyRecord["found"]) => Object.values(counts).reduce((a, b) => a + b, 0);
  const found = total(record.found);
  const left = total(record.left);
  const what = record.repair && found > 0 ? `repaired ${found - left} difference(s); ` : "";
  const outcome = record.ok
    ? "all agree"
    : `${left} difference(s)${record.errors > 0 ? `, ${record.errors} table(s) not verified` : ""}`;
  return `last verify: ${record.time.replace("T", " ").slice(0, 19)}, ${what}${outcome}`;
}

function lossLines(losses: Status["logs_lost"]): string[] {
  return losses.map((l) => {
    // Files whose end was never read: lines were lost in them, how many is not known.
    const what =
      l.files === 0
        ? `lines (not counted) lost in ${formatCount(l.uncounted_files)} file(s)`
        : `${formatCount(l.lines)} line(s) (${formatCount(l.bytes)} bytes) lost in ${formatCount(l.files)} file(s)${l.uncounted_files ? `, and lines not counted in ${formatCount(l.uncounted_files)} more,` : ""}`;
    return `${l.log}: ${what} removed or truncated before they were shipped; the last ${l.last.replace("T", " ").slice(0, 19)}`;
  });
}

/** What the last run did not read because it could not have changed (DESIGN §7). */
function unreadCell(table: TableStatus): string {
  const unread = table.last_run?.unread;
  if (!unread) return "";
  return table.partitioned ? `${formatCount(unread)} unchanged` : "unchanged";
}

/** What a lock holder is doing, for people: "`panorama run` (pid 42) since 2026-12-04 16:59:01 UTC, 3 min ago". */
function holderLine(what: string, holder: LockHolder, now: Date): string {
  const command = holder.command ? `\`panorama ${holder.command}\`` : "a command";
  const pid = holder.pid !== null ? ` (pid ${holder.pid})` : "";
  if (!holder.since) return `${what} in progress: ${command}${pid}`;
  const minutes = Math.max(0, Math.round((now.getTime() - Date.parse(holder.since)) / 60_000));
  const ago =
    minutes < 1
      ? "less than a minute ago"
      : minutes < 120
        ? `${minutes} min ago`
        : `${Math.round(minutes / 60)} h ago`;
  return `${what} in progress: ${command}${pid} since ${holder.since.replace("T", " ").slice(0, 19)} UTC, ${ago}`;
}

/** The width the default table keeps within; `--wide` shows every column, whole. */
const STATUS_WIDTH = 120;

const WIDE_HEADER = [
  "table",
  "last run (UTC)",
  "rows",
  "objects",
  "bytes",
  "unchanged",
  "not read",
  "seconds",
  "watermark",
  "spool",
  "unregistered",
  "error",
];

/** Plain-text tables for people: within 120 columns, or with `wide` every column in full. */
export function formatStatus(status: Status, options: { wide?: boolean; now?: Date } = {}): string {
  const wide = options.wide === true;
  const rows = status.tables.map((t) => {
    const r = t.last_run;
    // A preset table this database does not have (DESIGN §10): nothing was read, nothing failed.
    const absent = r?.absent === true;
    const spool =
      t.spooled_files > 0
        ? `${t.spooled_files} file(s), ${wide ? `${formatCount(t.spooled_bytes)} B` : formatBytes(t.spooled_bytes)}`
        : "";
    const cells: Record<string, string> = {
      table: t.table,
      // The default drops the year and the seconds: the width goes to the error.
      "last run (UTC)": r ? r.time.replace("T", " ").slice(wide ? 0 : 5, wide ? 19 : 16) : "never",
      rows: absent ? "absent" : r ? formatCount(r.rows) : "",
      objects: r && !absent ? formatCount(r.objects) : "",
      bytes: r && !absent ? (wide ? formatCount(r.bytes) : formatBytes(r.bytes)) : "",
      unchanged: r && !absent ? formatCount(r.skipped) : "",
      "not read": absent ? "" : unreadCell(t),
      seconds: r && !absent ? String(r.seconds) : "",
      watermark: t.watermark ?? "",
      spool,
      unregistered: t.pending_partitions ? `${formatCount(t.pending_partitions)} partition(s)` : "",
      error: r?.error ?? "",
    };
    return cells;
  });
  // The default leaves out what an hourly look does not need; the error column is cut at the edge.
  const header = wide
    ? WIDE_HEADER
    : WIDE_HEADER.filter(
        (h) =>
          !["unchanged", "watermark"].includes(h) &&
          (!["not read", "spool", "unregistered", "error"].includes(h) || rows.some((r) => r[h])),
      );
  const fit = (line: string) =>
    wide || line.length <= STATUS_WIDTH ? line : `${line.slice(0, STATUS_WIDTH - 1)}…`;
  const now = options.now ?? new Date();
  const running = [
    ...(status.in_progress.run ? [holderLine("a run", status.in_progress.run, now)] : []),
    ...(status.in_progress.log_ship ? [holderLine("log shipping", status.in_progress.log_ship, now)] : []),
  ];
  // Where the other columns leave the error too little room, the errors go under the table, one
  // line each: an error cut to a bare "…" tells nothing.
  const withoutError = header.filter((h) => h !== "error");
  const otherWidth = Math.max(
    ...columns(
      withoutError,
      rows.map((r) => withoutError.map((h) => r[h]!)),
    ).map((l) => l.length),
  );
  const errorsBelow = !wide && header.includes("error") && STATUS_WIDTH - otherWidth - 2 < 40;
  const shown = errorsBelow ? withoutError : header;
  const table = columns(
    shown,
    rows.map((r) => shown.map((h) => r[h]!)),
  );
  const errorLines = errorsBelow
    ? ["", "errors:", ...rows.filter((r) => r.error).map((r) => `  ${r.table}: ${r.error}`)]
    : [];
  const cut = [...table, ...errorLines].some((l) => fit(l) !== l);
  // Long table names with every optional column: columns other than the error are cut too.
  const cutNote =
    otherWidth > STATUS_WIDTH
      ? "(lines cut at 120 columns: `panorama status --wide` shows every column whole)"
      : "(errors cut at 120 columns: `panorama status --wide` shows them whole)";
  const lines = [
    `mode ${status.mode}, datalake ${status.target}`,
    pseudonymsLine(status.pseudonyms),
    ...running,
    verifyLine(status.last_verify),
    "",
    ...table.map(fit),
    ...errorLines.map(fit),
    ...logLines(status.logs, wide).map(fit),
    ...lossLines(status.logs_lost),
    ...(status.logs_pending_partitions
      ? [
          `${formatCount(status.logs_pending_partitions)} tracking-log day partition(s) not registered in Glue yet (the next log-ship registers them)`,
        ]
      : []),
    ...(cut ? ["", cutNote] : []),
  ];
  return `${lines.join("\n")}\n`;
}
