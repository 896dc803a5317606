// A preset table or column the MySQL user may not SELECT is hidden by information_schema, which
// lists only what the user holds a privilege on: it must not pass for one this Open edX release
// lacks (skipped, or written empty, every run without a word of the missing GRANT). run, verify
// and doctor name it and the GRANT; a table the release really lacks is still skipped.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { type CheckResult, runChecks } from "../../src/doctor.ts";
import { cleanEnv, runPanorama } from "../support/cli.ts";
import { skipWithoutTestEnv, testEnv } from "../support/env.ts";
import {
  dropTestDatabase,
  freshDatabase,
  generatedDatabase,
  limitedReader,
  rootConnection,
  testConnection,
  writeTestConfig,
} from "../support/mysql.ts";

const skip = skipWithoutTestEnv();
setDefaultTimeout(120_000);
const DATABASE = "panorama_hidden";
// An account for this host only, as a native install's often is: the GRANT in the hints must name
// it, not 'hidden_reader' (that is 'hidden_reader'@'%', another account).
const READER = { user: "hidden_reader", password: "hidden-reader-pw", host: "127.0.0.1" };
const ACCOUNT = `'${READER.user}'@'${READER.host}'`;
// Not granted at all, and granted without one of its preset columns.
const DENIED = "certificates_generatedcertificate";
const PARTLY = "grades_persistentcoursegrade";
// A preset table this "release" lacks, for a reader with SELECT on the whole database.
const ABSENT = "submissions_teamsubmission";

let cfg: ReturnType<typeof writeTestConfig>;

beforeAll(async () => {
  if (skip) return;
  await generatedDatabase(DATABASE, { users: 20, courses: 2, enrollments: 30, studentmodule: 60, seed: 11 });
  const db = await testConnection(DATABASE);
  await db.query(`DROP TABLE ${ABSENT}`);
  await db.end();
  await limitedReader(DATABASE, READER, {
    denied: [DENIED],
    partly: { table: PARTLY, without: ["percent_grade"] },
  });
  cfg = writeTestConfig(`[extract]\nexclude = ["course_structures", "${ABSENT}"]\n`, {
    database: DATABASE,
    user: READER.user,
    password: READER.password,
  });
});

afterAll(async () => {
  if (skip) return;
  if (cfg) rmSync(cfg.dir, { recursive: true, force: true });
  await dropTestDatabase(DATABASE, [ACCOUNT]);
});

describe.skipIf(skip)("a preset table or column hidden by missing privileges", () => {
  test("run fails both tables, naming the privilege, instead of skipping one and emptying the other", async () => {
    const result = await runPanorama(["--config", cfg.file, "--json", "run"]);
    expect(result.code).toBe(1);
    const errors = result.stderr.split("\n").filter((l) => l.includes('"level":"error"'));
    const denied = errors.find((l) => l.includes(`"table":"${DENIED}"`));
    expect(denied).toContain(`${READER.user} may not SELECT it`);
    expect(denied).toContain(`GRANT SELECT ON ${DATABASE}.* TO ${ACCOUNT};`);
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
    expect(select.hint).toContain(`GRANT SELECT ON ${DATABASE}.* TO ${ACCOUNT}`);
  });

  test("the GRANT the hint gives, run as it is, lets the next run read both tables", async () => {
    const results: CheckResult[] = [];
    for await (const r of runChecks({ configPath: cfg.file, env: cleanEnv() })) results.push(r);
    const grant = /GRANT SELECT ON \S+ TO '[^']+'@'[^']+'/.exec(
      results.find((r) => r.check === "MySQL SELECT")!.hint!,
    )?.[0];
    expect(grant).toBe(`GRANT SELECT ON ${DATABASE}.* TO ${ACCOUNT}`);
    const root = await rootConnection();
    try {
      await root.query(grant!);
    } finally {
      await root.end();
    }
    const result = await runPanorama(["--config", cfg.file, "run", "--tables", `${DENIED},${PARTLY}`]);
    expect(result.stderr).not.toContain("may not SELECT");
    expect(result.code).toBe(0);
  });

  test("a preset table an upgrade dropped after its objects were stored: verify lists them stale, --repair deletes them", async () => {
    // Personal data (user_email): what a retired learner had must not outlive the table.
    const DROPPED = "enterprise_pendingenterprisecustomeruser";
    const own = writeTestConfig('[extract]\nexclude = ["course_structures"]\n', { database: DATABASE });
    try {
      expect((await runPanorama(["--config", own.file, "run", "--tables", DROPPED])).code).toBe(0);
      const db = await testConnection(DATABASE);
      await db.query(`DROP TABLE ${DROPPED}`);
      await db.end();
      const key = `openedx/${DROPPED}/lms=lms.example.com/${DROPPED}.csv`;
      const found = await runPanorama(["--config", own.file, "verify", "--tables", DROPPED]);
      expect(found.code).toBe(1);
      expect(found.stdout).toContain(
        `✗ ${DROPPED}: 1 stale: 1 object(s) of a table MySQL no longer has (dropped by an upgrade?); --repair deletes them`,
      );
      expect(found.stdout).toContain(`stale\t${key}\tno rows in MySQL`);
      const repaired = await runPanorama(["--config", own.file, "verify", "--repair", "--tables", DROPPED]);
      expect(repaired.code).toBe(0);
      expect(existsSync(join(own.datalake, key))).toBe(false);
      const after = await runPanorama(["--config", own.file, "verify", "--tables", DROPPED]);
      expect(after.code).toBe(0);
      expect(after.stdout).toContain(`- ${DROPPED}: not verified: absent: ${DATABASE} has no such table`);

      // A database that is not the LMS's (no auth_user), asked about one table: its objects stay.
      const TABLE = "student_courseenrollment";
      expect((await runPanorama(["--config", own.file, "run", "--tables", TABLE])).code).toBe(0);
      const other = "panorama_not_lms";
      await freshDatabase(other);
      const wrong = writeTestConfig('[extract]\nexclude = ["course_structures"]\n', { database: other });
      try {
        writeFileSync(wrong.file, readFileSync(wrong.file, "utf8").replace(wrong.datalake, own.datalake));
        const tableKey = `openedx/${TABLE}/lms=lms.example.com/${TABLE}.csv`;
        const kept = await runPanorama(["--config", wrong.file, "verify", "--repair", "--tables", TABLE]);
        expect(kept.stdout).toContain(`- ${TABLE}: not verified: absent: ${other} has no such table`);
        expect(existsSync(join(own.datalake, tableKey))).toBe(true);
      } finally {
        rmSync(wrong.dir, { recursive: true, force: true });
        await dropTestDatabase(other);
      }
    } finally {
      rmSync(own.dir, { recursive: true, force: true });
    }
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
