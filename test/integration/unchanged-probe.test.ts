// DESIGN §7: a table or a candidate partition that cannot have changed since its last read is
// not read again (COUNT(*), MAX(pk), MAX(changed_field) as they were; for a table without those, a
// checksum of its content computed by the server), against the real MariaDB with a local
// datalake. Inserts, deletes and saves each defeat the probe; a change that does not move the
// timestamp (Django's QuerySet.update()) reaches the datalake at the read full_every forces;
// `run --full` always reads; a skip is no full read (nothing deleted, full_every not reset).
// Before any of that, the server's record of a table's last change (the change marker): the same
// as at the last probe, the table is not queried at all; a commit, TRUNCATE, or a transaction
// open across a run moves it.
import { afterAll, beforeAll, beforeEach, describe, expect, setDefaultTimeout, test } from "bun:test";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type mysql from "mysql2/promise";
import { loadConfig } from "../../src/config/load.ts";
import { extractTables } from "../../src/extract/extract.ts";
import { runPanorama } from "../support/cli.ts";
import { skipWithoutTestEnv, testEnv } from "../support/env.ts";
import { fileTree } from "../support/file-tree.ts";
import { rootConnection, testConnection, writeTestConfig } from "../support/mysql.ts";

const skip = skipWithoutTestEnv();
setDefaultTimeout(60_000);
let db: mysql.Connection;
const dirs: string[] = [];

const TABLES = `[extract]
preset = "none"

[[tables]]
name = "probe_items"
changed_field = "modified"

[[tables]]
name = "probe_events"
partition_fields = ["course_id"]
incremental = { timestamp_field = "modified", overlap = "1 hour" }
`;

/** Tables without the cheap signature: no auto-increment key, no changed timestamp. */
const CHECKSUMMED = `[extract]
preset = "none"

[[tables]]
name = "probe_plain"

[[tables]]
name = "probe_parts"
partition_fields = ["course_id"]
`;

/** probe_events read first: while it is, probe_items, probed ahead, can change before its read. */
const EVENTS_FIRST = `[extract]
preset = "none"

[[tables]]
name = "probe_events"
partition_fields = ["course_id"]
incremental = { timestamp_field = "modified", overlap = "1 hour" }

[[tables]]
name = "probe_items"
changed_field = "modified"
`;

const EVENTS = "openedx/probe_events/lms=lms.example.com";
const PLAIN = "openedx/probe_plain/lms=lms.example.com/probe_plain.csv";
const partsKey = (course: number) =>
  `openedx/probe_parts/lms=lms.example.com/course_id=course-v1%3AOrg%2BP${course}%2B2024/probe_parts.csv`;
const eventsKey = (course: number) =>
  `${EVENTS}/course_id=course-v1%3AOrg%2BC${course}%2B2024/probe_events.csv`;
const ITEMS = "openedx/probe_items/lms=lms.example.com/probe_items.csv";

function config(tables = TABLES) {
  const cfg = writeTestConfig(tables);
  dirs.push(cfg.dir);
  return cfg;
}

interface Run {
  rows: number;
  unread?: number;
  error: string | null;
}

/** One `panorama run` (args added): exit 0 expected; each table's record in runs.json. */
async function run(cfg: { file: string; stateDir: string }, ...args: string[]) {
  const result = await runPanorama(["--config", cfg.file, "run", ...args]);
  if (result.code !== 0) throw new Error(`panorama run exited ${result.code}: ${result.stderr}`);
  const runs = JSON.parse(readFileSync(join(cfg.stateDir, "runs.json"), "utf8")) as Record<string, Run>;
  return {
    stderr: result.stderr,
    items: runs.probe_items!,
    events: runs.probe_events!,
    plain: runs.probe_plain!,
    parts: runs.probe_parts!,
  };
}

/** The datalake a clean, full extraction of MySQL as it is now writes. */
async function cleanExtraction(tables = TABLES): Promise<Map<string, string>> {
  const clean = config(tables);
  await run(clean, "--full");
  return fileTree(clean.datalake);
}

async function count(table: string): Promise<number> {
  const [rows] = await db.query(`SELECT COUNT(*) AS n FROM ${table}`);
  return Number((rows as { n: number | string }[])[0]!.n);
}

/** Move a JSON state file's recorded times back by `hours`, as if that much time had passed. */
function age(path: string, hours: number, field?: string): void {
  const state = JSON.parse(readFileSync(path, "utf8")) as Record<string, unknown>;
  const back = (iso: string) => new Date(Date.parse(iso) - hours * 3600_000).toISOString();
  for (const [table, value] of Object.entries(state)) {
    if (field) (value as Record<string, string>)[field] = back((value as Record<string, string>)[field]!);
    else state[table] = back(value as string);
  }
  writeFileSync(path, JSON.stringify(state));
}

beforeAll(async () => {
  if (skip) return;
  db = await testConnection(testEnv().mysql.scratchDatabase);
});

beforeEach(async () => {
  if (skip) return;
  // Timestamps well in the past: a timestamp close to the clock is never trusted.
  await db.query(`DROP TABLE IF EXISTS probe_items; DROP TABLE IF EXISTS probe_events;
    CREATE TABLE probe_items (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(50), modified DATETIME(6));
    INSERT INTO probe_items (name, modified) SELECT CONCAT('item', seq), '2024-01-01' + INTERVAL seq MINUTE FROM seq_1_to_40;
    CREATE TABLE probe_events (id INT AUTO_INCREMENT PRIMARY KEY, course_id VARCHAR(100), grade INT,
      modified DATETIME(6), KEY (course_id), KEY (modified));
    INSERT INTO probe_events (course_id, grade, modified) SELECT CONCAT('course-v1:Org+C', seq % 5, '+2024'), seq % 7,
      '2024-01-01 00:00:00' + INTERVAL seq HOUR FROM seq_1_to_500;
    DROP TABLE IF EXISTS probe_plain; DROP TABLE IF EXISTS probe_parts;
    CREATE TABLE probe_plain (id INT NOT NULL PRIMARY KEY,
      a VARCHAR(20) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin,
      b VARCHAR(20) CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci,
      c VARCHAR(20) CHARACTER SET latin1, doc JSON, amount DECIMAL(10, 2), seen DATETIME(6));
    INSERT INTO probe_plain SELECT seq, CONCAT('a', seq), CONCAT('b', seq), CONCAT('c', seq),
      JSON_OBJECT('n', seq), seq / 4, '2024-01-01' + INTERVAL seq MINUTE FROM seq_1_to_30;
    CREATE TABLE probe_parts (id INT NOT NULL PRIMARY KEY, course_id VARCHAR(100), grade INT);
    INSERT INTO probe_parts SELECT seq, CONCAT('course-v1:Org+P', seq % 3, '+2024'), seq % 7 FROM seq_1_to_60`);
});

afterAll(async () => {
  if (skip) return;
  await db.query(
    "DROP TABLE IF EXISTS probe_items; DROP TABLE IF EXISTS probe_events; DROP TABLE IF EXISTS probe_plain; DROP TABLE IF EXISTS probe_parts",
  );
  await db.end();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

describe.skipIf(skip)("unpartitioned table not read again when unchanged", () => {
  test("nothing changed: not read, said in the log and in status; inserts, deletes and saves each make it read", async () => {
    const cfg = config();
    const first = await run(cfg);
    expect(first.items).toMatchObject({ rows: 40, error: null });
    expect(first.items.unread).toBeUndefined();
    const lake = fileTree(cfg.datalake);

    const second = await run(cfg);
    expect(second.stderr).toContain("probe_items: table unchanged since the last read: not read again");
    expect(second.items).toMatchObject({ rows: 0, unread: 1, error: null });
    expect(fileTree(cfg.datalake)).toEqual(lake);
    const status = await runPanorama(["--config", cfg.file, "status"]);
    expect(status.stdout).toMatch(/^probe_items\s.*\s{2}unchanged\s{2}/m);
    const json = JSON.parse((await runPanorama(["--config", cfg.file, "status", "--json"])).stdout) as {
      tables: { table: string; last_run: { unread?: number } }[];
    };
    expect(json.tables.find((t) => t.table === "probe_items")?.last_run.unread).toBe(1);

    const changes = [
      "INSERT INTO probe_items (name, modified) VALUES ('new', '2023-06-01')", // older timestamp: COUNT, MAX(pk) move
      "DELETE FROM probe_items WHERE id = 7", // COUNT moves
      "UPDATE probe_items SET name = 'saved', modified = '2024-03-01' WHERE id = 3", // MAX(modified) moves
    ];
    for (const change of changes) {
      await db.query(change);
      const after = await run(cfg);
      expect(after.items.unread).toBeUndefined();
      expect(after.items.rows).toBeGreaterThan(0);
      expect(fileTree(cfg.datalake).get(ITEMS)).toBe((await cleanExtraction()).get(ITEMS));
      expect((await run(cfg)).items.unread).toBe(1);
    }
  });

  test("a change that leaves the timestamp alone reaches the datalake at the read full_every forces, or run --full", async () => {
    const cfg = config();
    await run(cfg);
    // As Django's QuerySet.update() does: the auto_now column is not touched.
    await db.query("UPDATE probe_items SET name = 'bulk-updated' WHERE id <= 5");
    expect((await run(cfg)).items.unread).toBe(1);
    expect(fileTree(cfg.datalake).get(ITEMS)).not.toContain("bulk-updated");

    // `run --full` always reads.
    expect((await run(cfg, "--full")).items.rows).toBe(40);
    expect(fileTree(cfg.datalake).get(ITEMS)).toContain("bulk-updated");

    // full_every (24 h) since the last real read: read again, skipped or not in between.
    await db.query("UPDATE probe_items SET name = 'second-bulk' WHERE id <= 5");
    expect((await run(cfg)).items.unread).toBe(1);
    age(join(cfg.stateDir, "probes.json"), 23, "read_at");
    expect((await run(cfg)).items.unread).toBe(1);
    age(join(cfg.stateDir, "probes.json"), 2, "read_at");
    const forced = await run(cfg);
    expect(forced.items).toMatchObject({ rows: 40, error: null });
    expect(forced.items.unread).toBeUndefined();
    expect(fileTree(cfg.datalake).get(ITEMS)).toBe((await cleanExtraction()).get(ITEMS));
  });

  test("a change of the layout (a column added to the config) reads the table again", async () => {
    const cfg = config();
    await run(cfg);
    writeFileSync(
      cfg.file,
      readFileSync(cfg.file, "utf8").replace(
        'changed_field = "modified"',
        'changed_field = "modified"\nfields = [{ name = "id", type = "int" }, { name = "modified", type = "datetime" }]',
      ),
    );
    const after = await run(cfg);
    expect(after.items).toMatchObject({ rows: 40, error: null });
    expect(fileTree(cfg.datalake).get(ITEMS)?.split(/\r?\n/)[0]).toBe("id,modified");
  });
});

describe.skipIf(skip)("tables that do not qualify for the cheap probe are probed by a checksum", () => {
  test("no auto-increment key, or a changed_field the table lacks (said once per run): not read when unchanged", async () => {
    const cfg = config();
    writeFileSync(
      cfg.file,
      readFileSync(cfg.file, "utf8").replace('changed_field = "modified"', 'changed_field = "updated"'),
    );
    const said = (stderr: string) =>
      stderr.match(
        /probe_items: changed_field \S*updated\S* not found in \w+\.probe_items: the table is probed by a checksum of its content/g,
      )?.length ?? 0;
    expect(said((await run(cfg)).stderr)).toBe(1);
    const again = await run(cfg);
    expect(again.items).toMatchObject({ rows: 0, unread: 1, error: null });
    // Probed again, said again, once; or the table's change marker (its last change more than 2 s
    // before the first run, as under load) said nothing was committed, and nothing was probed.
    expect(said(again.stderr)).toBeLessThanOrEqual(1);
    await db.query("UPDATE probe_items SET name = 'bulk-updated' WHERE id = 4");
    expect((await run(cfg)).items).toMatchObject({ rows: 40, error: null });
    expect(fileTree(cfg.datalake).get(ITEMS)).toContain("bulk-updated");

    await db.query("ALTER TABLE probe_items MODIFY id INT NOT NULL");
    const plain = config();
    await run(plain);
    expect((await run(plain)).items).toMatchObject({ rows: 0, unread: 1, error: null });
    // Unlike MAX(modified), the checksum sees a change that leaves the timestamp alone.
    await db.query("UPDATE probe_items SET name = 'no-timestamp' WHERE id = 5");
    expect((await run(plain)).items).toMatchObject({ rows: 40, error: null });
    expect(fileTree(plain.datalake).get(ITEMS)).toContain("no-timestamp");
  });

  test("an unpartitioned table without a timestamp: unchanged is not read; any change of a value, a delete, a return to an earlier state is read", async () => {
    const cfg = config(CHECKSUMMED);
    const first = await run(cfg);
    expect(first.plain).toMatchObject({ rows: 30, error: null });
    const quiet = await run(cfg);
    // Columns of three collations and a JSON column: the probe runs without an error.
    expect(quiet.plain).toMatchObject({ rows: 0, unread: 1, error: null });
    expect(quiet.stderr).toContain("probe_plain: table unchanged since the last read: not read again");
    const status = await runPanorama(["--config", cfg.file, "status"]);
    expect(status.stdout).toMatch(/^probe_plain\s.*\s{2}unchanged\s{2}/m);

    const changes = [
      "UPDATE probe_plain SET amount = 123.45 WHERE id = 3", // one value
      "DELETE FROM probe_plain WHERE id = 7",
      // Back to the state of the first run: the recorded signature is the latest one.
      "UPDATE probe_plain SET amount = 0.75 WHERE id = 3; INSERT INTO probe_plain VALUES (7, 'a7', 'b7', 'c7', JSON_OBJECT('n', 7), 1.75, '2024-01-01 00:07:00')",
      "UPDATE probe_plain SET b = '' WHERE id = 5",
      "UPDATE probe_plain SET b = NULL WHERE id = 5", // '' and NULL write the same CSV field
      "UPDATE probe_plain SET a = 'ab', b = '' WHERE id = 9",
      "UPDATE probe_plain SET a = 'a', b = 'b' WHERE id = 9", // a value slides into its neighbour
      "UPDATE probe_plain SET a = 'a,', b = 'b' WHERE id = 9",
      "UPDATE probe_plain SET a = 'a', b = ',b' WHERE id = 9", // the same, across the separator
      "UPDATE probe_plain SET doc = JSON_OBJECT('n', 'changed') WHERE id = 11",
      "UPDATE probe_plain SET c = 'é' WHERE id = 12",
      "UPDATE probe_plain SET id = 31 WHERE id = 30", // a NOT NULL column, hashed without a NULL mark
    ];
    for (const change of changes) {
      await db.query(change);
      const after = await run(cfg);
      expect({ change, unread: after.plain.unread, rows: after.plain.rows }).toEqual({
        change,
        unread: undefined,
        rows: await count("probe_plain"),
      });
      // Read again is what each change must cause; what a read writes is checked against a
      // clean extraction at the first change and after the last one.
      if (change === changes[0]) {
        expect(fileTree(cfg.datalake).get(PLAIN)).toBe((await cleanExtraction(CHECKSUMMED)).get(PLAIN));
        expect(fileTree(cfg.datalake).get(PLAIN)).toContain("123.45");
      }
      expect((await run(cfg)).plain.unread).toBe(1);
    }
    expect(fileTree(cfg.datalake).get(PLAIN)).toBe((await cleanExtraction(CHECKSUMMED)).get(PLAIN));
    expect(fileTree(cfg.datalake).get(PLAIN)).toContain("changed");
  });
});

describe.skipIf(skip)("candidate partitions of an incremental table not read again when unchanged", () => {
  test("the overlap window's partitions are skipped until one changes; only that one is read", async () => {
    const cfg = config();
    const first = await run(cfg);
    expect(first.events).toMatchObject({ rows: 500, error: null });
    const lake = fileTree(cfg.datalake);
    const fullReads = readFileSync(join(cfg.stateDir, "full-reads.json"), "utf8");

    // The overlap window (1 hour before the watermark) holds the rows of hours 499 and 500:
    // courses C4 and C0, unchanged since the full read.
    const quiet = await run(cfg);
    expect(quiet.events).toMatchObject({ rows: 0, unread: 2, error: null });
    expect(quiet.stderr).toContain(
      "probe_events: 2 partition(s) unchanged since the last read: not read again",
    );
    expect(fileTree(cfg.datalake)).toEqual(lake);
    // A skip is not a full read: full_every still counts from the first run.
    expect(readFileSync(join(cfg.stateDir, "full-reads.json"), "utf8")).toBe(fullReads);

    // A save in C0 inside the window moves its MAX(modified): C0 is read, C4 is not.
    await db.query("UPDATE probe_events SET grade = 99, modified = '2024-01-21 20:00:00.5' WHERE id = 500");
    const saved = await run(cfg);
    expect(saved.events).toMatchObject({ rows: 100, unread: 1, error: null });
    expect(fileTree(cfg.datalake).get(eventsKey(0))).toBe((await cleanExtraction()).get(eventsKey(0)));

    // An insert and a delete in C4 (the window's other course), timestamps inside the window.
    await db.query(
      "INSERT INTO probe_events (course_id, grade, modified) VALUES ('course-v1:Org+C4+2024', 1, '2024-01-21 19:30:00')",
    );
    expect((await run(cfg)).events).toMatchObject({ rows: 101, unread: 1 });
    await db.query("DELETE FROM probe_events WHERE id = 499");
    expect((await run(cfg)).events).toMatchObject({ rows: 100, unread: 1 });
    expect(fileTree(cfg.datalake)).toEqual(await cleanExtraction());
  });

  test("a change that leaves the timestamp alone reaches the datalake at the full read full_every forces", async () => {
    const cfg = config();
    await run(cfg);
    await db.query("UPDATE probe_events SET grade = 42 WHERE course_id = 'course-v1:Org+C4+2024'");
    expect((await run(cfg)).events).toMatchObject({ rows: 0, unread: 2 });
    expect(fileTree(cfg.datalake).get(eventsKey(4))).not.toBe((await cleanExtraction()).get(eventsKey(4)));
    age(join(cfg.stateDir, "full-reads.json"), 25);
    const forced = await run(cfg);
    expect(forced.events).toMatchObject({ rows: 500, error: null });
    expect(forced.events.unread).toBeUndefined();
    expect(fileTree(cfg.datalake)).toEqual(await cleanExtraction());
  });
});

describe.skipIf(skip)("partitions of a table without a timestamp probed by a checksum", () => {
  test("without a watermark window: only the changed partitions are read; a partition whose rows are gone loses its object", async () => {
    const cfg = config(CHECKSUMMED);
    expect((await run(cfg)).parts).toMatchObject({ rows: 60, error: null });
    const quiet = await run(cfg);
    expect(quiet.parts).toMatchObject({ rows: 0, unread: 3, error: null });
    expect(quiet.stderr).toContain(
      "probe_parts: 3 partition(s) unchanged since the last read: not read again",
    );

    await db.query("UPDATE probe_parts SET grade = 99 WHERE id = 4"); // P1
    expect((await run(cfg)).parts).toMatchObject({ rows: 20, unread: 2, error: null });
    expect(fileTree(cfg.datalake).get(partsKey(1))).toBe(
      (await cleanExtraction(CHECKSUMMED)).get(partsKey(1)),
    );

    // Every row of P2 deleted: its object goes, as after a full read, and only it.
    await db.query("DELETE FROM probe_parts WHERE course_id = 'course-v1:Org+P2+2024'");
    const dry = await runPanorama(["--config", cfg.file, "run", "--dry-run"]);
    expect(dry.stdout.split("\n").filter((line) => line.startsWith("delete\t"))).toEqual([
      `delete\t${partsKey(2)}`,
    ]);
    const gone = await run(cfg);
    expect(gone.parts).toMatchObject({ rows: 0, unread: 2, error: null });
    expect(fileTree(cfg.datalake).has(partsKey(2))).toBe(false);
    expect(fileTree(cfg.datalake).has(partsKey(0))).toBe(true);

    // A new partition: read alone.
    await db.query("INSERT INTO probe_parts VALUES (100, 'course-v1:Org+P5+2024', 1)");
    expect((await run(cfg)).parts).toMatchObject({ rows: 1, unread: 2, error: null });
    expect(fileTree(cfg.datalake)).toEqual(await cleanExtraction(CHECKSUMMED));
  });

  test("a table bigger than the buffer pool: its checksum is one scan, not a look-up by key of each row the partition field's index lists", async () => {
    // 200,000 rows of about 500 bytes in 50 partitions, more than the test server's 64 MiB buffer
    // pool: grouped through the course_id index, the probe alone took 9 s; in one scan, 0.4 s.
    await db.query(`DROP TABLE IF EXISTS probe_wide;
      CREATE TABLE probe_wide (id INT NOT NULL PRIMARY KEY, course_id VARCHAR(40), state TEXT, KEY (course_id));
      INSERT INTO probe_wide SELECT seq, CONCAT('c', seq % 50), REPEAT('{"a":"b,c"}', 20 + seq % 40) FROM seq_1_to_200000`);
    try {
      const cfg = config(`[extract]
preset = "none"

[[tables]]
name = "probe_wide"
partition_fields = ["course_id"]
`);
      await run(cfg);
      await db.query("UPDATE probe_wide SET state = 'changed' WHERE id = 7");
      // The probe's query as the server got it (the general log), and the server's plan for it.
      const root = await rootConnection();
      try {
        await root.query("TRUNCATE mysql.general_log; SET GLOBAL log_output = 'TABLE', general_log = 1");
        const next = await run(cfg);
        await root.query("SET GLOBAL general_log = 0");
        expect(next.stderr).toContain(
          "probe_wide: 49 partition(s) unchanged since the last read: not read again",
        );
        const [logged] = await root.query(
          "SELECT CONVERT(argument USING utf8mb4) AS sql_text FROM mysql.general_log WHERE command_type = 'Query' AND argument LIKE '%CRC32%probe_wide%GROUP BY%'",
        );
        const probes = (logged as { sql_text: string }[]).map((row) => row.sql_text);
        expect(probes).toHaveLength(1);
        await root.query(`USE \`${testEnv().mysql.scratchDatabase}\``);
        const [plan] = await root.query(`EXPLAIN ${probes[0]}`);
        // A scan of the table (grouped in a temporary table), not the course_id index in order.
        expect((plan as { type: string; key: string | null }[])[0]).toMatchObject({ type: "ALL", key: null });
      } finally {
        await root.query("SET GLOBAL general_log = 0; TRUNCATE mysql.general_log");
        await root.end();
      }
    } finally {
      await db.query("DROP TABLE IF EXISTS probe_wide");
    }
  });

  test("full_every forces a read of every partition, and of the unpartitioned table; run --full always reads", async () => {
    const cfg = config(CHECKSUMMED);
    await run(cfg);
    expect(await run(cfg)).toMatchObject({ parts: { rows: 0, unread: 3 }, plain: { rows: 0, unread: 1 } });
    const full = await run(cfg, "--full");
    expect(full).toMatchObject({ parts: { rows: 60 }, plain: { rows: 30 } });
    expect(full.parts.unread).toBeUndefined();
    expect(full.plain.unread).toBeUndefined();

    age(join(cfg.stateDir, "full-reads.json"), 23);
    age(join(cfg.stateDir, "probes.json"), 23, "read_at");
    expect(await run(cfg)).toMatchObject({ parts: { rows: 0, unread: 3 }, plain: { rows: 0, unread: 1 } });
    age(join(cfg.stateDir, "full-reads.json"), 2);
    age(join(cfg.stateDir, "probes.json"), 2, "read_at");
    const forced = await run(cfg);
    expect(forced).toMatchObject({ parts: { rows: 60, error: null }, plain: { rows: 30, error: null } });
    expect(forced.parts.unread).toBeUndefined();
    expect(forced.plain.unread).toBeUndefined();
    // The forced read counts: the next run skips again.
    expect(await run(cfg)).toMatchObject({ parts: { rows: 0, unread: 3 }, plain: { rows: 0, unread: 1 } });
  });

  test("an incremental table without an auto-increment key: the window's unchanged partitions are skipped, a change without its timestamp is seen", async () => {
    await db.query("ALTER TABLE probe_events MODIFY id INT NOT NULL");
    const cfg = config();
    expect((await run(cfg)).events).toMatchObject({ rows: 500, error: null });
    expect((await run(cfg)).events).toMatchObject({ rows: 0, unread: 2, error: null });
    // C4 is in the overlap window; its timestamp does not move.
    await db.query("UPDATE probe_events SET grade = 42 WHERE id = 499");
    expect((await run(cfg)).events).toMatchObject({ rows: 100, unread: 1, error: null });
    expect(fileTree(cfg.datalake).get(eventsKey(4))).toBe((await cleanExtraction()).get(eventsKey(4)));
  });
});

/**
 * The statements panorama's MySQL user sent while `action` ran: MariaDB's general log, written to
 * its table for the time of the action, then emptied and set back as it was.
 */
async function statementsDuring(action: () => Promise<unknown>): Promise<string[]> {
  const root = await rootConnection();
  try {
    const [[was]] = (await root.query("SELECT @@global.log_output AS output")) as unknown as [
      [{ output: string }],
    ];
    await root.query("SET GLOBAL log_output = 'TABLE'");
    await root.query("TRUNCATE mysql.general_log");
    await root.query("SET GLOBAL general_log = 1");
    try {
      await action();
    } finally {
      await root.query("SET GLOBAL general_log = 0");
      await root.query("SET GLOBAL log_output = ?", [was.output]);
    }
    const [rows] = await root.query(
      "SELECT CAST(argument AS CHAR) AS statement FROM mysql.general_log WHERE command_type = 'Query' AND user_host LIKE ?",
      [`${testEnv().mysql.user}[%`],
    );
    await root.query("TRUNCATE mysql.general_log");
    return (rows as { statement: string }[]).map((r) => r.statement);
  } finally {
    await root.end();
  }
}

describe.skipIf(skip)("nothing committed since the last probe: the table is not queried", () => {
  test("the same change marker: no statement reads the tables, their partitions are not listed; said as a skip; run --full and full_every read", async () => {
    const cfg = config();
    // The tables were filled a moment ago: a change of this second may still be committing.
    await Bun.sleep(2100);
    expect(await run(cfg)).toMatchObject({ items: { rows: 40 }, events: { rows: 500 } });
    const lake = fileTree(cfg.datalake);
    let quiet: Awaited<ReturnType<typeof run>> | undefined;
    const statements = await statementsDuring(async () => {
      quiet = await run(cfg);
    });
    // information_schema was asked (the marker), and nothing else of these tables.
    expect(statements.some((s) => s.includes("information_schema.TABLES"))).toBe(true);
    expect(
      statements.filter((s) => /probe_(items|events)/.test(s) && !s.includes("information_schema")),
    ).toEqual([]);
    expect(quiet).toMatchObject({
      items: { rows: 0, unread: 1, error: null },
      // the window's courses C4 and C0, as its last probe found them
      events: { rows: 0, unread: 2, error: null },
    });
    expect(quiet!.stderr).toContain(
      "probe_events: 2 partition(s) unchanged since the last read: not read again",
    );
    expect(fileTree(cfg.datalake)).toEqual(lake);

    // The probe by the measure runs again when asked to read: --full, full_every.
    expect(await run(cfg, "--full")).toMatchObject({ items: { rows: 40 }, events: { rows: 500 } });
    expect((await run(cfg)).items).toMatchObject({ rows: 0, unread: 1 });
    age(join(cfg.stateDir, "probes.json"), 25, "read_at");
    const forced = await run(cfg);
    expect(forced.items).toMatchObject({ rows: 40, error: null });
    expect(forced.items.unread).toBeUndefined();
  });

  test("a transaction open across a run, and TRUNCATE, reach the lake at the next run", async () => {
    const cfg = config(CHECKSUMMED);
    await Bun.sleep(2100);
    await run(cfg);
    expect(await run(cfg)).toMatchObject({ plain: { rows: 0, unread: 1 }, parts: { rows: 0, unread: 3 } });
    // Begun before the run, committed after it: MariaDB stamps the change with the
    // transaction's start, a second after the marker the last probe recorded.
    const other = await testConnection(testEnv().mysql.scratchDatabase);
    try {
      await other.query("START TRANSACTION");
      await other.query("UPDATE probe_plain SET a = 'late' WHERE id = 2");
      expect((await run(cfg)).plain).toMatchObject({ rows: 0, unread: 1 });
      await other.query("COMMIT");
    } finally {
      await other.end();
    }
    // TRUNCATE leaves UPDATE_TIME as it was.
    await db.query("TRUNCATE probe_parts");
    const after = await run(cfg);
    expect(after.plain).toMatchObject({ rows: 30, error: null });
    expect(after.plain.unread).toBeUndefined();
    expect(after.parts).toMatchObject({ rows: 0, error: null });
    expect(after.parts.unread).toBeUndefined();
    expect(fileTree(cfg.datalake).get(PLAIN)).toContain("late");
    expect(fileTree(cfg.datalake)).toEqual(await cleanExtraction(CHECKSUMMED));
  });
});

describe.skipIf(skip)("every table probed before the first read", () => {
  test("a table read anyway counts the rows it wrote (no COUNT(*) before the read): a row deleted or inserted between its probe and its read leaves the lake right", async () => {
    // probe_events is read first; while it is, probe_items (probed ahead, read anyway: no
    // earlier probe) changes before its own read.
    const cfg = config(EVENTS_FIRST);
    const { config: loaded } = await loadConfig({ configPath: cfg.file, env: process.env });
    const probes = () =>
      (
        JSON.parse(readFileSync(join(cfg.stateDir, "probes.json"), "utf8")) as Record<
          string,
          { signatures: Record<string, string> }
        >
      ).probe_items!.signatures[""];
    const extractWhile = async (change: string) => {
      let changed = false;
      const summaries = await extractTables(loaded, loaded.tables, {
        full: false,
        dryRun: false,
        onFile: async (entry) => {
          if (entry.table !== "probe_events" || changed) return;
          changed = true;
          await db.query(change);
        },
      });
      expect(changed).toBe(true);
      return summaries.find((s) => s.table === "probe_items")!;
    };
    const [maxRows] = await db.query({
      sql: "SELECT CAST(MAX(modified) AS CHAR) FROM probe_items",
      rowsAsArray: true,
    });
    const maxTs = (maxRows as [string][])[0]![0];

    // Deleted after the probe, before the read: in neither the lake nor the count.
    expect(await extractWhile("DELETE FROM probe_items WHERE id = 5")).toMatchObject({
      rows: 39,
      error: null,
    });
    expect(probes()).toBe(`39/40/${maxTs}`);
    const quiet = await run(cfg);
    expect(quiet.items).toMatchObject({ rows: 0, unread: 1, error: null });

    // Inserted after the probe, before the read: in the lake and the count, not in MAX(id), so
    // the next run reads again (once), and the lake is a clean extraction's.
    rmSync(join(cfg.stateDir, "probes.json"));
    expect(
      await extractWhile("INSERT INTO probe_items (name, modified) VALUES ('late', '2023-06-01')"),
    ).toMatchObject({ rows: 40, error: null });
    expect(probes()).toBe(`40/40/${maxTs}`);
    const again = await run(cfg);
    expect(again.items).toMatchObject({ rows: 40, error: null });
    expect(again.items.unread).toBeUndefined();
    expect((await run(cfg)).items).toMatchObject({ rows: 0, unread: 1, error: null });
    expect(fileTree(cfg.datalake)).toEqual(await cleanExtraction(EVENTS_FIRST));
  });

  test("the largest tables are probed first (a big probe left for last would run alone); the reads keep the configured order", async () => {
    await db.query(
      "INSERT INTO probe_parts SELECT seq, CONCAT('course-v1:Org+P', seq % 3, '+2024'), 1 FROM seq_61_to_5000",
    );
    await db.query("ANALYZE TABLE probe_parts, probe_plain");
    const cfg = config(CHECKSUMMED);
    const { config: loaded } = await loadConfig({ configPath: cfg.file, env: process.env });
    const said: string[] = [];
    const summaries = await extractTables(loaded, loaded.tables, {
      full: false,
      dryRun: false,
      events: { tablePlanning: (table) => said.push(`planning ${table}`) },
      onFile: async (entry) => {
        if (!said.includes(`file ${entry.table}`)) said.push(`file ${entry.table}`);
      },
    });
    expect(loaded.tables.map((t) => t.name)).toEqual(["probe_plain", "probe_parts"]);
    expect(said).toEqual([
      "planning probe_parts",
      "planning probe_plain",
      "file probe_plain",
      "file probe_parts",
    ]);
    expect(summaries.map((s) => [s.table, s.rows, s.error])).toEqual([
      ["probe_plain", 30, null],
      ["probe_parts", 5000, null],
    ]);
  });

  test("a change made after a table's probe, while another table is read, reaches the lake at the next run", async () => {
    const cfg = config(CHECKSUMMED);
    await run(cfg);
    const { config: loaded } = await loadConfig({ configPath: cfg.file, env: process.env });
    await db.query("UPDATE probe_plain SET a = 'plain-changed' WHERE id = 1");
    let changedMeanwhile = false;
    const said: string[] = [];
    const summaries = await extractTables(loaded, loaded.tables, {
      full: false,
      dryRun: false,
      // The progress line names each table while it is probed, ahead of the reads too.
      events: { tablePlanning: (table) => said.push(`planning ${table}`) },
      onFile: async (entry) => {
        said.push(`file ${entry.table}`);
        if (entry.table !== "probe_plain") return;
        // probe_parts, next in line, was probed before this read began.
        await db.query("UPDATE probe_parts SET grade = 77 WHERE id = 4");
        changedMeanwhile = true;
      },
    });
    expect(changedMeanwhile).toBe(true);
    expect(said.indexOf("planning probe_parts")).toBeGreaterThanOrEqual(0);
    expect(said.indexOf("planning probe_parts")).toBeLessThan(said.indexOf("file probe_plain"));
    expect(summaries.find((s) => s.table === "probe_plain")).toMatchObject({ rows: 30, error: null });
    expect(summaries.find((s) => s.table === "probe_parts")).toMatchObject({
      rows: 0,
      unchanged: 3,
      error: null,
    });
    // The probe recorded is the one taken before the change: the next run sees the partition moved.
    const next = await run(cfg);
    expect(next.parts).toMatchObject({ rows: 20, unread: 2, error: null });
    expect(fileTree(cfg.datalake)).toEqual(await cleanExtraction(CHECKSUMMED));
  });
});
