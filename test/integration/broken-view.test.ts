// A configured view whose table was dropped: information_schema still lists the view, with no
// column, and the run said "no column left once partition fields are removed" of a view without
// partition fields. It now fails with the server's own reason.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { rmSync } from "node:fs";
import type mysql from "mysql2/promise";
import { runPanorama } from "../support/cli.ts";
import { skipWithoutTestEnv, testEnv } from "../support/env.ts";
import { testConnection, writeTestConfig } from "../support/mysql.ts";

const skip = skipWithoutTestEnv();
let db: mysql.Connection;

beforeAll(async () => {
  if (skip) return;
  db = await testConnection(testEnv().mysql.scratchDatabase);
  await db.query(`DROP VIEW IF EXISTS broken_view; DROP TABLE IF EXISTS broken_base;
    CREATE TABLE broken_base (id INT PRIMARY KEY, v TEXT); INSERT INTO broken_base VALUES (1, 'a');
    CREATE VIEW broken_view AS SELECT id, v FROM broken_base; DROP TABLE broken_base`);
});

afterAll(async () => {
  await db?.query("DROP VIEW IF EXISTS broken_view; DROP TABLE IF EXISTS broken_base");
  await db?.end();
});

describe.skipIf(skip)("a view whose table is gone", () => {
  test("run fails it with the server's reason, not a word about partition fields", async () => {
    const cfg = writeTestConfig('[extract]\npreset = "none"\n\n[[tables]]\nname = "broken_view"\n');
    try {
      const result = await runPanorama(["--config", cfg.file, "--json", "run"]);
      expect(result.code).toBe(1);
      expect(result.stderr).toContain("reading broken_view: View");
      expect(result.stderr).toContain("references invalid table(s)");
      expect(result.stderr).not.toContain("no column left");
    } finally {
      rmSync(cfg.dir, { recursive: true, force: true });
    }
  });
});
