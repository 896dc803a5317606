// `panorama status`: per table the last run, the watermark and what waits in the spool; per
// tracking log the bytes not shipped yet and the last upload.

import { PartitionState } from "./catalog/partitions.ts";
import { registersPartitions } from "./catalog/register.ts";
import { rawTrackingLogsName } from "./catalog/sql.ts";
import { modeAllows } from "./config/modes.ts";
import type { Config } from "./config/types.ts";
import { listSpool, spoolDir } from "./datalake/spool.ts";
import { type LogLoss, type LogShipFileStatus, logShipLosses, logShipStatus } from "./logship/checkpoint.ts";
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
  /** partition_fields configured: "not read (unchanged)" counts partitions, else it is the table */
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
  };
}

const number = new Intl.NumberFormat("en-US");

function columns(header: string[], rows: string[][]): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i]!))
      .join("  ")
      .trimEnd();
  return [header, ...rows].map(line);
}

function logLines(logs: LogShipFileStatus[]): string[] {
  if (logs.length === 0) return [];
  const rows = logs.map((l) => [
    l.path,
    number.format(l.size),
    number.format(l.unshipped),
    l.last_upload ? l.last_upload.replace("T", " ").slice(0, 19) : "never",
  ]);
  return ["", ...columns(["tracking log", "bytes", "not shipped", "last upload"], rows)];
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
    const uncounted = l.uncounted_files
      ? `, and lines not counted in ${number.format(l.uncounted_files)} more`
      : "";
    return `${l.log}: ${number.format(l.lines)} line(s) (${number.format(l.bytes)} bytes) lost in ${number.format(l.files)} file(s) removed or truncated before they were shipped${uncounted}; the last ${l.last.replace("T", " ").slice(0, 19)}`;
  });
}

/** What the last run did not read because it could not have changed (DESIGN §7). */
function unreadCell(table: TableStatus): string {
  const unread = table.last_run?.unread;
  if (!unread) return "";
  return table.partitioned ? `${number.format(unread)} partition(s)` : "table";
}

/** Plain-text tables for people. */
export function formatStatus(status: Status): string {
  const header = [
    "table",
    "last run",
    "rows",
    "objects",
    "bytes",
    "unchanged",
    "not read (unchanged)",
    "seconds",
    "watermark",
    "spool",
    "unregistered",
    "error",
  ];
  const rows = status.tables.map((t) => {
    const r = t.last_run;
    // A preset table this database does not have (DESIGN §10): nothing was read, nothing failed.
    if (r?.absent) {
      const time = r.time.replace("T", " ").slice(0, 19);
      return [t.table, time, "absent", "", "", "", "", "", t.watermark ?? "", "", "", ""];
    }
    return [
      t.table,
      r ? r.time.replace("T", " ").slice(0, 19) : "never",
      r ? number.format(r.rows) : "",
      r ? number.format(r.objects) : "",
      r ? number.format(r.bytes) : "",
      r ? number.format(r.skipped) : "",
      unreadCell(t),
      r ? String(r.seconds) : "",
      t.watermark ?? "",
      t.spooled_files > 0 ? `${t.spooled_files} file(s), ${number.format(t.spooled_bytes)} B` : "",
      t.pending_partitions ? `${number.format(t.pending_partitions)} partition(s)` : "",
      r?.error ?? "",
    ];
  });
  const lines = [
    `mode ${status.mode}, datalake ${status.target}`,
    verifyLine(status.last_verify),
    "",
    ...columns(header, rows),
    ...logLines(status.logs),
    ...lossLines(status.logs_lost),
    ...(status.logs_pending_partitions
      ? [
          `${number.format(status.logs_pending_partitions)} tracking-log day partition(s) not registered in Glue yet (the next log-ship registers them)`,
        ]
      : []),
  ];
  return `${lines.join("\n")}\n`;
}
