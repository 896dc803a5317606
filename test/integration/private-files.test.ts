// DESIGN §9: files holding extracted data (spool, local datalake, state) are created 0600 in
// 0700 directories whatever the umask, so learner data is not readable by other users.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { appendFileSync, copyFileSync, lstatSync, readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import type mysql from "mysql2/promise";
import { CLI, ROOT } from "../support/cli.ts";
import { skipWithoutTestEnv, testEnv } from "../support/env.ts";
import { testConnection, writeTestConfig } from "../support/mysql.ts";

const skip = skipWithoutTestEnv();
let db: mysql.Connection;
const dirs: string[] = [];

/** The CLI under `umask 022`, the common default that made these files 0644 in 0755 directories. */
async function underUmask022(args: string[]): Promise<number> {
  const child = Bun.spawn(["sh", "-c", 'umask 022 && exec "$@"', "sh", process.execPath, CLI, ...args], {
    cwd: ROOT,
    stdout: "ignore",
    stderr: "ignore",
  });
  return child.exited;
}

/** Every file and directory under `dir` (itself included) whose mode lets group or others in. */
function readableByOthers(dir: string): string[] {
  const open: string[] = [];
  const visit = (path: string) => {
    const stat = lstatSync(path);
    if ((stat.mode & 0o077) !== 0) open.push(`${path} ${(stat.mode & 0o777).toString(8)}`);
    if (stat.isDirectory()) for (const name of readdirSync(path)) visit(join(path, name));
  };
  visit(dir);
  return open;
}

function count(dir: string): number {
  return (readdirSync(dir, { recursive: true }) as string[]).length;
}

beforeAll(async () => {
  if (skip) return;
  db = await testConnection(testEnv().mysql.scratchDatabase);
  await db.query(`DROP TABLE IF EXISTS private_people; CREATE TABLE private_people (id INT PRIMARY KEY,
      course_id VARCHAR(50), email VARCHAR(100));
    INSERT INTO private_people SELECT seq, CONCAT('course-v1:Org+C', seq % 3, '+1'), CONCAT('learner', seq, '@example.com')
      FROM seq_1_to_300`);
});

afterAll(async () => {
  if (skip) return;
  await db.query("DROP TABLE IF EXISTS private_people");
  await db.end();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

describe.skipIf(skip)("private files under umask 022", () => {
  test("the spool, the local datalake, the shipped logs and the state are 0600 in 0700 directories", async () => {
    const cfg = writeTestConfig(`[extract]
preset = "none"

[[tables]]
name = "private_people"
partition_fields = ["course_id"]
`);
    dirs.push(cfg.dir);
    const log = join(cfg.dir, "tracking.log");
    copyFileSync(join(ROOT, "test/fixtures/tracking/events.jsonl"), log);
    appendFileSync(cfg.file, `\n[logs]\npaths = ["${log}"]\n`);

    expect(await underUmask022(["--config", cfg.file, "extract"])).toBe(0);
    expect(count(join(cfg.stateDir, "spool"))).toBeGreaterThan(3);
    expect(readableByOthers(cfg.stateDir)).toEqual([]);

    expect(await underUmask022(["--config", cfg.file, "run"])).toBe(0);
    expect(await underUmask022(["--config", cfg.file, "log-ship", "--once"])).toBe(0);
    expect(count(join(cfg.datalake, "openedx", "private_people"))).toBeGreaterThan(3);
    expect(readdirSync(cfg.datalake, { recursive: true }).some((n) => String(n).includes("tracking"))).toBe(
      true,
    );
    expect(readableByOthers(cfg.datalake)).toEqual([]);
    expect(readableByOthers(cfg.stateDir)).toEqual([]);
  });
});
