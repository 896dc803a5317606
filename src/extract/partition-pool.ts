// Partitions of one table (or the primary-key ranges of one, pk-ranges.ts) over a small pool of
// connections, on this thread: each connection takes the next when it is done with one.
// Encoding straight from the packets is cheap enough that the time goes into waiting for the
// server, which the connections overlap. The first failure stops the dispatch of further
// partitions; the files already complete stay in the spool.
import type { Connection } from "mysql2";
import type { Config } from "../config/types.ts";
import type { ManifestEntry } from "../datalake/spool.ts";
import { JobError, messageOf, PanoramaError } from "../errors.ts";
import { type Cell, close, mysqlError } from "./mysql.ts";
import { extractPartition, type PartitionJob } from "./partition.ts";
import { SpareConnections } from "./spare-connections.ts";

export async function extractOverConnections(
  main: Connection,
  config: Config,
  job: PartitionJob,
  partitions: Cell[][],
  connections: number,
  onEntry: (entry: ManifestEntry) => Promise<void>,
): Promise<void> {
  await overConnections(
    main,
    config,
    connections,
    partitions,
    async (connection, values) => {
      const entry = await extractPartition(connection, config, job, values).catch((error) => {
        throw partitionFailure(error, config, job.table.name);
      });
      // What the consumer throws (an upload that failed) is its own error, not MySQL's.
      await onEntry(entry);
    },
    job.spares,
  );
}

/**
 * `work` for each item, over `main` and up to `connections - 1` more, taken from `spares` (or
 * opened here and closed at the end): each connection takes the next item when it is done with
 * one, `main` from the start, the others as soon as they are open. A connection the server
 * refuses for a limit is done without (SpareConnections.takeIfAllowed). The first failure, a
 * connection that cannot be opened otherwise too, stops the dispatch and is thrown once every connection
 * has stopped; the others are then closed, not given back (one may have been mid-query).
 */
export async function overConnections<T>(
  main: Connection,
  config: Config,
  connections: number,
  items: readonly T[],
  work: (connection: Connection, item: T, index: number) => Promise<void>,
  spares?: SpareConnections,
): Promise<void> {
  const source = spares ?? new SpareConnections(config.mysql);
  let next = 0;
  let firstError: unknown;
  const extra: Connection[] = [];
  const worker = async (connection: Connection) => {
    while (firstError === undefined && next < items.length) {
      const index = next++;
      try {
        await work(connection, items[index]!, index);
      } catch (error) {
        firstError ??= error;
      }
    }
  };
  const opened = async () => {
    // Refused for a limit (the DBA's MAX_USER_CONNECTIONS): the others read its share.
    const connection = await source.takeIfAllowed();
    if (!connection) return;
    extra.push(connection);
    await worker(connection);
  };
  try {
    const workers = [worker(main)];
    for (let i = 1; i < Math.min(connections, items.length); i++) {
      workers.push(
        opened().catch((error) => {
          firstError ??= error;
        }),
      );
    }
    await Promise.all(workers);
  } finally {
    if (firstError === undefined) for (const connection of extra) source.give(connection);
    else await Promise.all(extra.map(close));
    // A pool of the call's own: what was given back to it is closed with it.
    if (!spares) await source.closeAll();
  }
  if (firstError !== undefined) throw firstError;
}

/** A failure while reading into the spool as the table's error: ours, the spool's or MySQL's. */
export function partitionFailure(error: unknown, config: Config, table: string): unknown {
  if (error instanceof PanoramaError) return error;
  if (isLocalFileError(error)) return spoolError(error, config, table);
  // It was there when the read was planned: not a wrong name in the config.
  const gone =
    (error as { code?: unknown }).code === "ER_NO_SUCH_TABLE"
      ? "the table went away during the read (renamed or dropped, as an online schema change's cut-over does): the next run reads it again"
      : undefined;
  return mysqlError(error, config.mysql, `reading ${table}`, gone);
}

/**
 * A failed system call that is not the MySQL connection's (mysql2 marks those `fatal`): writing
 * the spool, a full disk or a read-only state directory, which no MySQL hint would help with.
 */
function isLocalFileError(error: unknown): boolean {
  const e = error as { syscall?: unknown; fatal?: unknown };
  return typeof e.syscall === "string" && e.fatal === undefined;
}

function spoolError(error: unknown, config: Config, table: string): JobError {
  const code = (error as { code?: unknown }).code;
  const hint =
    code === "ENOSPC"
      ? `free space on the filesystem of state_dir (${config.state_dir}); what was extracted before stays`
      : code === "EACCES" || code === "EPERM" || code === "EROFS"
        ? `state_dir (${config.state_dir}) must be writable by the user panorama runs as`
        : undefined;
  return new JobError(`${table}: writing the spool failed: ${messageOf(error)}`, hint);
}
