// A preset table or column the MySQL user may not SELECT is hidden by information_schema, which
// lists only what the user holds a privilege on: it must not pass for one this Open edX release
// lacks (skipped, or written empty, every run without a word of the missing GRANT). run, verify
// and doctor name it and the GRANT; a table the release really lacks is still skipped.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { rmSync } from "node:fs";
import { generateOpenedxData } from "../../scripts/gen-openedx-data.ts";
import { type CheckResult, runChecks } from "../../src/doctor.ts";
import { cleanEnv, runPanorama } from "../support/cli.ts";
import { skipWithoutTestEnv, testEnv } from "../support/env.ts";
import { rootConnection, writeTestConfig } from "../support/mysql.ts";

const skip = skipWithoutTestEnv();
setDefaultTimeout(120_000);
const DATABASE = "panorama_hidden";
const READER = { user: "hidden_reader", password: "hidden-reader-pw" };
// Not granted at all, and granted without one of its preset columns.
const DENIED = "certificates_generatedcertificate";
const PARTLY = "grades_persistentcoursegrade";
// A preset table this "release" lacks, for a reader with SELECT on the whole database.
const ABSENT = "submissions_teamsubmission";

let cfg: ReturnType<typeof writeTestConfig>;

beforeAll(async () => {
  if (skip) return;
  const env = testEnv().mysql;
  const root = await rootConnection();
  await root.query(
    `DROP DATABASE IF EXISTS ${DATABASE}; CREATE DATABASE ${DATABASE} CHARACTER SET utf8mb4; GRANT ALL ON ${DATABASE}.* TO ?@'%', ?@'localhost'`,
    [env.user, env.user],
  );
  await generateOpenedxData({
    users: 20,
    courses: 2,
    enrollments: 30,
    studentmodule: 60,
    seed: 11,
    connection: {
      host: env.host,
      port: env.port,
      user: env.user,
      password: env.password,
      database: DATABASE,
    },
  });
  await root.query(`DROP TABLE ${DATABASE}.${ABSENT}`);
  const [tables] = await root.query(
    "SELECT TABLE_NAME AS name FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME NOT IN (?, ?)",
    [DATABASE, DENIED, PARTLY],
  );
  const [columns] = await root.query(
    "SELECT COLUMN_NAME AS name FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND COLUMN_NAME <> 'percent_grade'",
    [DATABASE, PARTLY],
  );
  await root.query(
    `DROP USER IF EXISTS '${READER.user}'@'%'; CREATE USER '${READER.user}'@'%' IDENTIFIED BY '${READER.password}';
     ${(tables as { name: string }[]).map((t) => `GRANT SELECT ON ${DATABASE}.\`${t.name}\` TO '${READER.user}'@'%';`).join("\n")}
     GRANT SELECT (${(columns as { name: string }[]).map((c) => `\`${c.name}\``).join(", ")}) ON ${DATABASE}.${PARTLY} TO '${READER.user}'@'%'`,
  );
  await root.end();
  cfg = writeTestConfig(`[extract]\nexclude = ["course_structures", "${ABSENT}"]\n`, {
    database: DATABASE,
    user: READER.user,
    password: READER.password,
  });
});

afterAll(async () => {
  if (skip) return;
  if (cfg) rmSync(cfg.dir, { recursive: true, force: true });
  const root = await rootConnection();
  await root.query(`DROP USER IF EXISTS '${READER.user}'@'%'; DROP DATABASE IF EXISTS ${DATABASE}`);
  await root.end();
});

describe.skipIf(skip)("a preset table or column hidden by missing privileges", () => {
  test("run fails both tables, naming the privilege, instead of skipping one and emptying the other", async () => {
    const result = await runPanorama(["--config", cfg.file, "--json", "run"]);
    expect(result.code).toBe(1);
    const errors = result.stderr.split("\n").filter((l) => l.includes('"level":"error"'));
    const denied = errors.find((l) => l.includes(`"table":"${DENIED}"`));
    expect(denied).toContain(`${READER.user} may not SELECT it`);
    expect(denied).toContain(`GRANT SELECT ON ${DATABASE}.* TO '${READER.user}'`);
    const partly = errors.find((l) => l.includes(`"table":"${PARTLY}"`));
    expect(partly).toContain(`${READER.user} may not SELECT a column of it`);
    expect(partly).toContain("percent_grade");
    expect(result.stderr).not.toContain(`${DENIED}: not in ${DATABASE}`);
    expect(result.stderr).not.toContain("percent_grade not in");
    const status = await runPanorama(["--config", cfg.file, "status", "--wide"]);
    expect(status.stdout).not.toMatch(new RegExp(`${DENIED}\\s.*absent`));
  });

  test("verify: an error for the hidden table, not 'absent'", async () => {
    const result = await runPanorama(["--config", cfg.file, "verify"]);
    expect(result.code).toBe(1);
    expect(result.stdout).toContain(`${DENIED}: not verified: ${READER.user} may not SELECT it`);
    expect(result.stdout).not.toContain("has no such table");
  });

  test("doctor: ✗ MySQL SELECT naming both tables and the GRANT", async () => {
    const results: CheckResult[] = [];
    for await (const r of runChecks({ configPath: cfg.file, env: cleanEnv() })) results.push(r);
    const select = results.find((r) => r.check === "MySQL SELECT")!;
    expect(select.ok).toBe(false);
    expect(select.detail).toContain(`${DENIED} (ER_TABLEACCESS_DENIED_ERROR`);
    expect(select.detail).toContain(`${PARTLY} (ER_COLUMNACCESS_DENIED_ERROR`);
    expect(select.detail).not.toContain("lacks");
    expect(select.hint).toContain(`GRANT SELECT ON ${DATABASE}.* TO '${READER.user}'`);
  });

  test("a table the release lacks is still skipped for a user with SELECT on the whole database", async () => {
    const env = testEnv().mysql;
    const own = writeTestConfig('[extract]\nexclude = ["course_structures"]\n', { database: DATABASE });
    try {
      const result = await runPanorama(["--config", own.file, "--json", "run", "--tables", ABSENT]);
      expect(result.code).toBe(0);
      expect(result.stderr).toContain(`${ABSENT}: not in ${DATABASE}: skipped`);
      expect(env.user).not.toBe(READER.user);
    } finally {
      rmSync(own.dir, { recursive: true, force: true });
    }
  });
});
