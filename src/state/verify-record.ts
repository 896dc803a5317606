// The last `panorama verify`, for `status` (state_dir/verify.json): when, what it found, what was
// left after a repair. Kept apart from verify.ts so that `status` loads no MySQL driver.
import { join } from "node:path";
import { readJson, writeJsonAtomic } from "./atomic.ts";

/**
 * - missing: MySQL has rows for a partition the datalake holds no object for
 * - stale: an object of a partition MySQL has no rows for (or of the other compression variant)
 * - rows: the object's recorded rows differ from MySQL's count (or none were recorded)
 * - size: the object's size in the datalake differs from what was stored
 * - catalog: the object's partition is not in the Glue table (Athena does not read it)
 */
export type FindingKind = "missing" | "stale" | "rows" | "size" | "catalog";

export interface VerifyRecord {
  time: string;
  /** everything agreed (after the repair, when there was one) */
  ok: boolean;
  repair: boolean;
  /** differences found first */
  found: Record<FindingKind, number>;
  /** differences left (after the repair, when there was one) */
  left: Record<FindingKind, number>;
  /** tables that could not be verified */
  errors: number;
  seconds: number;
}

function path(stateDir: string): string {
  return join(stateDir, "verify.json");
}

export function readVerifyRecord(stateDir: string): VerifyRecord | null {
  return readJson<VerifyRecord | null>(path(stateDir), null);
}

export function saveVerifyRecord(stateDir: string, record: VerifyRecord): void {
  writeJsonAtomic(path(stateDir), record);
}
