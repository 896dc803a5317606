// What the unchanged-table probe saw at each table's last successful read (DESIGN §7): per
// partition (or the whole unpartitioned table) COUNT(*), MAX(pk) and MAX(changed_field), or the
// checksum of its content, so that the next run can tell a table or partition that cannot have
// changed and not read it.
import { join } from "node:path";
import { readJson, writeJsonAtomic } from "./atomic.ts";

export interface TableProbes {
  /** what the read would produce (columns, layout, privacy): a change of config reads again */
  fingerprint: string;
  /** ISO time of the table's last real read: `full_every` counts from it */
  read_at: string;
  /**
   * partition key (probeKey) → "count/max pk/max changed_field" ("count/max pk" when probed
   * through the indexes), or "crc32b:count/sum" (the content checksum); "" for an unpartitioned table
   */
  signatures: Record<string, string>;
  /**
   * a partitioned table probed through its indexes: the newest changed_field value at the probe
   * (the server's text); the next probe looks for saves from a little before it
   */
  changed_max?: string;
  /**
   * the table's change marker (schema-snapshot.ts) when it was probed: the same at the next run
   * means nothing was committed to it since
   */
  marker?: string;
}

function path(stateDir: string): string {
  return join(stateDir, "probes.json");
}

export function readProbes(stateDir: string): Record<string, TableProbes> {
  return readJson<Record<string, TableProbes>>(path(stateDir), {});
}

/** Record one table's probes, or forget them (null: the table no longer qualifies). */
export function saveProbes(stateDir: string, table: string, probes: TableProbes | null): void {
  const all = readProbes(stateDir);
  if (probes === null && !(table in all)) return;
  // A table not read again records what it had: nothing to write (29 fsyncs were a third of an
  // unchanged run's time).
  if (probes !== null && JSON.stringify(all[table]) === JSON.stringify(probes)) return;
  if (probes === null) delete all[table];
  else all[table] = probes;
  // Not fsynced: a probes.json lost or older after a crash only makes the next run read more,
  // never less (the files it describes are synced before it is written).
  writeJsonAtomic(path(stateDir), all, false);
}
