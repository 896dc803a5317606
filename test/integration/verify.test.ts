// Deletions and reconciliation (DESIGN §7a) with a local datalake, against the real MariaDB: a
// full read deletes what it did not produce, `full_every` forces one, and `verify` finds and
// `--repair` mends missing, changed and stale objects, leaving the datalake byte for byte equal
// to a clean extraction.
import { afterAll, beforeAll, beforeEach, describe, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import type mysql from "mysql2/promise";
import { acquireLock } from "../../src/state/lock.ts";
import { CLI, runPanorama } from "../support/cli.ts";
import { skipWithoutTestEnv, testEnv } from "../support/env.ts";
import { fileTree } from "../support/file-tree.ts";
import { testConnection, writeTestConfig } from "../support/mysql.ts";

const skip = skipWithoutTestEnv();
// Each test runs the CLI several times: seconds each on a loaded machine.
setDefaultTimeout(60_000);
let db: mysql.Connection;
const dirs: string[] = [];

const TABLES = `[extract]
preset = "none"

[[tables]]
name = "verify_events"
partition_fields = ["course_id"]
incremental = { timestamp_field = "modified", overlap = "1 hour" }

[[tables]]
name = "verify_users"
`;

const PREFIX = "openedx/verify_events/lms=lms.example.com";
const keyOf = (course: number) => `${PREFIX}/course_id=course-v1%3AOrg%2BC${course}%2B2024/verify_events.csv`;

function config() {
  const cfg = writeTestConfig(TABLES);
  dirs.push(cfg.dir);
  return cfg;
}

/**
 * Runs panorama `args`, freezes it (SIGSTOP) the moment it says `table` is done, calls `frozen`,
 * then kills it (SIGKILL).
 */
async function killAtDone(file: string, table: string, args: string[], frozen = () => {}): Promise<void> {
  const child = Bun.spawn([process.execPath, CLI, "--config", file, "--json", ...args], {
    stdout: "ignore",
    stderr: "pipe",
  });
  const line = `"message":"${table}: done"`;
  let said = "";
  for await (const chunk of child.stderr) {
    said += new TextDecoder().decode(chunk);
    if (said.includes(line)) {
      child.kill("SIGSTOP");
      break;
    }
  }
  expect(said).toContain(line);
  frozen();
  child.kill("SIGKILL");
  await child.exited;
}

async function panorama(file: string, ...args: string[]) {
  return runPanorama(["--config", file, ...args]);
}

/** The datalake a clean, full extraction of MySQL as it is now writes. */
async function cleanExtraction(): Promise<Map<string, string>> {
  const clean = config();
  expect((await panorama(clean.file, "run", "--full")).code).toBe(0);
  return fileTree(clean.datalake);
}

interface VerifyJson {
  ok: boolean;
  found: {
    tables: { table: string; findings: { kind: string; key: string }[] }[];
    unconfigured: { table: string; objects: number; bytes: number; location: string }[];
  };
  after: { ok: boolean } | null;
}

async function verifyJson(file: string, ...args: string[]): Promise<{ code: number; report: VerifyJson }> {
  const result = await panorama(file, "verify", "--json", ...args);
  return { code: result.code, report: JSON.parse(result.stdout) as VerifyJson };
}

function findings(report: VerifyJson): string[] {
  return report.found.tables.flatMap((t) => t.findings.map((f) => `${f.kind} ${f.key}`)).sort();
}

beforeAll(async () => {
  if (skip) return;
  db = await testConnection(testEnv().mysql.scratchDatabase);
});

beforeEach(async () => {
  if (skip) return;
  await db.query(`DROP TABLE IF EXISTS verify_events; DROP TABLE IF EXISTS verify_users;
    CREATE TABLE verify_events (id INT PRIMARY KEY, course_id VARCHAR(100), grade INT, modified DATETIME(6), KEY (course_id));
    INSERT INTO verify_events SELECT seq, CONCAT('course-v1:Org+C', seq % 5, '+2024'), seq % 7,
      '2024-01-01 00:00:00' + INTERVAL seq HOUR FROM seq_1_to_500;
    CREATE TABLE verify_users (id INT PRIMARY KEY, username VARCHAR(100));
    INSERT INTO verify_users SELECT seq, CONCAT('user', seq) FROM seq_1_to_50`);
});

afterAll(async () => {
  if (skip) return;
  await db.query("DROP TABLE IF EXISTS verify_events; DROP TABLE IF EXISTS verify_users");
  await db.end();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

describe.skipIf(skip)("deletions on full reads", () => {
  test("a course deleted in MySQL: its object is gone after the next full read, not after an incremental one", async () => {
    const cfg = config();
    expect((await panorama(cfg.file, "run")).code).toBe(0);
    expect(fileTree(cfg.datalake).has(keyOf(3))).toBe(true);
    await db.query("DELETE FROM verify_events WHERE course_id = 'course-v1:Org+C3+2024'");

    expect((await panorama(cfg.file, "run")).code).toBe(0);
    expect(fileTree(cfg.datalake).has(keyOf(3))).toBe(true);

    // A dry run says what the full read would delete, and deletes nothing.
    const dry = await panorama(cfg.file, "run", "--full", "--dry-run");
    expect(dry.code).toBe(0);
    expect(dry.stdout.split("\n").filter((l) => l.startsWith("delete\t"))).toEqual([`delete\t${keyOf(3)}`]);
    expect(fileTree(cfg.datalake).has(keyOf(3))).toBe(true);

    const full = await panorama(cfg.file, "run", "--full");
    expect(full.code).toBe(0);
    expect(full.stderr).toContain("verify_events: 1 stale object(s) deleted");
    expect(fileTree(cfg.datalake).has(keyOf(3))).toBe(false);
    expect(existsSync(join(cfg.datalake, dirname(keyOf(3))))).toBe(false);
    expect(fileTree(cfg.datalake)).toEqual(await cleanExtraction());
  });

  test("an unpartitioned table once partitioned: the objects of its earlier partitions go with its next read, and verify agrees", async () => {
    const cfg = config();
    expect((await panorama(cfg.file, "run")).code).toBe(0);
    // What a run wrote while verify_users had partition_fields = ["org"]: under the table's
    // partition now, with rows of its own; verify calls it stale.
    const earlier = "openedx/verify_users/lms=lms.example.com/org=Org/verify_users.csv";
    mkdirSync(dirname(join(cfg.datalake, earlier)), { recursive: true });
    writeFileSync(join(cfg.datalake, earlier), "id,username\r\n1,user1\r\n");
    await db.query("UPDATE verify_users SET username = 'renamed' WHERE id = 7");

    const dry = await panorama(cfg.file, "run", "--dry-run");
    expect(dry.stdout.split("\n").filter((l) => l.startsWith("delete\t"))).toEqual([`delete\t${earlier}`]);
    const run = await panorama(cfg.file, "run");
    expect(run.code).toBe(0);
    expect(run.stderr).toContain("verify_users: 1 stale object(s) deleted");
    expect(fileTree(cfg.datalake)).toEqual(await cleanExtraction());
    expect((await panorama(cfg.file, "verify")).code).toBe(0);
  });

  test("run --full killed between its read and its deletions: the next run reads in full and deletes the stale objects, the data changed between kills and back", async () => {
    const cfg = config();
    expect((await panorama(cfg.file, "run")).code).toBe(0);
    const deleteCourse = (n: number) =>
      `DELETE FROM verify_events WHERE course_id = 'course-v1:Org+C${n}+2024'`;
    const changes: [string, number | null][] = [
      [deleteCourse(3), 3],
      // Back to an earlier state: course 3 again, then another course gone, then 3 again.
      [
        `INSERT INTO verify_events SELECT seq, 'course-v1:Org+C3+2024', seq % 7, '2024-01-01' + INTERVAL seq HOUR FROM seq_1_to_500 WHERE seq % 5 = 3`,
        null,
      ],
      [deleteCourse(1), 1],
      [deleteCourse(3), 3],
    ];
    for (const [change, gone] of changes) {
      await db.query(change);
      // Frozen the moment it says the table is read, before it deletes what the read did not
      // produce; then killed.
      await killAtDone(cfg.file, "verify_events", ["run", "--full"], () => {
        if (gone !== null) expect(existsSync(join(cfg.datalake, keyOf(gone)))).toBe(true);
      });
      // A plain run: no full read is due by full_every, but the one asked for is owed.
      const next = await panorama(cfg.file, "run");
      expect(next.code).toBe(0);
      expect(fileTree(cfg.datalake)).toEqual(await cleanExtraction());
    }
  });

  // Seen in the log the daily cron line appends to (state_dir/logs/panorama-verify.log): the
  // report indented over 280 lines among the JSON log lines, which a line-by-line reader rejects.
  test("as the cron line runs it (--json verify --repair, output to a file): the report is one line", async () => {
    const cfg = config();
    expect((await panorama(cfg.file, "run")).code).toBe(0);
    const result = await panorama(cfg.file, "--json", "verify", "--repair");
    expect(result.code).toBe(0);
    const lines = `${result.stdout}${result.stderr}`.trimEnd().split("\n");
    expect(result.stdout.trimEnd().split("\n")).toHaveLength(1);
    for (const line of lines) expect(() => JSON.parse(line)).not.toThrow();
    expect((JSON.parse(result.stdout) as VerifyJson).ok).toBe(true);
  });

  test("run killed once a table is stored, before the upload state is saved: the next run stores it again, and verify agrees", async () => {
    const cfg = config();
    expect((await panorama(cfg.file, "run")).code).toBe(0);
    // verify_users has no timestamp: the probe says whether it changed, and it is saved with the
    // extraction, before the upload.
    await db.query("UPDATE verify_users SET username = CONCAT(username, '_x') WHERE id % 4 = 0");
    await killAtDone(cfg.file, "verify_users", ["run"]);
    expect((await panorama(cfg.file, "run")).code).toBe(0);
    const { code, report } = await verifyJson(cfg.file);
    expect(findings(report)).toEqual([]);
    expect(code).toBe(0);
    expect(fileTree(cfg.datalake)).toEqual(await cleanExtraction());
  });

  test("rows deleted inside a partition without a timestamp change reach the datalake once full_every has passed", async () => {
    const cfg = config();
    expect((await panorama(cfg.file, "run")).code).toBe(0);
    await db.query("DELETE FROM verify_events WHERE course_id = 'course-v1:Org+C2+2024' AND id < 100");
    const before = fileTree(cfg.datalake);

    // Within full_every: the incremental run cannot see the deletion.
    expect((await panorama(cfg.file, "run")).code).toBe(0);
    expect(fileTree(cfg.datalake)).toEqual(before);

    // The clock moves 25 hours on: the last full read is older than full_every (24h).
    const fullReads = join(cfg.stateDir, "full-reads.json");
    const recorded = JSON.parse(readFileSync(fullReads, "utf8")) as Record<string, string>;
    expect(Object.keys(recorded)).toEqual(["verify_events"]);
    const past = new Date(Date.parse(recorded.verify_events!) - 25 * 3600 * 1000).toISOString();
    writeFileSync(fullReads, JSON.stringify({ verify_events: past }));
    expect((await panorama(cfg.file, "run")).code).toBe(0);
    expect(fileTree(cfg.datalake)).not.toEqual(before);
    expect(fileTree(cfg.datalake)).toEqual(await cleanExtraction());
    const again = JSON.parse(readFileSync(fullReads, "utf8")) as Record<string, string>;
    expect(Date.parse(again.verify_events!)).toBeGreaterThan(Date.parse(past));
  });

  test("partition values with empty, . or .. pieces between slashes stay inside the datalake, each under its own key, and verify agrees", async () => {
    await db.query(`UPDATE verify_events SET course_id = ELT(1 + id % 5, 'p/../../../../../escape', 'a//b', 'x/.',
      'MITx/6.00x/2012_Fall', 'y/')`);
    const cfg = config();
    expect((await panorama(cfg.file, "run")).code).toBe(0);
    // Taken as a path, p/../../../../../escape leaves the datalake for the directory around it.
    expect(readdirSync(cfg.dir).sort()).toEqual(["datalake", "panorama.toml", "state"]);
    const keys = [...fileTree(cfg.datalake).keys()].filter((k) => k.includes("verify_events/")).sort();
    expect(keys).toEqual([
      `${PREFIX}/course_id=MITx/6.00x/2012_Fall/verify_events.csv`,
      `${PREFIX}/course_id=a%2F%2Fb/verify_events.csv`,
      `${PREFIX}/course_id=p%2F..%2F..%2F..%2F..%2F..%2Fescape/verify_events.csv`,
      `${PREFIX}/course_id=x%2F./verify_events.csv`,
      `${PREFIX}/course_id=y%2F/verify_events.csv`,
    ]);
    expect((await verifyJson(cfg.file)).code).toBe(0);
    // A full read produces the same keys: it deletes none of them as stale.
    const full = await panorama(cfg.file, "run", "--full");
    expect(full.code).toBe(0);
    expect(full.stderr).not.toContain("stale");
    expect([...fileTree(cfg.datalake).keys()].filter((k) => k.includes("verify_events/")).sort()).toEqual(
      keys,
    );
  });

  test('full_every = "0" never forces a full read', async () => {
    const cfg = config();
    writeFileSync(
      cfg.file,
      readFileSync(cfg.file, "utf8").replace('preset = "none"', 'preset = "none"\nfull_every = "0"'),
    );
    expect((await panorama(cfg.file, "run")).code).toBe(0);
    await db.query("DELETE FROM verify_events WHERE course_id = 'course-v1:Org+C2+2024' AND id < 100");
    const before = fileTree(cfg.datalake);
    writeFileSync(
      join(cfg.stateDir, "full-reads.json"),
      JSON.stringify({ verify_events: "2000-01-01T00:00:00.000Z" }),
    );
    expect((await panorama(cfg.file, "run")).code).toBe(0);
    expect(fileTree(cfg.datalake)).toEqual(before);
  });
});

describe.skipIf(skip)("verify and verify --repair", () => {
  test("a datalake that matches: exit 0, every table checked", async () => {
    const cfg = config();
    expect((await panorama(cfg.file, "run")).code).toBe(0);
    const text = await panorama(cfg.file, "verify");
    expect(text.code).toBe(0);
    expect(text.stdout).toContain("✓ verify_events: 5 partition(s), 500 rows, 5 object(s) agree");
    expect(text.stdout).toContain("✓ verify_users: 1 partition(s), 50 rows, 1 object(s) agree");
    const { code, report } = await verifyJson(cfg.file);
    expect(code).toBe(0);
    expect(report.ok).toBe(true);
    expect(findings(report)).toEqual([]);
  });

  test("rows deleted inside a partition: a row-count mismatch, repaired at once", async () => {
    const cfg = config();
    expect((await panorama(cfg.file, "run")).code).toBe(0);
    await db.query("DELETE FROM verify_events WHERE course_id = 'course-v1:Org+C2+2024' AND id < 100");
    const text = await panorama(cfg.file, "verify");
    expect(text.code).toBe(1);
    expect(text.stdout).toContain(`rows\t${keyOf(2)}\tMySQL 80 rows, datalake 100 rows`);
    const repaired = await verifyJson(cfg.file, "--repair");
    expect(findings(repaired.report)).toEqual([`rows ${keyOf(2)}`]);
    expect(repaired.report.after?.ok).toBe(true);
    expect(repaired.code).toBe(0);
    expect(fileTree(cfg.datalake)).toEqual(await cleanExtraction());
  });

  test("a value changed in place, longer, its timestamp left alone: verify agrees (it reads no data); run --full stores it", async () => {
    const cfg = config();
    expect((await panorama(cfg.file, "run")).code).toBe(0);
    // QuerySet.update(): the row count and the timestamp stay, the value's length does not.
    await db.query("UPDATE verify_events SET grade = 123456789 WHERE id = 7");
    expect((await panorama(cfg.file, "verify")).code).toBe(0);
    expect(fileTree(cfg.datalake)).not.toEqual(await cleanExtraction());
    expect((await panorama(cfg.file, "run", "--full")).code).toBe(0);
    expect(fileTree(cfg.datalake)).toEqual(await cleanExtraction());
  });

  test("an object deleted by hand is missing (exit 1); --repair restores it (exit 0 after)", async () => {
    const cfg = config();
    expect((await panorama(cfg.file, "run")).code).toBe(0);
    const clean = fileTree(cfg.datalake);
    rmSync(join(cfg.datalake, keyOf(1)));
    rmSync(join(cfg.datalake, "openedx/verify_users/lms=lms.example.com/verify_users.csv"));
    const { code, report } = await verifyJson(cfg.file);
    expect(code).toBe(1);
    expect(findings(report)).toEqual([
      `missing ${keyOf(1)}`,
      "missing openedx/verify_users/lms=lms.example.com/verify_users.csv",
    ]);
    // The upload state still says they were stored: only the listing can tell.
    expect((await panorama(cfg.file, "run")).code).toBe(0);
    expect(fileTree(cfg.datalake).has(keyOf(1))).toBe(false);
    const repaired = await panorama(cfg.file, "verify", "--repair");
    expect(repaired.code).toBe(0);
    expect(repaired.stdout).toContain("after the repair:");
    expect(fileTree(cfg.datalake)).toEqual(clean);
    expect((await panorama(cfg.file, "verify")).code).toBe(0);
  });

  test("an object replaced by hand with other bytes: a size mismatch, repaired", async () => {
    const cfg = config();
    expect((await panorama(cfg.file, "run")).code).toBe(0);
    const clean = fileTree(cfg.datalake);
    const other = "id,grade,modified\r\n1,2,3\r\n";
    writeFileSync(join(cfg.datalake, keyOf(4)), other);
    const text = await panorama(cfg.file, "verify");
    expect(text.code).toBe(1);
    expect(text.stdout).toMatch(
      new RegExp(
        `size\\t${keyOf(4).replace(/[.+%]/g, "\\$&")}\\tstored \\d+ bytes, datalake ${other.length} bytes`,
      ),
    );
    expect((await panorama(cfg.file, "verify", "--repair")).code).toBe(0);
    expect(fileTree(cfg.datalake)).toEqual(clean);
  });

  test("a stale object (a partition MySQL does not have, the other variant) is reported and removed", async () => {
    const cfg = config();
    expect((await panorama(cfg.file, "run")).code).toBe(0);
    const clean = fileTree(cfg.datalake);
    const stale = `${PREFIX}/course_id=course-v1%3AGone%2BX%2B2020/verify_events.csv`;
    const variant = `${keyOf(0)}.gz`;
    const foreign = "openedx/verify_events/lms=other.example.com/course_id=x/verify_events.csv";
    for (const key of [stale, variant, foreign]) {
      const path = join(cfg.datalake, key);
      await Bun.write(path, "id,grade,modified\r\n");
    }
    const text = await panorama(cfg.file, "verify");
    expect(text.stdout).toContain(`stale\t${stale}\tno rows in MySQL, 19 bytes`);
    expect(text.stdout).toContain(`stale\t${variant}\tthe other compression variant, 19 bytes`);
    const { code, report } = await verifyJson(cfg.file);
    expect(code).toBe(1);
    // Another LMS's objects in the same table are not this host's to judge.
    expect(findings(report)).toEqual([`stale ${stale}`, `stale ${variant}`].sort());
    expect((await panorama(cfg.file, "verify", "--repair")).code).toBe(0);
    const after = fileTree(cfg.datalake);
    expect(after.has(foreign)).toBe(true);
    after.delete(foreign);
    expect(after).toEqual(clean);
  });

  test("--tables limits the check; an unknown table is a usage error", async () => {
    const cfg = config();
    expect((await panorama(cfg.file, "run")).code).toBe(0);
    rmSync(join(cfg.datalake, keyOf(1)));
    expect((await panorama(cfg.file, "verify", "--tables", "verify_users")).code).toBe(0);
    expect((await panorama(cfg.file, "verify", "--tables", "verify_events")).code).toBe(1);
    const unknown = await panorama(cfg.file, "verify", "--tables", "verify_user");
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain("is not a configured table (did you mean");
  });

  test("a table taken out of the configuration: its objects are said and kept, verify still passes; another host's, tracking logs and --tables are left out", async () => {
    const cfg = config();
    expect((await panorama(cfg.file, "run")).code).toBe(0);
    const text = readFileSync(cfg.file, "utf8");
    const without = text.replace('[[tables]]\nname = "verify_users"\n', "");
    expect(without).not.toBe(text);
    writeFileSync(cfg.file, without);
    // Another LMS's table in the same datalake, and this host's tracking logs: not ours to name.
    const others = [
      "openedx/other_table/lms=other.example.com/other_table.csv",
      "openedx/tracking_logs/lms=lms.example.com/year=2026/month=12/day=01/tracking.log-20261201-000000-a.gz",
    ];
    for (const key of others) {
      mkdirSync(dirname(join(cfg.datalake, key)), { recursive: true });
      writeFileSync(join(cfg.datalake, key), "x\n");
    }
    const before = fileTree(cfg.datalake);
    const said = await panorama(cfg.file, "verify", "--repair");
    expect(said.code).toBe(0);
    expect(said.stdout).toContain("- verify_users: not in the configuration, yet 1 object(s) (");
    expect(said.stdout).toContain(
      "of this host's are in the datalake, kept and no longer updated: add it back to [[tables]], or delete openedx/verify_users/lms=lms.example.com/ and its catalog table if it should go",
    );
    expect(said.stdout).not.toContain("other_table");
    expect(said.stdout).not.toContain("tracking_logs");
    expect(fileTree(cfg.datalake)).toEqual(before);
    const { code, report } = await verifyJson(cfg.file);
    expect(code).toBe(0);
    expect(report.found.unconfigured).toEqual([
      {
        table: "verify_users",
        objects: 1,
        bytes: before.get("openedx/verify_users/lms=lms.example.com/verify_users.csv")!.length,
        location: "openedx/verify_users/lms=lms.example.com/",
      },
    ]);
    // Asked for some tables, verify does not look at the others.
    const some = await panorama(cfg.file, "verify", "--tables", "verify_events");
    expect(some.code).toBe(0);
    expect(some.stdout).not.toContain("verify_users");
  });

  test("a table missing in MySQL: reported as not verified, exit 1", async () => {
    const cfg = config();
    expect((await panorama(cfg.file, "run")).code).toBe(0);
    await db.query("DROP TABLE verify_users");
    const text = await panorama(cfg.file, "verify");
    expect(text.code).toBe(1);
    expect(text.stdout).toContain("✗ verify_users: not verified:");
    expect(text.stdout).toContain("✓ verify_events");
    // Its hint once; and not reported as a difference, which nobody found.
    const line = text.stdout.split("\n").find((l) => l.startsWith("✗ verify_users"))!;
    expect(line.split("leave it out with [extract] exclude")).toHaveLength(2);
    expect(text.stdout).toMatch(
      /\n1 table\(s\) could not be verified \(said above\); the others agree with MySQL \(\d+ queries/,
    );
    expect(text.stdout).not.toContain("differs");
  });

  test("MySQL unreachable: exit 1 saying so, with the hint; nothing is recorded as verified", async () => {
    const cfg = config();
    expect((await panorama(cfg.file, "run")).code).toBe(0);
    writeFileSync(cfg.file, readFileSync(cfg.file, "utf8").replace(/^port = \d+$/m, "port = 1"));
    const result = await panorama(cfg.file, "verify");
    expect(result.code).toBe(1);
    expect(result.stderr).toContain("MySQL");
    expect(result.stderr).toContain("127.0.0.1:1");
    // The server is named once: "MySQL <user>@127.0.0.1:1/<db>: cannot connect: ..."
    expect(result.stderr.split("@127.0.0.1:1/")).toHaveLength(2);
    expect(result.stderr).toContain("cannot connect");
    expect(result.stdout).toBe("");
    expect(existsSync(join(cfg.stateDir, "verify.json"))).toBe(false);
  });

  test("verify while a run holds the lock says that its differences may be the run's work", async () => {
    const cfg = config();
    expect((await panorama(cfg.file, "run")).code).toBe(0);
    const lock = acquireLock(cfg.stateDir, "run");
    try {
      const result = await panorama(cfg.file, "verify");
      expect(result.code).toBe(0);
      expect(result.stderr).toContain(
        `a run is in progress (run, pid ${process.pid}): what it is writing may show as differences`,
      );
    } finally {
      lock.release();
    }
    expect((await panorama(cfg.file, "verify")).stderr).not.toContain("in progress");
  });

  test("compression switched, repaired by verify, switched back: the next run puts every object back in its variant", async () => {
    const cfg = config();
    const setCompression = (value: string) =>
      writeFileSync(
        cfg.file,
        readFileSync(cfg.file, "utf8")
          .replace(/^compression = .*$/m, "")
          .replace("[datalake]", `[datalake]\ncompression = "${value}"`),
      );
    setCompression("gzip");
    expect((await panorama(cfg.file, "run")).code).toBe(0);
    const gzipped = fileTree(cfg.datalake);
    setCompression("none");
    expect((await panorama(cfg.file, "verify", "--repair")).code).toBe(0);
    setCompression("gzip");
    expect((await panorama(cfg.file, "run")).code).toBe(0);
    expect([...fileTree(cfg.datalake).keys()].sort()).toEqual([...gzipped.keys()].sort());
    expect((await verifyJson(cfg.file)).code).toBe(0);
  });

  test("status shows the last verify", async () => {
    const cfg = config();
    expect((await panorama(cfg.file, "run")).code).toBe(0);
    expect((await panorama(cfg.file, "status")).stdout).toContain("last verify: never");
    rmSync(join(cfg.datalake, keyOf(1)));
    expect((await panorama(cfg.file, "verify", "--repair")).code).toBe(0);
    const status = await panorama(cfg.file, "status");
    expect(status.stdout).toMatch(
      /last verify: \d{4}-\d\d-\d\d \d\d:\d\d:\d\d, repaired 1 difference\(s\); all agree/,
    );
    const json = JSON.parse((await panorama(cfg.file, "status", "--json")).stdout) as {
      last_verify: { ok: boolean; found: { missing: number } };
    };
    expect(json.last_verify).toMatchObject({ ok: true, found: { missing: 1 } });
  });
});
