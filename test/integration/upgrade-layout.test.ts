// An Open edX upgrade adds or drops a column of an incremental table: every partition's bytes
// change (a new field, or a preset column now written empty), but the overlap window finds only
// the partitions saved lately, and the others kept the old layout until full_every. The run that
// sees another layout reads the table in full, as a clean extraction would write it.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { rmSync } from "node:fs";
import type mysql from "mysql2/promise";
import { runPanorama } from "../support/cli.ts";
import { skipWithoutTestEnv, testEnv } from "../support/env.ts";
import { fileTree } from "../support/file-tree.ts";
import { testConnection, writeTestConfig } from "../support/mysql.ts";

const skip = skipWithoutTestEnv();
setDefaultTimeout(60_000);
let db: mysql.Connection;

const TABLES = `[extract]
preset = "none"

[[tables]]
name = "upgrade_events"
partition_fields = ["course_id"]
incremental = { timestamp_field = "modified", overlap = "1 hour" }
`;

beforeAll(async () => {
  if (skip) return;
  db = await testConnection(testEnv().mysql.scratchDatabase);
  await db.query(`DROP TABLE IF EXISTS upgrade_events;
    CREATE TABLE upgrade_events (id INT AUTO_INCREMENT PRIMARY KEY, course_id VARCHAR(100), grade DOUBLE,
      modified DATETIME(6), KEY (course_id), KEY (modified));
    INSERT INTO upgrade_events (course_id, grade, modified)
      SELECT CONCAT('course-v1:Org+C', (seq - 1) DIV 100, '+2024'), seq / 100, '2024-01-01 00:00:00' + INTERVAL seq MINUTE
      FROM seq_1_to_300`);
});

afterAll(async () => {
  await db?.query("DROP TABLE IF EXISTS upgrade_events");
  await db?.end();
});

describe.skipIf(skip)("an upgrade changes an incremental table's columns", () => {
  test("the next run rewrites every partition in the new layout, as a clean extraction does", async () => {
    const cfg = writeTestConfig(TABLES);
    const clean = writeTestConfig(TABLES);
    try {
      expect((await runPanorama(["--config", cfg.file, "run"])).code).toBe(0);
      // The migration, then the LMS saves a row in one course (C0): the window holds C0 and C2,
      // whose rows are the newest, not C1.
      await db.query(`ALTER TABLE upgrade_events ADD COLUMN passed TINYINT(1) NOT NULL DEFAULT 0;
        UPDATE upgrade_events SET grade = 9, modified = NOW(6) WHERE id = 1`);
      expect((await runPanorama(["--config", cfg.file, "run"])).code).toBe(0);
      const objects = [...fileTree(cfg.datalake)].filter(([key]) => key.endsWith(".csv"));
      expect(objects).toHaveLength(3);
      for (const [key, text] of objects)
        expect({ key, header: text.split("\r\n")[0] }).toMatchObject({
          key,
          header: "id,grade,modified,passed",
        });
      expect((await runPanorama(["--config", clean.file, "run"])).code).toBe(0);
      expect(fileTree(cfg.datalake)).toEqual(fileTree(clean.datalake));
      // Nothing changed since: the window is back, and nothing is sent again.
      const next = await runPanorama(["--config", cfg.file, "--json", "run"]);
      expect(next.code).toBe(0);
      expect(next.stderr).toContain('"objects":0');
    } finally {
      rmSync(cfg.dir, { recursive: true, force: true });
      rmSync(clean.dir, { recursive: true, force: true });
    }
  });
});
