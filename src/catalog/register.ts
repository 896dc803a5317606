// Partition registration as the jobs use it: `run`/`upload` after their uploads, log-ship for
// each day partition, `catalog --partitions` for whatever is pending. Failures are logged and
// reported as `false`: the data is stored, only its registration waits for the next run. Glue
// giving no answer at all stops the registration, said once, instead of once per table.
import { dirname } from "node:path";
import { AwsClient } from "../aws/client.ts";
import { Glue, GlueError } from "../aws/glue.ts";
import { modeAllows } from "../config/modes.ts";
import type { Config, TableConfig } from "../config/types.ts";
import type { ManifestEntry } from "../datalake/spool.ts";
import { messageOf } from "../errors.ts";
import { log } from "../log.ts";
import type { TrackingLogPartition } from "../logship/upload.ts";
import { locationOf, trackingLogsTableName } from "./model.ts";
import {
  deletePartitions,
  type PartitionRef,
  PartitionRegistrationError,
  PartitionState,
  registerPartitions,
} from "./partitions.ts";

/** Glue for this config; `options` lets tests count or fail calls. */
export function glueFor(config: Config, options?: ConstructorParameters<typeof AwsClient>[1]): Glue {
  return new Glue(new AwsClient(config, options), config.datalake.database);
}

export function partitionLocation(config: Config, ref: PartitionRef): string {
  return locationOf(config, ref.bucket, ref.prefix);
}

/** Whether this config has a catalog to register partitions in. */
export function registersPartitions(config: Config): boolean {
  return config.datalake.target === "s3" && modeAllows(config.mode, "catalog-partitions").allowed;
}

/** The partitions of uploaded spool files, by Glue table. */
export function partitionsOfUploads(
  config: Config,
  entries: Iterable<ManifestEntry>,
): Map<string, PartitionRef[]> {
  const glueTable = new Map(config.tables.map((t) => [t.name, t.datalake_table]));
  const bucket = config.datalake.target === "s3" ? config.datalake.bucket : "";
  const out = new Map<string, PartitionRef[]>();
  for (const entry of entries) {
    const table = glueTable.get(entry.table);
    if (!table || entry.partitions.length === 0) continue;
    const refs = out.get(table) ?? [];
    refs.push({ values: entry.partitions.map(([, v]) => v), bucket, prefix: `${dirname(entry.key)}/` });
    out.set(table, refs);
  }
  return out;
}

/**
 * Remember the partitions of `uploaded`, then register every pending partition of `tables`
 * (configured tables; all by default) and of the tables `uploaded` wrote into. A local datalake
 * only remembers them (for `catalog --print-ddl`).
 */
export async function registerAfterUpload(
  config: Config,
  uploaded: Iterable<ManifestEntry>,
  glue?: Glue,
  tables: TableConfig[] = config.tables,
  reach?: GlueReach,
): Promise<boolean> {
  const state = new PartitionState(config.state_dir, config.datalake.database);
  const written = partitionsOfUploads(config, uploaded);
  for (const [table, refs] of written) state.add(table, refs);
  if (!registersPartitions(config)) return true;
  const names = new Set([...tables.map((t) => t.datalake_table), ...written.keys()]);
  return registerPending(config, state, [...names], glue, reach);
}

/**
 * Whether Glue could be reached, as one process has seen it over its registrations (log-ship
 * registers a day partition at a time). After a call that got no answer, the registrations of
 * the next `pauseMs` keep their partitions pending without a call: the cause is said once, and
 * no registration waits through the client's retries again. log-ship --follow, which runs for
 * days, tries again after the pause.
 */
export class GlueReach {
  private failedAt: number | null = null;
  private skipSaid = false;

  constructor(private readonly pauseMs = 10 * 60_000) {}

  get paused(): boolean {
    return this.failedAt !== null && Date.now() - this.failedAt < this.pauseMs;
  }

  unreachable(): void {
    this.failedAt = Date.now();
    this.skipSaid = false;
  }

  /** Whether a registration kept pending is the first since the failure: that one is said. */
  firstSkip(): boolean {
    const first = !this.skipSaid;
    this.skipSaid = true;
    return first;
  }
}

/** Glue gave no answer: what it was, and where to look. */
export function glueUnreachable(error: GlueError): string {
  return `Glue cannot be reached: ${error.aws.code}: ${error.aws.detail}; check datalake.glue_endpoint (when empty, the AWS endpoint of datalake.region) and the network path to that address (proxy, firewall, DNS)`;
}

/**
 * Register what is pending for `tables`; logs each table's outcome. An error answer is that
 * table's; Glue giving no answer at all stops the registration, said once (DESIGN: one cause,
 * one error), the partitions of the remaining tables kept pending for the next run.
 */
export async function registerPending(
  config: Config,
  state: PartitionState,
  tables: string[],
  glue: Glue = glueFor(config),
  reach: GlueReach = new GlueReach(),
): Promise<boolean> {
  if (reach.paused) {
    const waiting = tables.filter((t) => state.pending(t).length > 0);
    if (waiting.length > 0) {
      // Said once after the failure; log-ship --follow registers after each upload.
      const text = `Glue could not be reached earlier: ${stayPending(waiting)}`;
      if (reach.firstSkip()) log.info(text, { tables: waiting.length });
      else log.debug(text);
    }
    return waiting.length === 0;
  }
  let ok = true;
  /** tables Glue does not have yet: said once, with how to create them */
  const missing: string[] = [];
  for (const [index, table] of tables.entries()) {
    try {
      // Removals an earlier run could not send (DESIGN §7a: the catalog follows the deletions).
      if (!(await sendRemovals(glue, state, table))) ok = false;
      const result = await registerPartitions(glue, state, table, (ref) => partitionLocation(config, ref));
      // Nothing sent: none pending, or only the table's definition fetched.
      if (result.registered + result.existing + result.failed.length === 0) continue;
      const fields = {
        table,
        registered: result.registered,
        existing: result.existing,
        failed: result.failed.length,
        calls: result.calls,
      };
      if (result.failed.length === 0) {
        log.success(`${table}: ${result.registered + result.existing} partition(s) registered`, fields);
        continue;
      }
      ok = false;
      for (const f of result.failed.slice(0, 5)) {
        log.error(`${table}: partition (${f.values.join(", ")}) not registered: ${f.error}`, { table });
      }
      log.error(
        `${table}: ${result.failed.length} partition(s) not registered; the next run sends them again`,
        fields,
      );
    } catch (error) {
      ok = false;
      if (error instanceof GlueError && error.unreachable) {
        reach.unreachable();
        sayUnreachable(
          error,
          tables.slice(index).filter((t) => state.pending(t).length > 0),
        );
        break;
      }
      if (error instanceof PartitionRegistrationError && error.missingTable) {
        missing.push(table);
        continue;
      }
      if (error instanceof GlueError && error.missing === "database") {
        sayNoDatabase(
          error,
          tables.slice(index).filter((t) => state.pending(t).length > 0),
        );
        break;
      }
      log.error(`${table}: partitions not registered: ${messageOf(error)}`, { table });
      log.info(`${table}: ${state.pending(table).length} partition(s) kept pending for the next run`);
    }
  }
  if (missing.length > 0) sayMissingTables(config, missing);
  return ok;
}

/** What waits for the next run when registration stops. */
function stayPending(waiting: string[]): string {
  return `the partitions of ${waiting.length} table(s) stay pending; the next run registers them: ${waiting.join(", ")}`;
}

/** A first run before `panorama catalog`: one error for all the tables, with the command to run. */
function sayMissingTables(config: Config, tables: string[]): void {
  const named =
    tables.length > 5 ? `${tables.slice(0, 5).join(", ")} and ${tables.length - 5} more` : tables.join(", ");
  const fix = modeAllows(config.mode, "catalog-create").allowed
    ? "run `panorama catalog` once to create them (and their views)"
    : "the datalake's provider creates them (SAAS mode): ask them";
  log.error(
    `partitions not registered: ${tables.length} table(s) do not exist in the Glue database ${config.datalake.database}: ${named}; ${fix}; their partitions stay pending and the next run registers them`,
    { tables: tables.length },
  );
}

/** The Glue database itself is missing: no table is to blame. */
function sayNoDatabase(error: GlueError, waiting: string[]): void {
  log.error(`partitions not registered: ${messageOf(error)}`, { code: error.code });
  log.info(stayPending(waiting), { tables: waiting.length });
}

/** No table is to blame: the one error names the cause and what to check, then what waits. */
function sayUnreachable(error: GlueError, waiting: string[]): void {
  log.error(`partitions not registered: ${glueUnreachable(error)}`, { code: error.aws.code });
  log.info(stayPending(waiting), { tables: waiting.length });
}

/**
 * Partitions of `table` (Glue name) whose objects were deleted: forgotten by the partition state,
 * and removed from Glue when this config has a catalog. A removal Glue did not take stays owed in
 * the state, and the next registration (every run's catalog step) sends it again. Logs the
 * outcome; false on a failure.
 */
export async function unregisterPartitions(
  config: Config,
  table: string,
  values: string[][],
  glue?: Glue,
): Promise<boolean> {
  if (values.length === 0) return true;
  const state = new PartitionState(config.state_dir, config.datalake.database);
  const catalogued = registersPartitions(config);
  state.remove(table, values, catalogued);
  if (!catalogued) return true;
  try {
    return await sendRemovals(glue ?? glueFor(config), state, table);
  } catch (error) {
    log.error(
      `${table}: partitions not removed from the catalog: ${messageOf(error)}; the next run removes them`,
      {
        table,
      },
    );
    return false;
  }
}

/**
 * Sends the removals owed for `table` to Glue, and logs the outcome; those Glue took (or never
 * had) are owed no more. True when none failed; throws when a call got no answer.
 */
async function sendRemovals(glue: Glue, state: PartitionState, table: string): Promise<boolean> {
  const owed = state.removalsOwed(table);
  if (owed.length === 0) return true;
  const result = await deletePartitions(glue, table, owed);
  const failed = new Set(result.failed.map((f) => JSON.stringify(f.values)));
  state.removalsDone(
    table,
    owed.filter((values) => !failed.has(JSON.stringify(values))),
  );
  for (const f of result.failed.slice(0, 5)) {
    log.error(
      `${table}: partition (${f.values.join(", ")}) not removed from the catalog: ${f.error}; the next run tries again`,
      { table },
    );
  }
  log.info(`${table}: ${result.deleted} partition(s) removed from the catalog`, {
    table,
    calls: result.calls,
  });
  return result.failed.length === 0;
}

/** log-ship: the day partition of the tracking-logs table that an upload first wrote into. */
export async function registerTrackingLogPartition(
  config: Config,
  partition: TrackingLogPartition | null,
  glue?: Glue,
  reach?: GlueReach,
): Promise<boolean> {
  const state = new PartitionState(config.state_dir, config.datalake.database);
  const table = trackingLogsTableName(config);
  const bucket = config.datalake.target === "s3" ? (partition?.bucket ?? "") : "";
  if (partition) state.add(table, [{ values: [...partition.values], bucket, prefix: partition.prefix }]);
  if (!registersPartitions(config)) return true;
  return registerPending(config, state, [table], glue, reach);
}
