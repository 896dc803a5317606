// The compression each table's objects were last written in. An incremental table re-extracts
// only its recent partitions: after `datalake.compression` changed (or a repair wrote its objects
// under another setting) its older objects would stay in the other variant, so the next
// extraction reads it in full, which writes each in the current variant and deletes the other.
import { join } from "node:path";
import type { Config } from "../config/types.ts";
import { readJson, writeJsonAtomic } from "./atomic.ts";

function path(stateDir: string): string {
  return join(stateDir, "written-compression.json");
}

/** Whether the table's objects were last written in another compression than the configured one. */
export function compressionChanged(config: Config, table: string): boolean {
  const recorded = readJson<Record<string, string>>(path(config.state_dir), {})[table];
  return recorded !== undefined && recorded !== config.datalake.compression;
}

export function saveWrittenCompression(config: Config, table: string): void {
  const recorded = readJson<Record<string, string>>(path(config.state_dir), {});
  if (recorded[table] === config.datalake.compression) return;
  writeJsonAtomic(path(config.state_dir), { ...recorded, [table]: config.datalake.compression });
}
