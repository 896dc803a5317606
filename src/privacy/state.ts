// Which pseudonyms each table was last extracted with. An incremental table re-extracts only its
// recent partitions: when pseudonyms are switched on (or the key changes) its older objects would
// keep the old values, so the next extraction reads it in full.
import { join } from "node:path";
import type { Config } from "../config/types.ts";
import { readJson, writeJsonAtomic } from "../state/atomic.ts";
import { pseudonymizedColumns } from "./fields.ts";
import { Pseudonymizer } from "./pseudonym.ts";

function path(stateDir: string): string {
  return join(stateDir, "pseudonyms.json");
}

/**
 * "off", or the columns and an id of the key: a pseudonym of a fixed text, which says whether
 * the key changed and nothing about the key.
 */
export function pseudonymState(config: Config, table: string): string {
  const columns = [...pseudonymizedColumns(config, table)].sort();
  if (columns.length === 0 || !config.privacy.key) return "off";
  return `${new Pseudonymizer(config.privacy.key).of("panorama key id")}:${columns.join(",")}`;
}

/** Whether the table's objects were written with other pseudonyms (or none) than now. */
export function pseudonymsChanged(config: Config, table: string): boolean {
  const recorded = readJson<Record<string, string>>(path(config.state_dir), {})[table] ?? "off";
  return recorded !== pseudonymState(config, table);
}

export function savePseudonymState(config: Config, table: string): void {
  const states = readJson<Record<string, string>>(path(config.state_dir), {});
  const state = pseudonymState(config, table);
  if (states[table] === state || (states[table] === undefined && state === "off")) return;
  writeJsonAtomic(path(config.state_dir), { ...states, [table]: state });
}
