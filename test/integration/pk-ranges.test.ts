// A big unpartitioned table read in primary-key ranges over several connections (pk-ranges.ts),
// against the real MariaDB: the spool file is byte for byte (and hash for hash) the one a single
// read writes, with ranges finishing out of order, plain and gzip; a failing range leaves nothing
// in the spool, whether it fails at its start or halfway through its rows; a range waiting for
// its turn is a file only the service user can read.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, spyOn, test } from "bun:test";
import { existsSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import type { Connection } from "mysql2";
import type mysql from "mysql2/promise";
import type { RowDataPacket } from "mysql2/promise";
import { parseConfig } from "../../src/config/load.ts";
import type { Config } from "../../src/config/types.ts";
import { listSpool, spoolDir } from "../../src/datalake/spool.ts";
import { extractTables, planTable } from "../../src/extract/extract.ts";
import { close, connect, query } from "../../src/extract/mysql.ts";
import { extractPartition, type PartitionJob } from "../../src/extract/partition.ts";
import {
  AHEAD_PER_CONNECTION,
  extractRanges,
  type KeyRange,
  planRanges,
} from "../../src/extract/pk-ranges.ts";
import { SpareConnections } from "../../src/extract/spare-connections.ts";
import { log } from "../../src/log.ts";
import { ADVERSARIAL_STRINGS } from "../support/adversarial.ts";
import { CLI, runPanorama } from "../support/cli.ts";
import { skipWithoutTestEnv, testEnv } from "../support/env.ts";
import { testConnection, writeTestConfig } from "../support/mysql.ts";

const skip = skipWithoutTestEnv();
setDefaultTimeout(60_000);
const ROWS = 30_000;
let db: mysql.Connection;
const dirs: string[] = [];

function config(compression: "none" | "gzip", table = "ranged_big"): Config {
  const cfg = writeTestConfig(`[extract]\npreset = "none"\n\n[[tables]]\nname = "${table}"\n`);
  dirs.push(cfg.dir);
  const text = readFileSync(cfg.file, "utf8").replace(
    "[datalake]",
    `[datalake]\ncompression = "${compression}"`,
  );
  return parseConfig(text, cfg.file, {}).config;
}

/** The files in a config's spool, temporary ones included. */
function spoolFiles(cfg: Config): string[] {
  const spool = spoolDir(cfg.state_dir);
  if (!existsSync(spool)) return [];
  return (readdirSync(spool, { recursive: true }) as string[]).filter((n) =>
    statSync(join(spool, n)).isFile(),
  );
}

/** `body` with a connection and the job of `cfg`'s table as planned for a full read; closed after. */
async function withJob<T>(
  cfg: Config,
  body: (main: Connection, job: PartitionJob) => Promise<T>,
): Promise<T> {
  const main = await connect(cfg.mysql);
  try {
    const plan = (await planTable(main, cfg, cfg.tables[0]!, true))!;
    return await body(main, { table: plan.table, columns: plan.columns });
  } finally {
    await close(main);
  }
}

/** Ranges cut at these keys, open below the first and above the last, as planRanges makes them. */
function cutAt(...keys: bigint[]): KeyRange[] {
  return [null, ...keys].map((from, i) => ({ from, to: keys[i] ?? null }));
}

/** Extract `table` into a fresh spool, either in one query or over `ranges`. */
async function extract(
  compression: "none" | "gzip",
  ranges: KeyRange[] | null,
  watch?: { done?: (i: number, spool: string) => void; starting?: (i: number) => Promise<void> },
  table = "ranged_big",
) {
  const cfg = config(compression, table);
  return withJob(cfg, async (main, job) => {
    const entry = ranges
      ? await extractRanges(main, cfg, job, { column: "id", ranges }, 3, {
          done: (i) => watch?.done?.(i, spoolDir(cfg.state_dir)),
          starting: watch?.starting,
        })
      : await extractPartition(main, cfg, job, []);
    const spool = spoolDir(cfg.state_dir);
    return {
      entry,
      bytes: readFileSync(join(spool, entry.key)),
      names: readdirSync(spool, { recursive: true }),
    };
  });
}

beforeAll(async () => {
  if (skip) return;
  db = await testConnection(testEnv().mysql.scratchDatabase);
  await db.query(`DROP TABLE IF EXISTS ranged_big;
    CREATE TABLE ranged_big (id INT AUTO_INCREMENT PRIMARY KEY, s LONGTEXT, n BIGINT, d DATETIME(6)) ENGINE=InnoDB CHARSET utf8mb4;
    INSERT INTO ranged_big (s, n, d) SELECT CONCAT('row ', seq, REPEAT('x', seq % 50)), seq * 1000003,
      '2024-01-01' + INTERVAL seq SECOND FROM seq_1_to_${ROWS}`);
  // Values that need quoting and escaping, spread over the ranges.
  for (const [i, s] of ADVERSARIAL_STRINGS.entries()) {
    await db.query("UPDATE ranged_big SET s = ? WHERE id = ?", [s, 1 + ((i * 7919) % ROWS)]);
  }
  // Gaps in the keys, as deletions leave them.
  await db.query("DELETE FROM ranged_big WHERE id BETWEEN 12000 AND 12999 OR id % 97 = 0");
  await db.query("ANALYZE TABLE ranged_big");
  // ranged_big's rows, slow at two of them: the range holding id 1 takes 50 ms more, the one
  // holding id 20,000 100 ms more, so that which range finishes first does not hang on how soon
  // a connection opens (the first range starts on the connection already open).
  await db.query(`CREATE OR REPLACE VIEW ranged_slow AS SELECT * FROM ranged_big
    WHERE (id <> 1 OR SLEEP(0.05) = 0) AND (id <> 20000 OR SLEEP(0.1) = 0)`);
});

afterAll(async () => {
  if (skip) return;
  await db.query("DROP VIEW IF EXISTS ranged_slow");
  await db.query("DROP TABLE IF EXISTS ranged_big");
  await db.end();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

describe.skipIf(skip)("primary-key ranges", () => {
  for (const compression of ["none", "gzip"] as const) {
    test(`ranges finishing out of order write the bytes of a single read (${compression})`, async () => {
      const single = await extract(compression, null, undefined, "ranged_slow");
      // A big first range: the small ones after it finish first and wait on disk for their turn.
      const ranges = cutAt(25_000n, 25_100n, 25_200n, 26_000n);
      const order: number[] = [];
      const parkedModes: number[] = [];
      // The first range starts once another is read, however late the second connection opens.
      let oneRead = () => {};
      const headMayStart = new Promise<void>((resolve) => {
        oneRead = resolve;
      });
      const ranged = await extract(
        compression,
        ranges,
        {
          done: (i, spool) => {
            order.push(i);
            oneRead();
            // A range done ahead of its turn waits in the spool, private like the learner data it holds.
            if (order.includes(0)) return;
            for (const name of readdirSync(spool, { recursive: true }) as string[]) {
              if (name.includes(`-range-${i}`)) parkedModes.push(statSync(join(spool, name)).mode & 0o777);
            }
          },
          starting: (index) => (index === 0 ? headMayStart : Promise.resolve()),
        },
        "ranged_slow",
      );
      expect(order.toSorted()).toEqual([0, 1, 2, 3, 4]);
      expect(order).not.toEqual([0, 1, 2, 3, 4]);
      expect(parkedModes.length).toBeGreaterThan(0);
      for (const mode of parkedModes) expect(mode).toBe(0o600);
      expect(ranged.entry.key).toBe(single.entry.key);
      expect(Buffer.compare(ranged.bytes, single.bytes)).toBe(0);
      expect(ranged.entry.rows).toBe(single.entry.rows);
      expect(ranged.entry.hash).toBe(single.entry.hash);
      expect(ranged.entry.bytes).toBe(single.entry.bytes);
      // Nothing but the file and its manifest: no range's temporary file is left.
      expect(ranged.names.filter((n) => n.includes(".partial-"))).toEqual([]);

      // A small first range (slow at id 1): the big one after it, started meanwhile on the second
      // connection, reaches its turn while still being read (it is slow at id 20,000), and goes
      // on straight into the file after what it had parked.
      const late = await extract(compression, cutAt(50n), undefined, "ranged_slow");
      expect(Buffer.compare(late.bytes, single.bytes)).toBe(0);
      expect(late.entry.hash).toBe(single.entry.hash);
    });
  }

  test("a transaction committed between two ranges' reads is not in the file: each connection reads its ranges in one view, as a single query reads", async () => {
    const before = await extract("none", null);
    // Moves `amount` from the row of id 1 (in the first range) to the row of id 25,000 (the last).
    const transfer = (amount: number) =>
      db.query(`START TRANSACTION; UPDATE ranged_big SET n = n - ${amount} WHERE id = 1;
        UPDATE ranged_big SET n = n + ${amount} WHERE id = 25000; COMMIT`);
    let transferred = false;
    let firstRead!: () => void;
    const first = new Promise<void>((resolve) => {
      firstRead = resolve;
    });
    const cfg = config("none");
    const spares = new SpareConnections(cfg.mysql);
    /** what a connection now reads of the row the transfer took from */
    const firstRow = async (connection: Connection) =>
      (await query<{ n: string }>(connection, "SELECT n FROM ranged_big WHERE id = 1"))[0]!.n;
    try {
      const ranged = await withJob(cfg, async (main, planned) => {
        const job: PartitionJob = { ...planned, spares };
        const ranges = cutAt(10_000n, 20_000n);
        const entry = await extractRanges(main, cfg, job, { column: "id", ranges }, 2, {
          done: (i) => {
            if (i === 0) firstRead();
          },
          // The last range's query goes out once the first range is read and the transfer committed.
          starting: async (i) => {
            if (i !== 2) return;
            await first;
            await transfer(5);
            transferred = true;
          },
        });
        // The views ended with the read: both connections, the spare kept for the next table
        // included, now read the table as it is.
        const [now] = await db.query<RowDataPacket[]>("SELECT n FROM ranged_big WHERE id = 1");
        expect(await firstRow(main)).toBe(String(now[0]!.n));
        const spare = await spares.take();
        expect(await firstRow(spare)).toBe(String(now[0]!.n));
        spares.give(spare);
        return readFileSync(join(spoolDir(cfg.state_dir), entry.key));
      });
      expect(transferred).toBe(true);
      expect(Buffer.compare(ranged, before.bytes)).toBe(0);
      // The next read has it.
      const after = await extract("none", null);
      expect(Buffer.compare(after.bytes, before.bytes)).not.toBe(0);
    } finally {
      await spares.closeAll();
      if (transferred) await transfer(-5);
    }
  });

  test("extract reads a table of 200,000 rows or more in ranges, into the file a single query writes", async () => {
    await db.query(`CREATE OR REPLACE TABLE ranged_large (id BIGINT AUTO_INCREMENT PRIMARY KEY, s VARCHAR(40))
      ENGINE=InnoDB CHARSET utf8mb4`);
    try {
      await db.query("INSERT INTO ranged_large (s) SELECT CONCAT('r', seq, ',\"q\"') FROM seq_1_to_300000");
      await db.query("DELETE FROM ranged_large WHERE id % 10 = 3");
      await db.query("ANALYZE TABLE ranged_large");
      const files: Buffer[] = [];
      const said: string[] = [];
      const debug = spyOn(log, "debug").mockImplementation((message: string) => {
        said.push(message);
      });
      try {
        for (const connections of [1, 2]) {
          const base = config("none", "ranged_large");
          const cfg = { ...base, mysql: { ...base.mysql, connections } };
          const [summary] = await extractTables(cfg, cfg.tables, { full: true, dryRun: false });
          expect(summary!.error).toBeNull();
          expect(summary!.rows).toBe(270_000);
          const [entry] = await listSpool(spoolDir(cfg.state_dir));
          files.push(readFileSync(join(spoolDir(cfg.state_dir), entry!.key)));
        }
      } finally {
        debug.mockRestore();
      }
      // One read in ranges (InnoDB's row estimate sets how many), the other in one query.
      const ranged = said.filter((m) => m.includes("primary-key ranges"));
      expect(ranged).toHaveLength(1);
      expect(ranged[0]).toMatch(/^ranged_large: \d+ primary-key ranges over 2 connections$/);
      expect(files[0]!.length).toBeGreaterThan(270_000 * 10);
      expect(Buffer.compare(files[0]!, files[1]!)).toBe(0);
    } finally {
      await db.query("DROP TABLE IF EXISTS ranged_large");
    }
  });

  test("killed with SIGKILL during ranged reads, the table changed between kills (back to an earlier state too), then one clean run: the lake a clean read of the last state writes", async () => {
    await db.query(`CREATE OR REPLACE TABLE ranged_kill (id INT AUTO_INCREMENT PRIMARY KEY, s VARCHAR(40), n INT)
      ENGINE=InnoDB CHARSET utf8mb4`);
    try {
      await db.query("INSERT INTO ranged_kill (s, n) SELECT CONCAT('row ', seq), seq FROM seq_1_to_300000");
      await db.query("ANALYZE TABLE ranged_kill");
      const body = `[extract]\npreset = "none"\n\n[[tables]]\nname = "ranged_kill"\n`;
      const cfg = writeTestConfig(body);
      dirs.push(cfg.dir);
      const changes = [
        "UPDATE ranged_kill SET s = 'changed' WHERE id IN (5, 150000, 299999)",
        "UPDATE ranged_kill SET s = CONCAT('row ', id) WHERE id IN (5, 150000, 299999)", // as before
        "DELETE FROM ranged_kill WHERE id BETWEEN 100000 AND 100999",
        "INSERT INTO ranged_kill (s, n) VALUES ('late, \"quoted\"', -1), ('late 2', -2)",
        "UPDATE ranged_kill SET n = n + 1 WHERE id % 50000 = 0",
      ];
      let seed = 7;
      const random = () => {
        seed = (seed * 1103515245 + 12345) % 2 ** 31;
        return seed / 2 ** 31;
      };
      for (const change of changes) {
        const child = Bun.spawn([process.execPath, CLI, "--config", cfg.file, "run"], {
          stdout: "ignore",
          stderr: "ignore",
        });
        await Bun.sleep(300 + Math.floor(random() * 900));
        child.kill("SIGKILL");
        await child.exited;
        // Killed before its first upload, the run has not made the lake yet: nothing to look at.
        const lake = existsSync(cfg.datalake)
          ? (readdirSync(cfg.datalake, { recursive: true }) as string[])
          : [];
        for (const name of lake) expect(name).not.toContain(".partial-");
        await db.query(change);
      }
      const clean = await runPanorama(["--config", cfg.file, "run"]);
      expect(clean.code).toBe(0);
      const reference = writeTestConfig(body);
      dirs.push(reference.dir);
      expect((await runPanorama(["--config", reference.file, "--log-level", "debug", "run"])).stderr).toMatch(
        /ranged_kill: \d+ primary-key ranges over 2 connections/,
      );
      const key = "openedx/ranged_kill/lms=lms.example.com/ranged_kill.csv";
      const got = readFileSync(join(cfg.datalake, key));
      // The last change is in (compared as booleans: the file is 8 MB).
      expect(got.includes('"late, \\"quoted\\"",-1')).toBe(true);
      expect(Buffer.compare(got, readFileSync(join(reference.datalake, key)))).toBe(0);
      expect(
        readdirSync(spoolDir(cfg.stateDir), { recursive: true }).filter((n) => String(n).endsWith(".csv")),
      ).toEqual([]);
    } finally {
      await db.query("DROP TABLE IF EXISTS ranged_kill");
    }
  }, 120_000);

  test("planned ranges cover every key, open at both ends, and read what a single read does", async () => {
    const cfg = config("none");
    const main = await connect(cfg.mysql);
    try {
      expect(await planRanges(main, cfg, "ranged_big")).toBeNull(); // far below RANGED_FROM_ROWS
      const planned = (await planRanges(main, cfg, "ranged_big", 4000, 10_000))!;
      expect(planned.column).toBe("id");
      expect(planned.ranges.length).toBeGreaterThan(3);
      expect(planned.ranges[0]!.from).toBeNull();
      expect(planned.ranges.at(-1)!.to).toBeNull();
      for (let i = 1; i < planned.ranges.length; i++)
        expect(planned.ranges[i]!.from).toBe(planned.ranges[i - 1]!.to);
      const single = await extract("none", null);
      const ranged = await extract("none", planned.ranges);
      expect(Buffer.compare(ranged.bytes, single.bytes)).toBe(0);
    } finally {
      await close(main);
    }
  });

  test("one connection, or a table without an integer primary key, is read in one query", async () => {
    const cfg = config("none");
    const main = await connect(cfg.mysql);
    try {
      expect(
        await planRanges(
          main,
          { ...cfg, mysql: { ...cfg.mysql, connections: 1 } },
          "ranged_big",
          4000,
          10_000,
        ),
      ).toBeNull();
      await db.query(
        "DROP TABLE IF EXISTS ranged_text; CREATE TABLE ranged_text (k VARCHAR(20) PRIMARY KEY) ENGINE=InnoDB",
      );
      expect(await planRanges(main, cfg, "ranged_text", 1, 0)).toBeNull();
    } finally {
      await db.query("DROP TABLE IF EXISTS ranged_text");
      await close(main);
    }
  });

  test("a range failing halfway through its rows fails the table and leaves nothing in the spool", async () => {
    // The server raises the error at row 20,000, after it has sent the rows before it.
    await db.query(`CREATE OR REPLACE VIEW ranged_failing AS
      SELECT id, s, IF(id = 20000, (SELECT 1 UNION SELECT 2), n) AS n, d FROM ranged_big`);
    const cfg = config("none");
    try {
      await withJob(cfg, async (main, planned) => {
        const job: PartitionJob = { ...planned, table: { ...planned.table, name: "ranged_failing" } };
        const ranges = cutAt(5_000n, 25_000n);
        const done: number[] = [];
        await expect(
          extractRanges(main, cfg, job, { column: "id", ranges }, 2, { done: (i) => done.push(i) }),
        ).rejects.toThrow(/reading ranged_failing: .*Subquery returns more than 1 row/);
        expect(done).not.toContain(1);
        expect(spoolFiles(cfg)).toEqual([]);
      });
    } finally {
      await db.query("DROP VIEW IF EXISTS ranged_failing");
    }
  });

  test("a failing range fails the table and leaves nothing in the spool", async () => {
    const cfg = config("none");
    await withJob(cfg, async (main, planned) => {
      const job: PartitionJob = {
        ...planned,
        columns: [...planned.columns, { name: "no_such_column", kind: "string" }],
      };
      const ranges = cutAt(10_000n);
      await expect(extractRanges(main, cfg, job, { column: "id", ranges }, 2)).rejects.toThrow(
        /reading ranged_big: .*no_such_column/,
      );
      expect(await listSpool(spoolDir(cfg.state_dir))).toEqual([]);
      expect(spoolFiles(cfg)).toEqual([]);
    });
  });

  test("a slow range at the head of the file: the other connections start no range more than 2 a connection past it, so few wait on disk; the file is a single read's", async () => {
    // The first range (id 1) is held until five others are read (so how soon the other two
    // connections open does not matter), then takes 0.5 s more; the twenty-nine after it, a
    // thousand keys each, a few ms. Unbounded, the other connections go on through all of them.
    await db.query(`CREATE OR REPLACE VIEW ranged_stall AS SELECT * FROM ranged_big
      WHERE id <> 1 OR SLEEP(0.5) = 0`);
    try {
      const single = await extract("none", null, undefined, "ranged_stall");
      const keys = Array.from({ length: 29 }, (_, i) => BigInt((i + 1) * 1000));
      const rangeFiles = (spool: string) =>
        (readdirSync(spool, { recursive: true }) as string[]).filter((n) => n.includes("-range-")).length;
      let mostWaiting = 0;
      let waitingAsHeadStarts = 0;
      let readAhead = 0;
      let fiveRead = () => {};
      const headMayStart = new Promise<void>((resolve) => {
        fiveRead = resolve;
      });
      const ranged = await extract(
        "none",
        cutAt(2n, ...keys),
        {
          done: (_, spool) => {
            mostWaiting = Math.max(mostWaiting, rangeFiles(spool));
            if (++readAhead === 3 * AHEAD_PER_CONNECTION - 1) fiveRead();
          },
          starting: async (index) => {
            if (index !== 0) return;
            await headMayStart;
            // A moment for a sixth range to start, were the connections not held back.
            await Bun.sleep(50);
            waitingAsHeadStarts = readAhead;
          },
        },
        "ranged_stall",
      );
      // 3 connections: ranges 1 to 5 are read while range 0 waits, and no more. While range 1 is
      // copied in (its file still there), range 6 may be read: 6 files at most. Unbounded, the
      // other connections go on through all twenty-nine.
      expect(waitingAsHeadStarts).toBe(3 * AHEAD_PER_CONNECTION - 1);
      expect(mostWaiting).toBeGreaterThanOrEqual(3 * AHEAD_PER_CONNECTION - 1);
      expect(mostWaiting).toBeLessThanOrEqual(3 * AHEAD_PER_CONNECTION);
      expect(Buffer.compare(ranged.bytes, single.bytes)).toBe(0);
      expect(ranged.entry.hash).toBe(single.entry.hash);
    } finally {
      await db.query("DROP VIEW IF EXISTS ranged_stall");
    }
  });

  test("the range at the head failing while the other connection waits for it to move: the table fails with its cause, nothing left in the spool", async () => {
    // The first range fails after 0.3 s, at id 1; the other connection reads ranges 1 to 3 and
    // then waits for range 0.
    await db.query(`CREATE OR REPLACE VIEW ranged_stall_failing AS
      SELECT id, s, IF(id = 1 AND SLEEP(0.3) = 0, (SELECT 1 UNION SELECT 2), n) AS n, d FROM ranged_big`);
    const cfg = config("none");
    try {
      await withJob(cfg, async (main, planned) => {
        const job: PartitionJob = { ...planned, table: { ...planned.table, name: "ranged_stall_failing" } };
        const keys = Array.from({ length: 29 }, (_, i) => BigInt((i + 1) * 1000));
        const done: number[] = [];
        await expect(
          extractRanges(main, cfg, job, { column: "id", ranges: cutAt(2n, ...keys) }, 2, {
            done: (i) => done.push(i),
          }),
        ).rejects.toThrow(/reading ranged_stall_failing: .*Subquery returns more than 1 row/);
        expect(done).not.toContain(0);
        expect(Math.max(...done)).toBeLessThan(2 * AHEAD_PER_CONNECTION);
        expect(spoolFiles(cfg)).toEqual([]);
      });
    } finally {
      await db.query("DROP VIEW IF EXISTS ranged_stall_failing");
    }
  });

  test("a second connection that cannot be opened fails the table with its cause, the first one's ranges started at once, nothing left in the spool", async () => {
    const cfg = config("none");
    await withJob(cfg, async (main, job) => {
      // The extra connections are opened from the config: here a port nothing listens on.
      const unreachable: Config = { ...cfg, mysql: { ...cfg.mysql, host: "127.0.0.1", port: 1 } };
      const ranges = cutAt(10_000n, 20_000n);
      const done: number[] = [];
      await expect(
        extractRanges(main, unreachable, job, { column: "id", ranges }, 2, { done: (i) => done.push(i) }),
      ).rejects.toThrow(/cannot connect: .*ECONNREFUSED/);
      // The first connection did not wait for the second before it started.
      expect(done).toContain(0);
      expect(spoolFiles(cfg)).toEqual([]);
    });
  });
});
