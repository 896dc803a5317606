// When each table was last read in full and its stale objects deleted (DESIGN §7, §7a): a
// partitioned table is read in full again once `extract.full_every` has passed since then.
import { join } from "node:path";
import type { Config, TableConfig } from "../config/types.ts";
import { readJson, writeJsonAtomic } from "./atomic.ts";

function path(stateDir: string): string {
  return join(stateDir, "full-reads.json");
}

/** table → ISO time of its last full read whose stale objects were deleted */
function readFullReads(stateDir: string): Record<string, string> {
  return readJson<Record<string, string>>(path(stateDir), {});
}

export function saveFullRead(stateDir: string, table: string, time: Date): void {
  writeJsonAtomic(path(stateDir), { ...readFullReads(stateDir), [table]: time.toISOString() });
}

/**
 * A full read asked for (`run --full`) is owed until it finishes: a run killed before it deleted
 * the stale objects leaves no record, so the next run reads in full again (DESIGN §9: the next run
 * completes the work), instead of waiting up to full_every with the stale objects in the lake.
 */
export function markFullReadsOwed(stateDir: string, tables: string[]): void {
  const reads = readFullReads(stateDir);
  const owed = tables.filter((table) => table in reads);
  if (owed.length === 0) return;
  for (const table of owed) delete reads[table];
  writeJsonAtomic(path(stateDir), reads);
}

/**
 * Whether a partitioned table must be read whole: `fullEvery` seconds (0 = never, undefined = not
 * asked) since its last full read, or none recorded. (An unpartitioned table counts from its
 * probe's last read: unchanged-probe.ts.)
 */
export function fullReadDue(config: Config, table: TableConfig, fullEvery: number | undefined): boolean {
  if (table.partition_fields.length === 0 || fullEvery === undefined || fullEvery === 0) return false;
  const last = readFullReads(config.state_dir)[table.name];
  if (last === undefined) return true;
  return Date.now() - Date.parse(last) >= fullEvery * 1000;
}
