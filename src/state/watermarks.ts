// Per-table watermarks of incremental extraction (DESIGN §7): the largest timestamp_field value
// seen by the last successful run, kept as the server's text so no time zone ever shifts it.
import { join } from "node:path";
import { readJson, writeJsonAtomic } from "./atomic.ts";

export interface Watermark {
  /** server text of the largest timestamp seen, e.g. "2024-03-01 10:00:00.000000" */
  value: string;
  updated_at: string;
}

function path(stateDir: string): string {
  return join(stateDir, "watermarks.json");
}

export function readWatermarks(stateDir: string): Record<string, Watermark> {
  return readJson<Record<string, Watermark>>(path(stateDir), {});
}

/** Advance one table's watermark; read-modify-write of the whole file, atomically. */
export function saveWatermark(stateDir: string, table: string, value: string): void {
  const all = readWatermarks(stateDir);
  all[table] = { value, updated_at: new Date().toISOString() };
  writeJsonAtomic(path(stateDir), all);
}

/** Drop one table's watermark: its table was read in full and found empty. */
export function forgetWatermark(stateDir: string, table: string): void {
  const all = readWatermarks(stateDir);
  if (!(table in all)) return;
  delete all[table];
  writeJsonAtomic(path(stateDir), all);
}
