// Statements the DBA's server stops, against the real MariaDB: a user's MAX_STATEMENT_TIME
// (MariaDB's max_statement_time; MySQL 8's max_execution_time is the same error path) and a KILL
// QUERY from another session, as pt-kill sends. A table write-locked by the LMS (an ALTER, LOCK
// TABLES) holds panorama's statements until the limit stops them. The probe for changes is only a
// shortcut: stopped, the table is read. A read stopped fails the table with what happened and
// what to change, and keeps nothing: no spool file, no object, no watermark, no probe; the next
// run reads the table whole.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, spyOn, test } from "bun:test";
import { existsSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import type mysql from "mysql2/promise";
import { parseConfig } from "../../src/config/load.ts";
import type { Config } from "../../src/config/types.ts";
import { spoolDir } from "../../src/datalake/spool.ts";
import { extractTables } from "../../src/extract/extract.ts";
import { log } from "../../src/log.ts";
import { readProbes } from "../../src/state/probes.ts";
import { skipWithoutTestEnv, testEnv } from "../support/env.ts";
import { rootConnection, testConnection, writeTestConfig } from "../support/mysql.ts";

const skip = skipWithoutTestEnv();
setDefaultTimeout(60_000);
const USER = "pz_timed";
const PASSWORD = "timed-secret-1";
const TABLE = "timed_rows";
let db: mysql.Connection;
let root: mysql.Connection;
/** the LMS's session: holds the table write-locked */
let lms: mysql.Connection;
const dirs: string[] = [];

function config(): Config {
  const cfg = writeTestConfig(
    `[extract]
preset = "none"

[[tables]]
name = "${TABLE}"
`,
    { user: USER, password: PASSWORD },
  );
  dirs.push(cfg.dir);
  return parseConfig(readFileSync(cfg.file, "utf8"), cfg.file, {}).config;
}

async function extract(cfg: Config, onStarted?: () => void) {
  return extractTables(cfg, cfg.tables, {
    full: false,
    dryRun: false,
    events: { tableStarted: () => onStarted?.() },
  });
}

/** Files in a config's spool. */
function spooled(cfg: Config): string[] {
  const spool = spoolDir(cfg.state_dir);
  return existsSync(spool)
    ? (readdirSync(spool, { recursive: true }) as string[]).filter((n) => n.endsWith(".csv"))
    : [];
}

/** The files in a config's spool and their bytes. */
function spooledBytes(cfg: Config): Record<string, Buffer> {
  return Object.fromEntries(
    spooled(cfg).map((name) => [name, readFileSync(join(spoolDir(cfg.state_dir), name))]),
  );
}

/** The id of the limited user's statement like `sql` once it waits for the table's lock. */
async function waitingStatement(sql: string): Promise<number> {
  for (let i = 0; i < 500; i++) {
    const [rows] = await root.query(
      "SELECT ID AS id FROM information_schema.PROCESSLIST WHERE USER = ? AND STATE LIKE 'Waiting for table%' AND INFO LIKE ?",
      [USER, sql],
    );
    const id = (rows as { id: number }[])[0]?.id;
    if (id !== undefined) return Number(id);
    await Bun.sleep(10);
  }
  throw new Error("no statement of the limited user waited for the lock");
}

beforeAll(async () => {
  if (skip) return;
  const scratch = testEnv().mysql.scratchDatabase;
  db = await testConnection(scratch);
  root = await rootConnection();
  lms = await testConnection(scratch);
  await db.query(`DROP TABLE IF EXISTS ${TABLE};
    CREATE TABLE ${TABLE} (id INT AUTO_INCREMENT PRIMARY KEY, course_id VARCHAR(64), n INT) ENGINE=InnoDB;
    INSERT INTO ${TABLE} (course_id, n) SELECT CONCAT('course-v1:A+', seq % 3, '+T'), seq FROM seq_1_to_60`);
  await root.query(`DROP USER IF EXISTS '${USER}'@'%';
    CREATE USER '${USER}'@'%' IDENTIFIED BY '${PASSWORD}';
    GRANT SELECT ON ${scratch}.* TO '${USER}'@'%'`);
});

afterAll(async () => {
  if (skip) return;
  await lms.query("UNLOCK TABLES");
  await db.query(`DROP TABLE IF EXISTS ${TABLE}`);
  await root.query(`DROP USER IF EXISTS '${USER}'@'%'`);
  for (const c of [db, root, lms]) await c.end();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

describe.skipIf(skip)("statements the server stops", () => {
  test("a probe stopped by max_statement_time reads the table; a read stopped by it fails with the limit to lift and keeps nothing", async () => {
    const cfg = config();
    expect((await extract(cfg)).map((s) => [s.error, s.rows])).toEqual([[null, 60]]);
    await db.query(`UPDATE ${TABLE} SET n = n + 1 WHERE course_id = 'course-v1:A+1+T'`);
    await root.query(`ALTER USER '${USER}'@'%' WITH MAX_STATEMENT_TIME 0.3`);
    const infos: string[] = [];
    let probes = readProbes(cfg.state_dir)[TABLE];
    const spy = spyOn(log, "info").mockImplementation((message: string) => {
      infos.push(message);
    });
    try {
      // The probe waits for the lock and is stopped; the lock goes as the read starts.
      await lms.query(`LOCK TABLES ${TABLE} WRITE`);
      const read = await extract(cfg, () => {
        lms.query("UNLOCK TABLES");
      });
      expect(infos.filter((m) => m.includes("the server stopped the probe for changes"))).toHaveLength(1);
      expect(read.map((s) => [s.error, s.rows, s.files])).toEqual([[null, 60, 1]]);

      // Now the read itself waits for the lock and is stopped.
      await db.query(`UPDATE ${TABLE} SET n = n + 1 WHERE course_id = 'course-v1:A+2+T'`);
      probes = readProbes(cfg.state_dir)[TABLE];
      const before = spooledBytes(cfg);
      await lms.query(`LOCK TABLES ${TABLE} WRITE`);
      const [failed] = await extract(cfg);
      expect(failed!.error).toContain("max_statement_time exceeded");
      expect(failed!.error).toContain(`ask the DBA to lift it for this user: ALTER USER '${USER}'`);
      // The file of the read before, whole, not a part of this one.
      expect(spooledBytes(cfg)).toEqual(before);
      expect(readProbes(cfg.state_dir)[TABLE]).toEqual(probes);
    } finally {
      spy.mockRestore();
      await lms.query("UNLOCK TABLES");
      await root.query(`ALTER USER '${USER}'@'%' WITH MAX_STATEMENT_TIME 0`);
    }
    // The next run reads the changed table whole, and records its probe.
    const again = await extract(cfg);
    expect(again.map((s) => [s.error, s.rows, s.files])).toEqual([[null, 60, 1]]);
    expect(readProbes(cfg.state_dir)[TABLE]).not.toEqual(probes);
  });

  test("a read stopped by another session's KILL QUERY says so, with whom to ask", async () => {
    const cfg = config();
    await lms.query(`LOCK TABLES ${TABLE} WRITE`);
    try {
      const extracting = extract(cfg);
      // The probe first: stopped, the table is read; then the read.
      await root.query(`KILL QUERY ${await waitingStatement("SELECT CAST(COUNT(*)%")}`);
      await root.query(`KILL QUERY ${await waitingStatement("SELECT `id`%")}`);
      const [failed] = await extracting;
      expect(failed!.error).toContain("Query execution was interrupted");
      expect(failed!.error).toContain("KILL QUERY: the DBA, or a query killer such as pt-kill");
      expect(spooled(cfg)).toEqual([]);
      expect(readProbes(cfg.state_dir)[TABLE]).toBeUndefined();
    } finally {
      await lms.query("UNLOCK TABLES");
    }
  });
});
