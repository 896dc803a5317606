// `panorama status`: per table the last run, the watermark and what waits in the spool.
import type { Config } from "./config/types.ts";
import { listSpool, spoolDir } from "./datalake/spool.ts";
import { readRuns, type TableRun } from "./state/runs.ts";
import { readWatermarks } from "./state/watermarks.ts";

export interface TableStatus {
  table: string;
  last_run: TableRun | null;
  watermark: string | null;
  /** files of this table extracted but not yet uploaded */
  spooled_files: number;
  spooled_bytes: number;
}

export interface Status {
  mode: Config["mode"];
  target: string;
  tables: TableStatus[];
}

export async function collectStatus(config: Config): Promise<Status> {
  const runs = readRuns(config.state_dir);
  const watermarks = readWatermarks(config.state_dir);
  const spooled = await listSpool(spoolDir(config.state_dir));
  return {
    mode: config.mode,
    target: config.datalake.target === "s3" ? `s3://${config.datalake.bucket}` : config.datalake.path,
    tables: config.tables.map((t) => {
      const files = spooled.filter((e) => e.table === t.name);
      return {
        table: t.name,
        last_run: runs[t.name] ?? null,
        watermark: watermarks[t.name]?.value ?? null,
        spooled_files: files.length,
        spooled_bytes: files.reduce((sum, e) => sum + e.bytes, 0),
      };
    }),
  };
}

const number = new Intl.NumberFormat("en-US");

/** A plain-text table for people. */
export function formatStatus(status: Status): string {
  const header = [
    "table",
    "last run",
    "rows",
    "objects",
    "bytes",
    "unchanged",
    "seconds",
    "watermark",
    "spool",
    "error",
  ];
  const rows = status.tables.map((t) => {
    const r = t.last_run;
    return [
      t.table,
      r ? r.time.replace("T", " ").slice(0, 19) : "never",
      r ? number.format(r.rows) : "",
      r ? number.format(r.objects) : "",
      r ? number.format(r.bytes) : "",
      r ? number.format(r.skipped) : "",
      r ? String(r.seconds) : "",
      t.watermark ?? "",
      t.spooled_files > 0 ? `${t.spooled_files} file(s), ${number.format(t.spooled_bytes)} B` : "",
      r?.error ?? "",
    ];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i]!))
      .join("  ")
      .trimEnd();
  return (
    [`mode ${status.mode}, datalake ${status.target}`, "", line(header), ...rows.map(line)].join("\n") + "\n"
  );
}
