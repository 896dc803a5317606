// DESIGN §9: files holding extracted data (spool, local datalake, state) are created 0600 in
// 0700 directories whatever the umask, so learner data is not readable by other users.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import {
  appendFileSync,
  chmodSync,
  copyFileSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { dirname, join } from "node:path";
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

/** A configuration extracting private_people by course, in a directory removed at the end. */
function peopleConfig() {
  const cfg = writeTestConfig(`[extract]
preset = "none"

[[tables]]
name = "private_people"
partition_fields = ["course_id"]
`);
  dirs.push(cfg.dir);
  return cfg;
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
    const cfg = peopleConfig();
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

  test("a state directory and a local datalake an older version left open (0755, files 0644) are made 0700, with a warning", async () => {
    const cfg = peopleConfig();
    const spoolFile = join(cfg.stateDir, "spool", "left-by-an-older-version.csv");
    const lakeFile = join(cfg.datalake, "openedx", "old.csv");
    for (const [dir, file] of [
      [cfg.stateDir, spoolFile],
      [cfg.datalake, lakeFile],
    ] as const) {
      mkdirSync(dirname(file), { recursive: true, mode: 0o755 });
      chmodSync(dir, 0o755);
      writeFileSync(file, "learner@example.com\n", { mode: 0o644 });
    }

    const run = Bun.spawn(
      ["sh", "-c", 'umask 022 && exec "$@"', "sh", process.execPath, CLI, "--config", cfg.file, "run"],
      {
        cwd: ROOT,
        stdout: "ignore",
        stderr: "pipe",
      },
    );
    const stderr = await new Response(run.stderr).text();
    expect(await run.exited).toBe(0);
    for (const dir of [cfg.stateDir, cfg.datalake]) {
      expect(lstatSync(dir).mode & 0o777).toBe(0o700);
      expect(stderr).toContain(`${dir} was open to other users (mode 755): made 0700`);
    }
    // Once private, said no more.
    const again = Bun.spawn([process.execPath, CLI, "--config", cfg.file, "run"], {
      cwd: ROOT,
      stdout: "ignore",
      stderr: "pipe",
    });
    const stderrAgain = await new Response(again.stderr).text();
    expect(await again.exited).toBe(0);
    expect(stderrAgain).not.toContain("was open to other users");
  });
});
