// A `[[tables]]` entry without `fields` takes the table's columns as they are at each run. An
// incremental table re-extracts only its recent partitions, so when an upgrade adds or drops a
// column its older objects would keep the old header beside new ones: the datalake would mix two
// layouts under one table (nothing in a local datalake compares them, as Glue's raw table does on
// S3). The run after the change reads every partition again, against the real MariaDB, and its
// datalake equals a clean extraction's; the change back to the earlier columns does the same.
import { afterAll, beforeAll, beforeEach, describe, expect, setDefaultTimeout, test } from "bun:test";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import type mysql from "mysql2/promise";
import { runPanorama } from "../support/cli.ts";
import { skipWithoutTestEnv, testEnv } from "../support/env.ts";
import { fileTree } from "../support/file-tree.ts";
import { testConnection, writeTestConfig } from "../support/mysql.ts";

const skip = skipWithoutTestEnv();
setDefaultTimeout(60_000);
let db: mysql.Connection;
const dirs: string[] = [];

const TABLES = `[extract]
preset = "none"

[[tables]]
name = "layout_events"
partition_fields = ["course_id"]
incremental = { timestamp_field = "modified", overlap = "1 hour" }
`;

/** Each object's header line. */
function headers(dir: string): string[] {
  return [...fileTree(dir).values()].map((text) => text.slice(0, text.indexOf("\r\n")));
}

function config() {
  const cfg = writeTestConfig(TABLES);
  dirs.push(cfg.dir);
  return cfg;
}

async function run(cfg: { file: string }, ...args: string[]): Promise<string> {
  const result = await runPanorama(["--config", cfg.file, "run", ...args]);
  if (result.code !== 0) throw new Error(`panorama run exited ${result.code}: ${result.stderr}`);
  return result.stderr;
}

/** A course's row saved now: only its partition is in the next run's overlap window. */
async function touchOneCourse(): Promise<void> {
  await db.query("UPDATE layout_events SET modified = NOW(6) WHERE id = 1");
}

beforeAll(async () => {
  if (skip) return;
  db = await testConnection(testEnv().mysql.scratchDatabase);
});

beforeEach(async () => {
  if (skip) return;
  // Timestamps days in the past: outside the overlap window of every run after the first.
  await db.query(`DROP TABLE IF EXISTS layout_events;
    CREATE TABLE layout_events (id INT AUTO_INCREMENT PRIMARY KEY, course_id VARCHAR(100), grade INT,
      modified DATETIME(6), KEY (course_id), KEY (modified));
    INSERT INTO layout_events (course_id, grade, modified) SELECT CONCAT('course-v1:Org+C', seq % 4, '+2024'),
      seq % 7, '2024-01-01 00:00:00' + INTERVAL seq HOUR FROM seq_1_to_80`);
});

afterAll(async () => {
  if (skip) return;
  await db.query("DROP TABLE IF EXISTS layout_events");
  await db.end();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

describe.skipIf(skip)("a table's columns change under an incremental table without fields", () => {
  test("the run after a column is added, dropped, and the table put back reads every partition again", async () => {
    const cfg = config();
    await run(cfg);
    expect(new Set(headers(cfg.datalake))).toEqual(new Set(["id,grade,modified"]));
    expect(headers(cfg.datalake)).toHaveLength(4);

    // Nothing changed in the columns: only the touched course is read, and nothing is said.
    await touchOneCourse();
    expect(await run(cfg)).not.toContain("layout changed");

    const steps: { alter: string; header: string; said: string }[] = [
      {
        alter: "ALTER TABLE layout_events ADD COLUMN note VARCHAR(20) NULL",
        header: "id,grade,modified,note",
        said: "added note",
      },
      {
        alter: "ALTER TABLE layout_events DROP COLUMN grade",
        header: "id,modified,note",
        said: "dropped grade",
      },
      // Back to the first columns, as a restore from an earlier backup does.
      {
        alter: "ALTER TABLE layout_events DROP COLUMN note, ADD COLUMN grade INT AFTER course_id",
        header: "id,grade,modified",
        said: "added grade; dropped note",
      },
    ];
    for (const step of steps) {
      await db.query(step.alter);
      await touchOneCourse();
      const stderr = await run(cfg);
      expect(stderr).toContain(
        `layout_events: its layout changed since its objects were written (${step.said}): every partition is read again`,
      );
      expect(new Set(headers(cfg.datalake))).toEqual(new Set([step.header]));
      const clean = config();
      await run(clean, "--full");
      expect(fileTree(cfg.datalake)).toEqual(fileTree(clean.datalake));
      // Said once: the run after reads only what changed again.
      await touchOneCourse();
      expect(await run(cfg)).not.toContain("layout changed");
    }
  });

  test("a column made a partition field, and back: said as such, not as a column dropped or added", async () => {
    const cfg = config();
    await run(cfg);
    const partitionBy = async (fields: string) => {
      writeFileSync(
        cfg.file,
        readFileSync(cfg.file, "utf8").replace(/partition_fields = .*/, `partition_fields = ${fields}`),
      );
      await touchOneCourse();
      return run(cfg);
    };
    expect(await partitionBy('["course_id", "grade"]')).toContain(
      "layout_events: its layout changed since its objects were written (now partitioned by grade): every partition is read again",
    );
    expect(new Set(headers(cfg.datalake))).toEqual(new Set(["id,modified"]));
    expect(await partitionBy('["course_id"]')).toContain(
      "its layout changed since its objects were written (no longer partitioned by grade)",
    );
  });
});
