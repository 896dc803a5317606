// A big unpartitioned table read in primary-key ranges over the connection pool (`[mysql]
// connections`), written in key order into its one spool file: the file is byte for byte the
// one a single read writes (InnoDB returns a full scan in primary-key order, and each range is
// ordered by it). The range at the head of the file streams straight into it; a range read ahead
// of its turn waits on disk (a temporary file in the spool), not in memory, and is copied in
// when its turn comes. Each connection reads its ranges in one read view, as a single query does.
import { closeSync, readSync, rmSync, writeSync } from "node:fs";
import type { Connection } from "mysql2";
import type { Config } from "../config/types.ts";
import { type ManifestEntry, SpoolWriter, spoolDir, spoolPath } from "../datalake/spool.ts";
import { openOwnFile } from "../state/atomic.ts";
import { encodeHeader } from "./csv.ts";
import { type CsvSink, ident, query, streamCsv } from "./mysql.ts";
import {
  type PartitionJob,
  partitionKey,
  partitionPairs,
  pseudonymColumns,
  selectList,
} from "./partition.ts";
import { overConnections, partitionFailure } from "./partition-pool.ts";
import { snapshotSchema, type TableFacts } from "./schema-snapshot.ts";

/**
 * Rows per range: twice mydumper's `-r 50000`. Each range is a query, and one finishing while
 * the next is parked stalls while it is copied in: 1 M rows over 2 connections took 0.93 s in
 * ranges of 10,000 rows, 0.90 s of 50,000, 0.87 s of 125,000 (medians of 9, alternated).
 */
export const RANGE_ROWS = 100_000;
/** A table estimated smaller than this is one query: ranges would only add round trips. */
export const RANGED_FROM_ROWS = 200_000;
/**
 * A connection starts a range at most this many ranges per connection past the first range not
 * yet in the file. The ranges read ahead wait on disk: without a bound, a slow range at the head
 * (big rows, a busy server) let the other connections park the rest of the table there, and the
 * spool held it twice.
 */
export const AHEAD_PER_CONNECTION = 2;
const CHUNK_BYTES = 1 << 18;

/** Primary-key bounds of one range: from (inclusive) to (exclusive); null = unbounded. */
export interface KeyRange {
  from: bigint | null;
  to: bigint | null;
}

export interface RangedRead {
  column: string;
  ranges: KeyRange[];
}

/**
 * The ranges of a big table, or null to read it in one query: a single integer primary key on
 * InnoDB, an estimate of at least `rangedFrom` rows, and more than one connection. The first
 * range is open below and the last open above, so rows inserted meanwhile are read too. `facts`:
 * what information_schema said of the table when it was planned; without them, asked here.
 */
export async function planRanges(
  connection: Connection,
  config: Config,
  table: string,
  rowsPerRange = RANGE_ROWS,
  rangedFrom = RANGED_FROM_ROWS,
  facts?: TableFacts,
): Promise<RangedRead | null> {
  if (config.mysql.connections < 2) return null;
  const known = facts ?? (await snapshotSchema(connection, config.mysql.database, [table])).get(table);
  // InnoDB returns a full scan in primary-key order: the ranges, in order, are the same bytes.
  if (known?.engine !== "innodb" || known.estimatedRows < rangedFrom) return null;
  const estimatedRows = known.estimatedRows;
  const key = known.primaryKey;
  if (!key?.integer) return null;
  const pk = ident(key.column);
  const [bounds] = await query<{ low: string | number | null; high: string | number | null }>(
    connection,
    `SELECT MIN(${pk}) AS low, MAX(${pk}) AS high FROM ${ident(table)}`,
  );
  if (bounds?.low === null || bounds?.low === undefined || bounds.high === null) return null;
  const low = BigInt(bounds.low);
  const high = BigInt(bounds.high);
  const count = BigInt(Math.max(1, Math.ceil(estimatedRows / rowsPerRange)));
  const step = (high - low + 1n + count - 1n) / count;
  if (count < 2n || step < 1n) return null;
  const ranges: KeyRange[] = [];
  for (let i = 0n; i < count; i++) {
    ranges.push({
      from: i === 0n ? null : low + i * step,
      to: i === count - 1n ? null : low + (i + 1n) * step,
    });
  }
  return { column: key.column, ranges };
}

function rangeWhere(column: string, range: KeyRange): { sql: string; values: string[] } {
  const terms: string[] = [];
  const values: string[] = [];
  if (range.from !== null) {
    terms.push(`${ident(column)} >= ?`);
    values.push(range.from.toString());
  }
  if (range.to !== null) {
    terms.push(`${ident(column)} < ?`);
    values.push(range.to.toString());
  }
  return { sql: terms.length > 0 ? ` WHERE ${terms.join(" AND ")}` : "", values };
}

/**
 * A range read ahead of its turn: its CSV in a temporary file of the spool, in large
 * synchronous writes (the page cache takes them at once; a stream's callbacks would pause the
 * connection for each), read back into the table's file when its turn comes.
 */
class WaitingRange {
  private fd: number | null;
  private readonly chunk: Buffer = Buffer.allocUnsafe(CHUNK_BYTES);
  private used = 0;
  rows = 0;

  constructor(readonly path: string) {
    this.fd = openOwnFile(path, "w+");
  }

  write(data: string | Uint8Array, rows: number): undefined {
    this.rows += rows;
    const bytes = typeof data === "string" ? Buffer.from(data) : data;
    let from = 0;
    while (from < bytes.length) {
      const n = Math.min(bytes.length - from, CHUNK_BYTES - this.used);
      this.chunk.set(bytes.subarray(from, from + n), this.used);
      this.used += n;
      from += n;
      if (this.used === CHUNK_BYTES) this.flush();
    }
    return undefined;
  }

  private flush(): void {
    let written = 0;
    while (written < this.used) written += writeSync(this.fd!, this.chunk, written, this.used - written);
    this.used = 0;
  }

  /** Copy into the table's file, in order, then remove. */
  async copyInto(writer: SpoolWriter): Promise<void> {
    this.flush();
    let rows = this.rows;
    let position = 0;
    for (;;) {
      const bytesRead = readSync(this.fd!, this.chunk, 0, CHUNK_BYTES, position);
      if (bytesRead === 0) break;
      position += bytesRead;
      // The writer copies what it is given: the chunk can be read into again at once.
      const waiting = writer.write(this.chunk.subarray(0, bytesRead), rows);
      rows = 0;
      if (waiting) await waiting;
    }
    if (rows > 0) writer.write("", rows);
    this.discard();
  }

  discard(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
    rmSync(this.path, { force: true });
  }
}

/**
 * What a test hears of a ranged read: a range's index as its read completes, and (awaited) as its
 * query is about to go out.
 */
export interface RangeWatch {
  done?(index: number): void;
  starting?(index: number): Promise<void>;
}

/**
 * A single query's rows are the table at one moment; ranges read one after another would each be
 * another, and a transaction committed between two of them would be seen in part. So each
 * connection begins one read view before its first range and reads all of its ranges in it; the
 * few milliseconds between the connections' beginnings are the one window left. REPEATABLE READ
 * for this transaction only: under READ COMMITTED each statement would get a view of its own, and
 * under SERIALIZABLE the reads would lock the LMS's rows.
 */
async function beginReadView(connection: Connection): Promise<void> {
  await query(connection, "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ");
  await query(connection, "START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY");
}

/**
 * Read an unpartitioned table range by range over `connections` connections into its one spool
 * file.
 */
export async function extractRanges(
  main: Connection,
  config: Config,
  job: PartitionJob,
  read: RangedRead,
  connections: number,
  watch: RangeWatch = {},
): Promise<ManifestEntry> {
  const { table, columns, onRows } = job;
  const partitions = partitionPairs(config, table, []);
  const key = partitionKey(config, table, []);
  const pseudonyms = pseudonymColumns(config, columns);
  const spool = spoolDir(config.state_dir);
  const writer = await SpoolWriter.open(spool, key);
  const kinds = columns.map((c) => c.kind);
  const select = `SELECT ${selectList(columns)} FROM ${ident(table.name)}`;
  const waiting = new Map<number, WaitingRange>();
  const temps: WaitingRange[] = [];
  const finished = new Set<number>();
  /** the first range not yet wholly in the spool file */
  let head = 0;
  let copying: Promise<void> = Promise.resolve();
  /** the connections reading in a read view of this table's */
  const viewing = new Set<Connection>();
  const ahead = connections * AHEAD_PER_CONNECTION;
  /** connections waiting for the head to move before they start a range */
  const waitingForHead: (() => void)[] = [];
  /** a range or a copy failed: no range starts any more */
  let stopped = false;
  const headMoved = () => {
    for (const resume of waitingForHead.splice(0)) resume();
  };
  const stop = () => {
    stopped = true;
    headMoved();
  };
  const nearHead = async (index: number) => {
    while (!stopped && index >= head + ahead)
      await new Promise<void>((resume) => waitingForHead.push(resume));
  };

  // Ranges finished ahead of their turn go into the file once every range before them is in.
  const advance = () => {
    copying = copying
      .then(async () => {
        while (finished.has(head)) {
          const parked = waiting.get(head);
          if (parked) {
            await parked.copyInto(writer);
            waiting.delete(head);
          }
          head++;
          headMoved();
        }
      })
      .catch((error) => {
        stop();
        throw error;
      });
    return copying;
  };

  /**
   * Where a range's CSV goes: straight into the file when every range before it is in, else a
   * temporary file; a parked range that reaches the head while still streaming copies what it
   * parked into the file and goes on straight (what arrives meanwhile is held: the connection is
   * paused until the copy is done).
   */
  const rangeSink = (index: number) => {
    if (index === head) return writer.write.bind(writer) as CsvSink;
    let parked: WaitingRange | null = new WaitingRange(
      `${spoolPath(spool, key)}.partial-${process.pid}-range-${index}`,
    );
    waiting.set(index, parked);
    temps.push(parked);
    let promotion: Promise<void> | null = null;
    const held: [string | Uint8Array, number][] = [];
    const promote = async (from: WaitingRange) => {
      await from.copyInto(writer);
      while (held.length > 0) {
        const [data, rows] = held.shift()!;
        const wait = writer.write(data, rows);
        if (wait) await wait;
      }
      parked = null;
      promotion = null;
    };
    const sink: CsvSink = (data, rows) => {
      if (parked && !promotion && index === head) {
        waiting.delete(index);
        promotion = promote(parked);
      }
      if (promotion) {
        held.push([typeof data === "string" ? data : Buffer.from(data), rows]);
        return promotion;
      }
      return parked ? parked.write(data, rows) : writer.write(data, rows);
    };
    return sink;
  };

  try {
    writer.write(encodeHeader(columns.map((c) => c.name)));
    const failed = (error: unknown) => {
      stop();
      throw partitionFailure(error, config, table.name);
    };
    const readRange = async (connection: Connection, range: KeyRange, index: number) => {
      await nearHead(index);
      // The failure that stopped the ranges is the table's (overConnections throws it, or the
      // copy's below).
      if (stopped) return;
      if (!viewing.has(connection)) {
        viewing.add(connection);
        await beginReadView(connection).catch(failed);
      }
      await watch.starting?.(index);
      const where = rangeWhere(read.column, range);
      const sink = rangeSink(index);
      await streamCsv(
        connection,
        `${select}${where.sql} ORDER BY ${ident(read.column)}`,
        where.values,
        kinds,
        (data, rows) => {
          onRows?.(rows);
          return sink(data, rows);
        },
        undefined,
        pseudonyms,
      ).catch(failed);
      watch.done?.(index);
      finished.add(index);
      // Not waited for: this connection's next range starts while the ranges now in turn are
      // copied in, so the server reads it meanwhile. A failed copy fails the table below.
      advance().catch(() => {});
    };
    try {
      await overConnections(main, config, connections, read.ranges, readRange, job.spares);
    } finally {
      // Read or failed, the views end before the connections serve another table (one that died
      // is closed already).
      await Promise.all([...viewing].map((connection) => query(connection, "COMMIT").catch(() => {})));
    }
    await copying;
    return await writer.commit({ table: table.name, partitions });
  } catch (error) {
    await writer.abort();
    for (const parked of temps) parked.discard();
    throw error;
  }
}
