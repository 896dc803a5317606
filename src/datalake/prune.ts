// Deletions (DESIGN §7a): the datalake must not keep what the LMS no longer has. The objects of a
// table that a full read did not produce, or that `verify` found stale, are deleted (both
// compression variants are data objects), the upload state forgets them, and a partition left
// without a data object leaves the catalog too. Only this host's objects are ever touched: the
// listing is limited to the table's base partitions (`lms=<lms_host>`), as several LMSs write
// into the same tables.
import { dirname } from "node:path";
import type { Glue } from "../aws/glue.ts";
import { unregisterPartitions } from "../catalog/register.ts";
import type { Config, TableConfig } from "../config/types.ts";
import { log } from "../log.ts";
import { partitionPath, tableLocationPrefix } from "./layout.ts";
import type { StoredObject, Target } from "./targets.ts";
import type { Uploader } from "./upload.ts";

/** Where this host's objects of `table` live: its location, then the base partitions. */
export function hostTablePrefix(config: Config, table: string): string {
  const base = partitionPath(config.datalake.base_partitions);
  return `${tableLocationPrefix(config.datalake.base_prefix, table)}${base ? `${base}/` : ""}`;
}

/** `<table>.csv` or `<table>.csv.gz`: the data objects, never anything else under the prefix. */
export function isDataObject(table: string, key: string): boolean {
  const name = key.slice(key.lastIndexOf("/") + 1);
  return name === `${table}.csv` || name === `${table}.csv.gz`;
}

/** This host's data objects of `table`, as the datalake itself lists them. */
export async function listTableObjects(
  config: Config,
  target: Target,
  table: string,
): Promise<StoredObject[]> {
  const objects = await target.list(hostTablePrefix(config, table));
  return objects.filter((o) => isDataObject(table, o.key));
}

/**
 * The partition values of a data object (base then field partitions), percent-encoding undone.
 * quote() keeps "/" and encodes "=", so a segment without "=" continues the value before it (an
 * old-style course id such as `MITx/6.00x/2012` spans directories, as upstream writes it).
 */
export function partitionValuesOf(config: Config, table: string, key: string): string[] {
  const location = tableLocationPrefix(config.datalake.base_prefix, table);
  const values: string[] = [];
  for (const segment of dirname(key.slice(location.length)).split("/")) {
    if (segment === "." || segment === "") continue;
    const equals = segment.indexOf("=");
    if (equals < 0 && values.length > 0) values[values.length - 1] += `/${segment}`;
    else values.push(segment.slice(equals + 1));
  }
  return values.map((value) => {
    try {
      return decodeURIComponent(value);
    } catch {
      return value;
    }
  });
}

export interface PruneResult {
  /** keys deleted */
  deleted: string[];
  /** partitions left without a data object, removed from the catalog */
  partitions: string[][];
  /** false when the catalog could not be updated (the objects are gone all the same) */
  catalogued: boolean;
}

/**
 * Deletes `stale` (keys of `table`), makes `uploader`'s state forget them, and removes from the
 * catalog each partition that keeps none of the `live` keys.
 */
export async function removeStale(
  config: Config,
  target: Target,
  uploader: Uploader,
  table: TableConfig,
  stale: string[],
  live: Iterable<string>,
  glue?: Glue,
): Promise<PruneResult> {
  if (stale.length === 0) return { deleted: [], partitions: [], catalogued: true };
  for (const key of stale) {
    await target.delete(key);
    log.debug("deleted a stale object", { table: table.name, key });
  }
  uploader.forget(stale);
  const liveDirs = new Set([...live].map((key) => dirname(key)));
  const emptied = [...new Set(stale.map((key) => dirname(key)))].filter((dir) => !liveDirs.has(dir));
  const partitions = emptied.map((dir) => partitionValuesOf(config, table.name, `${dir}/x`));
  const catalogued = await unregisterPartitions(config, table.datalake_table, partitions, glue);
  return { deleted: stale, partitions, catalogued };
}

/**
 * After a full read of `table` whose every file is stored: deletes the data objects of this host
 * that the read did not produce (a deleted course, a partition whose rows are gone).
 */
export async function pruneUnproduced(
  config: Config,
  target: Target,
  uploader: Uploader,
  table: TableConfig,
  produced: ReadonlySet<string>,
  glue?: Glue,
): Promise<PruneResult> {
  const stale = await unproducedKeys(config, target, table.name, produced);
  return removeStale(config, target, uploader, table, stale, produced, glue);
}

/** This host's data objects of `table` that `produced` (a full read's keys) does not hold. */
export async function unproducedKeys(
  config: Config,
  target: Target,
  table: string,
  produced: ReadonlySet<string>,
): Promise<string[]> {
  const listed = await listTableObjects(config, target, table);
  return listed.map((o) => o.key).filter((key) => !produced.has(key));
}
