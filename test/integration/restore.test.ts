// MySQL restored from a backup: an incremental table's rows go back to older saves, whose
// timestamps are older than the watermark, so no overlap window finds them and the unchanged
// probe of a partition with as many rows as before calls it unchanged. The run that sees the
// table's newest timestamp fall behind the watermark reads it in full: the datalake is then what
// a clean extraction writes, and the objects of partitions the backup lacks are deleted.
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
name = "restore_events"
partition_fields = ["course_id"]
incremental = { timestamp_field = "modified", overlap = "1 hour" }
`;

beforeAll(async () => {
  if (skip) return;
  db = await testConnection(testEnv().mysql.scratchDatabase);
  await db.query(`DROP TABLE IF EXISTS restore_events; DROP TABLE IF EXISTS restore_backup;
    CREATE TABLE restore_events (id INT AUTO_INCREMENT PRIMARY KEY, course_id VARCHAR(100), grade DOUBLE,
      modified DATETIME(6), KEY (course_id), KEY (modified));
    INSERT INTO restore_events (course_id, grade, modified)
      SELECT CONCAT('course-v1:Org+C', seq % 3, '+2024'), seq / 100, '2024-01-01 00:00:00' + INTERVAL seq MINUTE
      FROM seq_1_to_300;
    CREATE TABLE restore_backup AS SELECT * FROM restore_events`);
});

afterAll(async () => {
  await db?.query("DROP TABLE IF EXISTS restore_events; DROP TABLE IF EXISTS restore_backup");
  await db?.end();
});

describe.skipIf(skip)("a database restored from a backup", () => {
  test("the next run reads the incremental table in full: the datalake is a clean extraction's", async () => {
    const cfg = writeTestConfig(TABLES);
    const clean = writeTestConfig(TABLES);
    try {
      expect((await runPanorama(["--config", cfg.file, "run"])).code).toBe(0);
      const before = fileTree(cfg.datalake);
      // The LMS goes on: saves in one course (as many rows as before), a new course.
      await db.query(`UPDATE restore_events SET grade = 7.5, modified = NOW(6) WHERE course_id = 'course-v1:Org+C1+2024' AND id < 50;
        INSERT INTO restore_events (course_id, grade, modified) VALUES ('course-v1:Org+New+2025', 1, NOW(6))`);
      expect((await runPanorama(["--config", cfg.file, "run"])).code).toBe(0);
      expect(fileTree(cfg.datalake)).not.toEqual(before);
      // Then the database is restored from the backup taken before.
      await db.query(`DELETE FROM restore_events; INSERT INTO restore_events SELECT * FROM restore_backup`);
      const restored = await runPanorama(["--config", cfg.file, "--json", "run"]);
      expect(restored.code).toBe(0);
      expect(restored.stderr).toContain(
        "its data went back (restored from a backup?), so every partition is read",
      );
      expect(fileTree(cfg.datalake)).toEqual(before);
      expect((await runPanorama(["--config", clean.file, "run"])).code).toBe(0);
      expect(fileTree(cfg.datalake)).toEqual(fileTree(clean.datalake));
      const verify = await runPanorama(["--config", cfg.file, "verify"]);
      expect(verify.code).toBe(0);
      // The watermark is the restored data's now: the next run is incremental again, and quiet.
      const next = await runPanorama(["--config", cfg.file, "--json", "run"]);
      expect(next.code).toBe(0);
      expect(next.stderr).not.toContain("went back");
    } finally {
      rmSync(cfg.dir, { recursive: true, force: true });
      rmSync(clean.dir, { recursive: true, force: true });
    }
  });

  test("an incremental table emptied: its objects are deleted at the next run", async () => {
    const cfg = writeTestConfig(TABLES);
    try {
      await db.query(`DELETE FROM restore_events; INSERT INTO restore_events SELECT * FROM restore_backup`);
      expect((await runPanorama(["--config", cfg.file, "run"])).code).toBe(0);
      expect([...fileTree(cfg.datalake).keys()].filter((k) => k.endsWith(".csv"))).toHaveLength(3);
      await db.query("DELETE FROM restore_events");
      const emptied = await runPanorama(["--config", cfg.file, "--json", "run"]);
      expect(emptied.code).toBe(0);
      expect(emptied.stderr).toContain("none: the table is empty");
      expect([...fileTree(cfg.datalake).keys()].filter((k) => k.endsWith(".csv"))).toEqual([]);
      expect((await runPanorama(["--config", cfg.file, "verify"])).code).toBe(0);
    } finally {
      rmSync(cfg.dir, { recursive: true, force: true });
    }
  });
});
