// The LMS changing a table's schema while panorama reads it, against the real MariaDB: a table
// held locked (an ALTER TABLE, LOCK TABLES) past lock_wait_timeout, and a table renamed away in
// the middle of its read (an online schema change's cut-over done in two renames). Each fails
// the table with what happened, not a hint to fix the config, keeps no watermark, and the next
// run reads every partition again.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { readFileSync, rmSync } from "node:fs";
import type mysql from "mysql2/promise";
import { parseConfig } from "../../src/config/load.ts";
import type { Config } from "../../src/config/types.ts";
import { extractTables } from "../../src/extract/extract.ts";
import { readWatermarks } from "../../src/state/watermarks.ts";
import { skipWithoutTestEnv, testEnv } from "../support/env.ts";
import { rootConnection, testConnection, writeTestConfig } from "../support/mysql.ts";

const skip = skipWithoutTestEnv();
setDefaultTimeout(60_000);
const TABLE = "osc_rows";
let db: mysql.Connection;
let root: mysql.Connection;
const dirs: string[] = [];

function config(): Config {
  // gzip: read partition by partition (the one-query scan serves plain CSV only).
  const cfg = writeTestConfig(`connections = 1
[extract]
preset = "none"

[[tables]]
name = "${TABLE}"
partition_fields = ["course_id"]
incremental = { timestamp_field = "modified", overlap = "1 hour" }
`);
  dirs.push(cfg.dir);
  const text = readFileSync(cfg.file, "utf8").replace("[datalake]", '[datalake]\ncompression = "gzip"');
  return parseConfig(text, cfg.file, {}).config;
}

beforeAll(async () => {
  if (skip) return;
  db = await testConnection(testEnv().mysql.scratchDatabase);
  root = await rootConnection();
  await db.query(`DROP TABLE IF EXISTS ${TABLE}, ${TABLE}_old;
    CREATE TABLE ${TABLE} (id INT AUTO_INCREMENT PRIMARY KEY, course_id VARCHAR(64), n INT, modified DATETIME(6)) ENGINE=InnoDB;
    INSERT INTO ${TABLE} (course_id, n, modified) SELECT CONCAT('course-v1:A+', seq % 4, '+T'), seq, '2024-01-01' FROM seq_1_to_40`);
});

afterAll(async () => {
  if (skip) return;
  await db.query(`DROP TABLE IF EXISTS ${TABLE}, ${TABLE}_old`);
  await db.end();
  await root.end();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

describe.skipIf(skip)("a schema change on the LMS in the middle of a run", () => {
  test("a table renamed away during its read: the failure says so, and the next run reads it whole", async () => {
    const cfg = config();
    let renamed = false;
    const [failed] = await extractTables(cfg, cfg.tables, {
      full: false,
      dryRun: false,
      onFile: async () => {
        if (renamed) return;
        renamed = true;
        await db.query(`RENAME TABLE ${TABLE} TO ${TABLE}_old`);
      },
    });
    await db.query(`RENAME TABLE ${TABLE}_old TO ${TABLE}`);
    expect(renamed).toBe(true);
    expect(failed!.error).toContain(`Table '${testEnv().mysql.scratchDatabase}.${TABLE}' doesn't exist`);
    expect(failed!.error).toContain("the table went away during the read (renamed or dropped");
    expect(failed!.error).not.toContain("[extract] exclude");
    expect(readWatermarks(cfg.state_dir)[TABLE]).toBeUndefined();
    const [again] = await extractTables(cfg, cfg.tables, { full: false, dryRun: false });
    expect([again!.error, again!.rows, again!.files]).toEqual([null, 40, 4]);
  });

  test("a table held locked past lock_wait_timeout: the failure names the lock, not the data", async () => {
    const cfg = config();
    const lms = await testConnection(testEnv().mysql.scratchDatabase);
    await root.query("SET GLOBAL lock_wait_timeout = 1");
    try {
      await lms.query(`LOCK TABLES ${TABLE} WRITE`);
      const [failed] = await extractTables(cfg, cfg.tables, { full: false, dryRun: false });
      expect(failed!.error).toContain("Lock wait timeout exceeded");
      expect(failed!.error).toContain("another session held the table locked longer than lock_wait_timeout");
      expect(readWatermarks(cfg.state_dir)[TABLE]).toBeUndefined();
    } finally {
      await root.query("SET GLOBAL lock_wait_timeout = DEFAULT");
      await lms.end();
    }
    const [again] = await extractTables(cfg, cfg.tables, { full: false, dryRun: false });
    expect([again!.error, again!.rows, again!.files]).toEqual([null, 40, 4]);
  });
});
