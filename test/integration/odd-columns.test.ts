// A column whose name is not [A-Za-z0-9_]+ (a site's own migration, say): a table read whole
// failed with a bare "not a valid identifier" labelled a MySQL error, doctor's fix was a GRANT, and
// `schema pull --write` wrote a field list that the configuration then refused (exit 2). Now the
// table fails naming the column and the fix, and schema pull leaves it out as a comment.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { appendFileSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import type mysql from "mysql2/promise";
import { type CheckResult, runChecks } from "../../src/doctor.ts";
import { cleanEnv, runPanorama } from "../support/cli.ts";
import { skipWithoutTestEnv, testEnv } from "../support/env.ts";
import { testConnection, writeTestConfig } from "../support/mysql.ts";

const skip = skipWithoutTestEnv();
let db: mysql.Connection;
const TABLES = '[extract]\npreset = "none"\n\n[[tables]]\nname = "odd_columns"\n';

beforeAll(async () => {
  if (skip) return;
  db = await testConnection(testEnv().mysql.scratchDatabase);
  await db.query(`DROP TABLE IF EXISTS odd_columns;
    CREATE TABLE odd_columns (id INT PRIMARY KEY, \`odd-col\` INT, kept TEXT);
    INSERT INTO odd_columns VALUES (1, 2, 'x')`);
});

afterAll(async () => {
  await db?.query("DROP TABLE IF EXISTS odd_columns");
  await db?.end();
});

describe.skipIf(skip)("a column panorama cannot name", () => {
  test("run fails the table naming the column and the fix", async () => {
    const cfg = writeTestConfig(TABLES);
    try {
      const result = await runPanorama(["--config", cfg.file, "--json", "run"]);
      expect(result.code).toBe(1);
      expect(result.stderr).toContain(
        'odd_columns: column \\"odd-col\\" of the table is not a name panorama reads',
      );
      expect(result.stderr).toContain("as its fields in [[tables]]");
      expect(result.stderr).not.toContain("not a valid identifier");
      const results: CheckResult[] = [];
      for await (const r of runChecks({ configPath: cfg.file, env: cleanEnv() })) results.push(r);
      const select = results.find((r) => r.check === "MySQL SELECT")!;
      expect(select.ok).toBe(false);
      expect(select.detail).toContain('column "odd-col"');
      expect(select.hint).not.toContain("GRANT");
    } finally {
      rmSync(cfg.dir, { recursive: true, force: true });
    }
  });

  test("schema pull --write leaves it out, and the file it wrote loads and extracts the rest", async () => {
    const cfg = writeTestConfig(TABLES);
    try {
      const pulled = join(cfg.dir, "pulled.toml");
      expect((await runPanorama(["--config", cfg.file, "schema", "pull", "--write", pulled])).code).toBe(0);
      const text = readFileSync(pulled, "utf8");
      expect(text).toContain('# { name = "odd-col", type = "int" },');
      // The pulled block in place of the configured one.
      const own = writeTestConfig('[extract]\npreset = "none"\n');
      try {
        appendFileSync(own.file, `\n${text}`);
        const result = await runPanorama(["--config", own.file, "run"]);
        expect(result.code).toBe(0);
        const csv = readFileSync(
          join(own.datalake, "openedx/odd_columns/lms=lms.example.com/odd_columns.csv"),
          "utf8",
        );
        expect(csv).toBe("id,kept\r\n1,x\r\n");
      } finally {
        rmSync(own.dir, { recursive: true, force: true });
      }
    } finally {
      rmSync(cfg.dir, { recursive: true, force: true });
    }
  });
});
