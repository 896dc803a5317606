// The last run of each table, for `panorama status`: when, how much, how long, and any error.
import { join } from "node:path";
import { readJson, writeJsonAtomic } from "./atomic.ts";

export interface TableRun {
  /** ISO time the run of this table ended */
  time: string;
  command: "run" | "extract";
  rows: number;
  objects: number;
  bytes: number;
  skipped: number;
  seconds: number;
  watermark: string | null;
  error: string | null;
  /** partitions (1: the unpartitioned table) not read: unchanged since their last read (DESIGN §7) */
  unread?: number;
  /** a preset table the database does not have (skipped, DESIGN §10) */
  absent?: boolean;
}

function path(stateDir: string): string {
  return join(stateDir, "runs.json");
}

export function readRuns(stateDir: string): Record<string, TableRun> {
  return readJson<Record<string, TableRun>>(path(stateDir), {});
}

export function saveRuns(stateDir: string, runs: Record<string, TableRun>): void {
  // Written as each table's line is (29 times a run), not fsynced: what `status` shows, which a
  // crash may leave a table older, never wrong about the data (watermarks and the spool are
  // durable on their own). The fsyncs were a third of a run with nothing to read.
  writeJsonAtomic(path(stateDir), { ...readRuns(stateDir), ...runs }, false);
}
