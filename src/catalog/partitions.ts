// Partition registration (DESIGN §6): every partition that an upload wrote is remembered per Glue
// table in state_dir/catalog/<database>/<table>.json, pending until BatchCreatePartition took it
// (at most 100 per call; an AlreadyExists entry counts as registered), registered afterwards. A
// steady run whose partitions are all registered makes no catalog call; an entry that failed
// stays pending and is sent again by the next run.
//
// A partition carries its own storage descriptor in Glue (Athena reads the SerDe from it), copied
// from the table's. That copy is kept in the same state file, refreshed by `catalog --create` and
// by a GetTable at most once a day, so registering costs BatchCreatePartition calls only.
//
// A partition whose objects are deleted (DESIGN §7a) leaves Glue (BatchDeletePartition, 25 per
// call) and this state, so that a partition coming back is registered again. Until Glue took the
// deletion it stays owed in the state: no later listing finds its objects again, so a removal
// that failed (Glue unreachable) would otherwise leave the partition in Glue for good.
import { join } from "node:path";
import type { Glue, PartitionError, PartitionInput, StorageDescriptor } from "../aws/glue.ts";
import { GlueError, MAX_PARTITIONS_PER_CALL, MAX_PARTITIONS_PER_DELETE } from "../aws/glue.ts";
import { PanoramaError } from "../errors.ts";
import { readJson, removeAbandonedTemps, writeJsonAtomic } from "../state/atomic.ts";

/** A partition an upload wrote into: its values in key order and where its objects are. */
export interface PartitionRef {
  values: string[];
  /** "" for a local datalake */
  bucket: string;
  /** key prefix of its objects, ending with "/" */
  prefix: string;
}

interface PartitionEntry {
  values: string[];
  bucket: string;
  prefix: string;
  registered: boolean;
  /** the last error of a pending partition */
  error?: string;
}

/** The table's storage descriptor without its location, and its partition keys. */
export interface PartitionTemplate {
  keys: string[];
  descriptor: Omit<StorageDescriptor, "Location">;
  fetched_at: string;
}

interface TableState {
  version: 1;
  template: PartitionTemplate | null;
  /** by JSON of the values */
  partitions: Record<string, PartitionEntry>;
  /** partitions whose objects were deleted and that Glue may still hold, by JSON of the values */
  removals?: Record<string, string[]>;
}

const TEMPLATE_MAX_AGE_MS = 24 * 3600 * 1000;

export class PartitionRegistrationError extends PanoramaError {
  constructor(
    message: string,
    hint: string | undefined,
    /** the Glue table does not exist (not created yet) */
    readonly missingTable = false,
  ) {
    super(message, hint);
  }
}

export interface RegisterResult {
  /** Glue calls made */
  calls: number;
  registered: number;
  /** entries Glue already had */
  existing: number;
  failed: { values: string[]; error: string }[];
}

/** The partition state of one Glue database, loaded table by table, saved atomically. */
export class PartitionState {
  private readonly tables = new Map<string, TableState>();
  readonly dir: string;
  private swept = false;

  constructor(stateDir: string, database: string) {
    this.dir = join(stateDir, "catalog", database);
  }

  private path(table: string): string {
    return join(this.dir, `${table}.json`);
  }

  private load(table: string): TableState {
    let state = this.tables.get(table);
    if (!state) {
      state = readJson<TableState>(this.path(table), { version: 1, template: null, partitions: {} });
      this.tables.set(table, state);
    }
    return state;
  }

  save(table: string): void {
    const state = this.tables.get(table);
    if (!state) return;
    if (!this.swept) {
      // Saved under the run's or log-ship's lock: what writers killed mid-write left goes first.
      removeAbandonedTemps(this.dir);
      this.swept = true;
    }
    writeJsonAtomic(this.path(table), state);
  }

  /** Remember partitions that uploads wrote; returns how many were not known before. */
  add(table: string, refs: Iterable<PartitionRef>): number {
    const state = this.load(table);
    let added = 0;
    let cancelled = 0;
    for (const ref of refs) {
      const id = JSON.stringify(ref.values);
      // Written again before Glue took its removal: the partition must stay.
      if (state.removals && delete state.removals[id]) cancelled++;
      const known = state.partitions[id];
      if (known && known.bucket === ref.bucket && known.prefix === ref.prefix) continue;
      state.partitions[id] = {
        values: [...ref.values],
        bucket: ref.bucket,
        prefix: ref.prefix,
        registered: false,
      };
      added++;
    }
    if (added + cancelled > 0) this.save(table);
    return added;
  }

  /**
   * The partitions not registered yet that the table can hold: one written under other partition
   * keys than the table's (before base_partitions or partition_fields changed, and the table was
   * made again) stays in the state, for a table with those keys made again later, but is not
   * pending for this one.
   */
  pending(table: string): PartitionRef[] {
    const state = this.load(table);
    const keys = state.template?.keys.length;
    return Object.values(state.partitions).filter(
      (p) => !p.registered && (keys === undefined || p.values.length === keys),
    );
  }

  /** Whether a partition is not registered, whatever keys it was written under. */
  hasUnregistered(table: string): boolean {
    return Object.values(this.load(table).partitions).some((p) => !p.registered);
  }

  /** Every partition known, registered or not, in value order. */
  all(table: string): PartitionRef[] {
    return Object.values(this.load(table).partitions).sort((a, b) =>
      JSON.stringify(a.values) < JSON.stringify(b.values) ? -1 : 1,
    );
  }

  template(table: string): PartitionTemplate | null {
    return this.load(table).template;
  }

  /** In memory only: the caller saves (registerPartitions' finally does, after a fetch). */
  setTemplate(table: string, keys: string[], descriptor: StorageDescriptor): void {
    const { Location: _location, ...rest } = descriptor;
    this.load(table).template = { keys, descriptor: rest, fetched_at: new Date().toISOString() };
  }

  /** The table was dropped, and its partitions with it: a new table gets them all again. */
  forget(table: string): void {
    const state = this.load(table);
    state.template = null;
    for (const p of Object.values(state.partitions)) p.registered = false;
    this.save(table);
  }

  /**
   * Partitions whose objects were deleted (DESIGN §7a): a later upload registers them anew. With
   * `owed`, their removal from Glue is owed until `removalsDone` says Glue took it.
   */
  remove(table: string, values: Iterable<string[]>, owed = false): void {
    const state = this.load(table);
    let changed = 0;
    for (const v of values) {
      const id = JSON.stringify(v);
      if (delete state.partitions[id]) changed++;
      if (owed && !state.removals?.[id]) {
        state.removals = { ...state.removals, [id]: [...v] };
        changed++;
      }
    }
    if (changed > 0) this.save(table);
  }

  /** The partitions of `table` whose removal from Glue is owed. */
  removalsOwed(table: string): string[][] {
    return Object.values(this.load(table).removals ?? {});
  }

  /** Glue took the removal of these partitions (or never had them). */
  removalsDone(table: string, values: Iterable<string[]>): void {
    const state = this.load(table);
    let done = 0;
    for (const v of values) if (state.removals && delete state.removals[JSON.stringify(v)]) done++;
    if (state.removals && Object.keys(state.removals).length === 0) delete state.removals;
    if (done > 0) this.save(table);
  }

  /**
   * The registered partitions that Glue no longer has (deleted by hand, or the table made again
   * outside panorama) are pending again; returns how many.
   */
  forgetAbsent(table: string, inGlue: string[][]): number {
    const there = new Set(inGlue.map((v) => JSON.stringify(v)));
    let lost = 0;
    for (const [id, p] of Object.entries(this.load(table).partitions)) {
      if (p.registered && !there.has(id)) {
        p.registered = false;
        lost++;
      }
    }
    if (lost > 0) this.save(table);
    return lost;
  }

  /** These partitions are pending, known before or not (verify found them missing in Glue). */
  markPending(table: string, refs: Iterable<PartitionRef>): void {
    const state = this.load(table);
    for (const ref of refs) {
      state.partitions[JSON.stringify(ref.values)] = {
        values: [...ref.values],
        bucket: ref.bucket,
        prefix: ref.prefix,
        registered: false,
      };
    }
    this.save(table);
  }

  markRegistered(table: string, values: string[]): void {
    const entry = this.load(table).partitions[JSON.stringify(values)];
    if (entry) {
      entry.registered = true;
      delete entry.error;
    }
  }

  markFailed(table: string, values: string[], error: string): void {
    const entry = this.load(table).partitions[JSON.stringify(values)];
    if (entry) entry.error = error;
  }
}

/**
 * Sends the pending partitions of `table` to Glue, 100 per call. `location` turns a partition's
 * bucket and prefix into its URL. Throws a GlueError when a whole call fails (what was sent
 * before stays registered, the rest pending).
 */
export async function registerPartitions(
  glue: Glue,
  state: PartitionState,
  table: string,
  location: (ref: PartitionRef) => string,
): Promise<RegisterResult> {
  const result: RegisterResult = { calls: 0, registered: 0, existing: 0, failed: [] };
  // Those written under other keys than the table's are left out; the daily look at the table
  // sees keys changed in Glue since.
  if (!state.hasUnregistered(table)) return result;
  let template = state.template(table);
  const fresh = template !== null && Date.now() - Date.parse(template.fetched_at) <= TEMPLATE_MAX_AGE_MS;
  if (fresh && state.pending(table).length === 0) return result;
  try {
    if (!template || !fresh) {
      template = await fetchTemplate(glue, state, table);
      result.calls++;
    }
    const { descriptor } = template;
    const pending = state.pending(table);
    for (let i = 0; i < pending.length; i += MAX_PARTITIONS_PER_CALL) {
      const batch = pending.slice(i, i + MAX_PARTITIONS_PER_CALL);
      const inputs: PartitionInput[] = batch.map((p) => ({
        Values: p.values,
        StorageDescriptor: { ...descriptor, Location: location(p) },
      }));
      result.calls++;
      const errors = await glue.batchCreatePartition(table, inputs);
      const failed = new Map<string, string>();
      for (const e of errors) {
        const values = e.PartitionValues ?? [];
        const code = e.ErrorDetail?.ErrorCode ?? "UnknownError";
        if (code === "AlreadyExistsException") {
          result.existing++;
          continue;
        }
        failed.set(JSON.stringify(values), `${code}: ${e.ErrorDetail?.ErrorMessage ?? ""}`.trim());
      }
      for (const p of batch) {
        const error = failed.get(JSON.stringify(p.values));
        if (error === undefined) {
          state.markRegistered(table, p.values);
          result.registered++;
        } else {
          state.markFailed(table, p.values, error);
          result.failed.push({ values: p.values, error });
        }
      }
    }
  } finally {
    state.save(table);
  }
  result.registered -= result.existing;
  return result;
}

/**
 * Removes partitions from Glue, 25 per call (BatchDeletePartition's limit). A partition Glue does
 * not have is fine; other per-entry errors are returned. A table Glue does not have holds none.
 */
export async function deletePartitions(
  glue: Glue,
  table: string,
  values: string[][],
): Promise<{ calls: number; deleted: number; failed: { values: string[]; error: string }[] }> {
  const result = { calls: 0, deleted: 0, failed: [] as { values: string[]; error: string }[] };
  for (let i = 0; i < values.length; i += MAX_PARTITIONS_PER_DELETE) {
    const batch = values.slice(i, i + MAX_PARTITIONS_PER_DELETE);
    result.calls++;
    let errors: PartitionError[];
    try {
      errors = await glue.batchDeletePartition(table, batch);
    } catch (error) {
      if (error instanceof GlueError && error.missing === "entity") return result;
      throw error;
    }
    for (const e of errors) {
      const code = e.ErrorDetail?.ErrorCode ?? "UnknownError";
      if (code === "EntityNotFoundException") continue;
      const error = `${code}: ${e.ErrorDetail?.ErrorMessage ?? ""}`.trim();
      result.failed.push({ values: e.PartitionValues ?? [], error });
    }
    result.deleted += batch.length - errors.length;
  }
  return result;
}

async function fetchTemplate(glue: Glue, state: PartitionState, table: string): Promise<PartitionTemplate> {
  const found = await glue.getTable(table);
  const sd = found?.StorageDescriptor;
  if (!found || !sd?.SerdeInfo || !sd.InputFormat) {
    throw new PartitionRegistrationError(
      found
        ? `table ${glue.database}.${table} has no storage descriptor to give its partitions`
        : `table ${glue.database}.${table} does not exist: its partitions cannot be registered`,
      "create it with `panorama catalog --create` (CUSTOM mode), or ask the datalake's provider (SAAS)",
      !found,
    );
  }
  const descriptor: StorageDescriptor = {
    Columns: sd.Columns ?? [],
    Location: sd.Location ?? "",
    InputFormat: sd.InputFormat,
    OutputFormat: sd.OutputFormat ?? "",
    SerdeInfo: {
      SerializationLibrary: sd.SerdeInfo.SerializationLibrary ?? "",
      Parameters: sd.SerdeInfo.Parameters ?? {},
    },
  };
  state.setTemplate(
    table,
    (found.PartitionKeys ?? []).map((k) => k.Name),
    descriptor,
  );
  return state.template(table)!;
}
