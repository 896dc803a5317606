// The layout each table's objects were last written in: the fingerprint of what shapes their
// bytes (columns and their encoding, partition fields, keys, compression, privacy) and the
// column names. An incremental table re-extracts only its recent partitions: after its layout
// changed (an upgrade added or dropped a column, a preset column is now written empty, `fields`
// were edited) its older objects would keep the old one, and the datalake would mix two layouts
// under one table. So the next extraction reads it in full, which writes every partition anew.
import { join } from "node:path";
import { readJson, writeJsonAtomic } from "./atomic.ts";

export interface WrittenLayout {
  fingerprint: string;
  /** the CSV columns, in order */
  columns: string[];
  /** the partition fields (absent in what earlier versions recorded) */
  partitions?: string[];
}

function path(stateDir: string): string {
  return join(stateDir, "written-layout.json");
}

/**
 * How the layout now differs from the one the table's objects were last written in, in words;
 * null when it is the same, or nothing is known of the last one (a first run). `earlier`: the
 * fingerprint known otherwise (the unchanged probe's record) when this file has none yet.
 */
export function layoutChange(
  stateDir: string,
  table: string,
  now: WrittenLayout,
  earlier: string | undefined,
): string | null {
  const recorded = readJson<Record<string, WrittenLayout>>(path(stateDir), {})[table];
  const fingerprint = recorded?.fingerprint ?? earlier;
  if (fingerprint === undefined || fingerprint === now.fingerprint) return null;
  if (!recorded) return "its columns, their encoding, its partitioning or privacy";
  // A column that became a partition field leaves the CSV columns, one that stopped being one
  // joins them: said as what it is, not as a column added or dropped.
  const before = recorded.partitions;
  const partitioned = before ? (now.partitions ?? []).filter((p) => !before.includes(p)) : [];
  const unpartitioned = before ? before.filter((p) => !(now.partitions ?? []).includes(p)) : [];
  const added = now.columns.filter((c) => !recorded.columns.includes(c) && !unpartitioned.includes(c));
  const dropped = recorded.columns.filter((c) => !now.columns.includes(c) && !partitioned.includes(c));
  const parts = [
    ...(added.length > 0 ? [`added ${added.join(", ")}`] : []),
    ...(dropped.length > 0 ? [`dropped ${dropped.join(", ")}`] : []),
    ...(partitioned.length > 0 ? [`now partitioned by ${partitioned.join(", ")}`] : []),
    ...(unpartitioned.length > 0 ? [`no longer partitioned by ${unpartitioned.join(", ")}`] : []),
  ];
  if (parts.length > 0) return parts.join("; ");
  return same(recorded.columns, now.columns)
    ? "the same columns, another encoding, partitioning or privacy"
    : "its columns in another order";
}

export function saveWrittenLayout(stateDir: string, table: string, layout: WrittenLayout): void {
  const recorded = readJson<Record<string, WrittenLayout>>(path(stateDir), {});
  const before = recorded[table];
  if (
    before?.fingerprint === layout.fingerprint &&
    same(before.columns, layout.columns) &&
    same(before.partitions ?? [], layout.partitions ?? [])
  )
    return;
  writeJsonAtomic(path(stateDir), { ...recorded, [table]: layout });
}

function same(a: string[], b: string[]): boolean {
  return a.length === b.length && a.every((c, i) => c === b[i]);
}
