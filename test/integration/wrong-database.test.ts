// [mysql] database naming a database that holds none of the preset tables (an empty one, another
// application's): every table was skipped as "this Open edX release has no such table", and run,
// verify and doctor succeeded with nothing extracted. auth_user, Django's own, is in every release:
// without it and every other table, this is the wrong database, said once with the fix.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { rmSync } from "node:fs";
import { type CheckResult, runChecks } from "../../src/doctor.ts";
import { cleanEnv, runPanorama } from "../support/cli.ts";
import { skipWithoutTestEnv } from "../support/env.ts";
import { dropTestDatabase, freshDatabase, writeTestConfig } from "../support/mysql.ts";

const skip = skipWithoutTestEnv();
setDefaultTimeout(60_000);
const DATABASE = "panorama_not_lms";
let cfg: ReturnType<typeof writeTestConfig>;

beforeAll(async () => {
  if (skip) return;
  await freshDatabase(DATABASE, `CREATE TABLE ${DATABASE}.wiki_page (id INT PRIMARY KEY)`);
  cfg = writeTestConfig('[extract]\nexclude = ["course_structures"]\n', { database: DATABASE });
});

afterAll(async () => {
  if (skip) return;
  if (cfg) rmSync(cfg.dir, { recursive: true, force: true });
  await dropTestDatabase(DATABASE);
});

describe.skipIf(skip)("a database without any of the preset tables", () => {
  const said = `${DATABASE} has none of the 29 tables: it is not the LMS's database`;

  test("run fails once with the fix, not 29 tables skipped as absent", async () => {
    const result = await runPanorama(["--config", cfg.file, "--json", "run"]);
    expect(result.code).toBe(1);
    expect(result.stderr.split(said)).toHaveLength(2);
    expect(result.stderr).toContain("set [mysql] database to the LMS's (Tutor's is openedx)");
    expect(result.stderr).not.toContain("this Open edX release has no such table");
  });

  test("verify fails", async () => {
    const result = await runPanorama(["--config", cfg.file, "verify"]);
    expect(result.code).toBe(1);
    expect(result.stdout).toContain(said);
  });

  test("doctor: ✗ MySQL SELECT with the fix", async () => {
    const results: CheckResult[] = [];
    for await (const r of runChecks({ configPath: cfg.file, env: cleanEnv() })) results.push(r);
    const select = results.find((r) => r.check === "MySQL SELECT")!;
    expect(select).toMatchObject({ ok: false, detail: said });
    expect(select.hint).toContain("Tutor's is openedx");
  });

  test("one table this release lacks, asked for alone, is still skipped", async () => {
    const result = await runPanorama([
      "--config",
      cfg.file,
      "--json",
      "run",
      "--tables",
      "submissions_teamsubmission",
    ]);
    expect(result.code).toBe(0);
    expect(result.stderr).toContain("this Open edX release has no such table");
  });
});
