// The CSV columns each table's objects were last written with. An incremental table re-extracts
// only its recent partitions: after its columns changed (a `[[tables]]` entry without `fields`
// whose MySQL table gained or lost a column in an upgrade, or `fields` edited) its older objects
// would keep the old header, and the datalake would mix two layouts under one table. So the next
// extraction reads it in full, which writes every partition with the new columns.
import { join } from "node:path";
import { readJson, writeJsonAtomic } from "./atomic.ts";

function path(stateDir: string): string {
  return join(stateDir, "written-columns.json");
}

/**
 * How `columns` differ from those the table's objects were last written with, in words; null when
 * they are the same, or nothing was recorded (a first run, or state written by an older version).
 */
export function columnsChange(stateDir: string, table: string, columns: string[]): string | null {
  const recorded = readJson<Record<string, string[]>>(path(stateDir), {})[table];
  if (recorded === undefined || same(recorded, columns)) return null;
  const added = columns.filter((c) => !recorded.includes(c));
  const dropped = recorded.filter((c) => !columns.includes(c));
  const parts = [
    ...(added.length > 0 ? [`added ${added.join(", ")}`] : []),
    ...(dropped.length > 0 ? [`dropped ${dropped.join(", ")}`] : []),
  ];
  return parts.length > 0 ? parts.join("; ") : "their order changed";
}

export function saveWrittenColumns(stateDir: string, table: string, columns: string[]): void {
  const recorded = readJson<Record<string, string[]>>(path(stateDir), {});
  if (recorded[table] && same(recorded[table], columns)) return;
  writeJsonAtomic(path(stateDir), { ...recorded, [table]: columns });
}

function same(a: string[], b: string[]): boolean {
  return a.length === b.length && a.every((c, i) => c === b[i]);
}
