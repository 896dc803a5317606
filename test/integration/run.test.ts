// `run` and `upload` with the local datalake target, against the real MariaDB: the lock, crash
// safety under SIGKILL, unchanged files not sent again, a failing target keeping the spool.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type mysql from "mysql2/promise";
import { CLI, runPanorama } from "../support/cli.ts";
import { skipWithoutTestEnv, testEnv } from "../support/env.ts";
import { fileTree } from "../support/file-tree.ts";
import { testConnection, writeTestConfig } from "../support/mysql.ts";

const skip = skipWithoutTestEnv();
let db: mysql.Connection;

const TABLES = `[extract]
preset = "none"

[[tables]]
name = "run_events"
partition_fields = ["course_id"]
incremental = { timestamp_field = "modified", overlap = "1 hour" }

[[tables]]
name = "run_users"
`;

beforeAll(async () => {
  if (skip) return;
  db = await testConnection(testEnv().mysql.scratchDatabase);
  await db.query(`DROP TABLE IF EXISTS run_events; DROP TABLE IF EXISTS run_users; DROP VIEW IF EXISTS run_slow;
    CREATE TABLE run_events (id INT PRIMARY KEY, course_id VARCHAR(100), payload TEXT, modified DATETIME(6), KEY (course_id));
    INSERT INTO run_events SELECT seq, CONCAT('course-v1:Org+C', seq % 40, '+2024'), REPEAT(CONCAT('"x",', seq), 20),
      '2024-01-01 00:00:00' + INTERVAL seq SECOND FROM seq_1_to_40000;
    CREATE TABLE run_users (id INT PRIMARY KEY, username VARCHAR(100));
    INSERT INTO run_users SELECT seq, CONCAT('user', seq) FROM seq_1_to_20000;
    CREATE VIEW run_slow AS SELECT id, username FROM run_users WHERE SLEEP(0.001) = 0`);
});

afterAll(async () => {
  await db?.end();
});

describe.skipIf(skip)("run with a local datalake", () => {
  test("extracts and uploads every table; a second run sends nothing unchanged", async () => {
    const cfg = writeTestConfig(TABLES);
    const first = await runPanorama(["--config", cfg.file, "run"]);
    expect(first.code).toBe(0);
    const files = fileTree(cfg.datalake);
    expect(files.size).toBe(41);
    expect(files.has("openedx/run_users/lms=lms.example.com/run_users.csv")).toBe(true);
    expect(
      files.has(
        "openedx/run_events/lms=lms.example.com/course_id=course-v1%3AOrg%2BC7%2B2024/run_events.csv",
      ),
    ).toBe(true);
    expect(fileTree(join(cfg.stateDir, "spool")).size).toBe(0);
    const summary = first.stderr
      .split("\n")
      .filter(Boolean)
      .map((l) => JSON.parse(l))
      .find((l) => l.table === "run_events" && l.message.endsWith("done"));
    expect(summary).toMatchObject({ rows: 40000, objects: 40, skipped: 0 });

    const second = await runPanorama(["--config", cfg.file, "run", "--full"]);
    expect(second.code).toBe(0);
    const again = second.stderr
      .split("\n")
      .filter(Boolean)
      .map((l) => JSON.parse(l))
      .find((l) => l.table === "run_events" && l.message.endsWith("done"));
    expect(again).toMatchObject({ rows: 40000, objects: 0, skipped: 40 });
    expect(fileTree(cfg.datalake)).toEqual(files);
  });

  test("--dry-run lists the spool files it would store and the files it would extract, and writes nothing", async () => {
    const cfg = writeTestConfig(`${TABLES}\n[[tables]]\nname = "run_missing"\n`);
    // A leftover in the spool: run_users extracted, not uploaded.
    const extract = await runPanorama(["--config", cfg.file, "extract", "--tables", "run_users"]);
    expect(extract.code).toBe(0);
    const state = fileTree(cfg.stateDir);
    expect(state.has("spool/openedx/run_users/lms=lms.example.com/run_users.csv")).toBe(true);

    // run_users is unchanged since that extraction: a run stores the leftover and does not read it.
    const users = "openedx/run_users/lms=lms.example.com/run_users.csv";
    const quiet = await runPanorama(["--config", cfg.file, "run", "--dry-run"]);
    expect(quiet.code).toBe(1);
    const planned = quiet.stdout.trim().split("\n");
    expect(planned.filter((l) => l.startsWith("upload\t"))).toHaveLength(1);
    expect(planned.filter((l) => l.startsWith("extract\t"))).toHaveLength(40);
    expect(planned.filter((l) => l.startsWith(`extract\t${users}\t`))).toEqual([]);

    // --full: every table read.
    const dry = await runPanorama(["--config", cfg.file, "run", "--dry-run", "--full"]);
    // The missing table fails the run (exit 1) and is named; the others are still listed.
    expect(dry.code).toBe(1);
    expect(dry.stderr).toContain("run_missing");
    const lines = dry.stdout.trim().split("\n");
    // The leftover's bytes, and the same bytes again from reading and encoding the same rows.
    const leftover = Buffer.byteLength(state.get(`spool/${users}`)!);
    expect(lines.filter((l) => l.startsWith("upload\t"))).toEqual([`upload\t${users}\t${leftover} bytes`]);
    const extracted = lines.filter((l) => l.startsWith("extract\t"));
    expect(extracted).toHaveLength(41);
    expect(extracted).toContain(`extract\t${users}\t20000 rows\t${leftover} bytes`);
    expect(extracted).toContainEqual(
      expect.stringMatching(
        /^extract\topenedx\/run_events\/lms=lms\.example\.com\/course_id=course-v1%3AOrg%2BC7%2B2024\/run_events\.csv\t1000 rows\t\d+ bytes$/,
      ),
    );
    // Nothing written: no datalake, the state directory (spool, watermarks, runs) as it was.
    expect(existsSync(cfg.datalake)).toBe(false);
    expect(fileTree(cfg.stateDir)).toEqual(state);
  });

  test("a second run exits 3 at once while the first holds the lock", async () => {
    const cfg = writeTestConfig(`[extract]\npreset = "none"\n[[tables]]\nname = "run_slow"\n`);
    const first = Bun.spawn([process.execPath, CLI, "--config", cfg.file, "run"], {
      stdout: "ignore",
      stderr: "pipe",
    });
    const lockFile = join(cfg.stateDir, "panorama.lock");
    for (
      let i = 0;
      i < 200 && !(existsSync(lockFile) && readFileSync(lockFile, "utf8").includes("pid"));
      i++
    ) {
      await Bun.sleep(20);
    }
    const started = performance.now();
    const second = await runPanorama(["--config", cfg.file, "run"]);
    expect(second.code).toBe(3);
    expect(second.stderr).toContain("another panorama run holds the lock");
    expect(second.stderr).toContain(`pid ${first.pid}`);
    expect(performance.now() - started).toBeLessThan(5000);
    first.kill("SIGKILL");
    await first.exited;
    // The kernel released the dead holder's lock: the next run takes it over.
    writeFileSync(lockFile, "pid 999999, run, since 2020-01-01T00:00:00.000Z\n");
    writeFileSync(cfg.file, readFileSync(cfg.file, "utf8").replace('"run_slow"', '"run_users"'));
    const third = await runPanorama(["--config", cfg.file, "run"]);
    expect(third.code).toBe(0);
  }, 60_000);

  test("killed with SIGKILL at random moments, then one clean run: the same datalake as an uninterrupted run", async () => {
    const reference = writeTestConfig(TABLES);
    expect((await runPanorama(["--config", reference.file, "run"])).code).toBe(0);
    const expected = fileTree(reference.datalake);

    const cfg = writeTestConfig(TABLES);
    let seed = 42;
    const random = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    for (let i = 0; i < 20; i++) {
      const child = Bun.spawn([process.execPath, CLI, "--config", cfg.file, "run"], {
        stdout: "ignore",
        stderr: "ignore",
      });
      await Bun.sleep(Math.floor(random() * 900));
      child.kill("SIGKILL");
      await child.exited;
      // Whatever the moment, no partial object is ever visible in the datalake.
      for (const name of fileTree(cfg.datalake).keys()) expect(name).not.toContain(".partial-");
    }
    const clean = await runPanorama(["--config", cfg.file, "run"]);
    expect(clean.code).toBe(0);
    expect(fileTree(cfg.datalake)).toEqual(expected);
    expect([...fileTree(join(cfg.stateDir, "spool")).keys()]).toEqual([]);
  }, 120_000);

  test("a failed upload is reported under the table of the file that failed; the tables it stopped say so", async () => {
    const cfg = writeTestConfig(`[extract]
preset = "none"

[[tables]]
name = "run_users"

[[tables]]
name = "run_events"
partition_fields = ["course_id"]
`);
    writeFileSync(cfg.datalake, "in the way");
    const run = await runPanorama(["--config", cfg.file, "run"]);
    expect(run.code).toBe(1);
    const usersKey = "openedx/run_users/lms=lms.example.com/run_users.csv";
    expect(run.stderr).toContain("2 of 2 tables failed (run_users, run_events)");
    const status = JSON.parse((await runPanorama(["--config", cfg.file, "status", "--json"])).stdout);
    const lastRun = (table: string) =>
      status.tables.find((t: { table: string }) => t.table === table).last_run as Record<string, unknown>;
    // The reason goes with run_users, whose file failed; run_events was stopped by it, not failed
    // itself, and is not blamed for run_users' file.
    expect(lastRun("run_users")).toMatchObject({ command: "run", rows: 20000, objects: 0 });
    expect(lastRun("run_users").error).toStartWith(`upload of ${usersKey} failed: `);
    expect(lastRun("run_events")).toMatchObject({ objects: 0, bytes: 0 });
    expect(lastRun("run_events").error).toMatch(
      /^(stopped|not extracted): the datalake could not be written$/,
    );
  });

  test("a target that fails keeps the spool: exit 1, and the next upload sends everything", async () => {
    const cfg = writeTestConfig(`[extract]\npreset = "none"\n[[tables]]\nname = "run_users"\n`);
    // A plain file where the datalake directory must be makes every store fail.
    writeFileSync(cfg.datalake, "in the way");
    const failed = await runPanorama(["--config", cfg.file, "run"]);
    expect(failed.code).toBe(1);
    expect(failed.stderr).toContain("upload of openedx/run_users/lms=lms.example.com/run_users.csv failed");
    expect(failed.stderr).toContain("kept in the spool");
    const status = await runPanorama(["--config", cfg.file, "status", "--json"]);
    expect(status.code).toBe(0);
    const users = JSON.parse(status.stdout).tables.find((t: { table: string }) => t.table === "run_users");
    expect(users).toMatchObject({ spooled_files: 1, last_run: { command: "run", rows: 20000, objects: 0 } });
    const text = await runPanorama(["--config", cfg.file, "status"]);
    expect(text.stdout).toMatch(/run_users +\d\d-\d\d \d\d:\d\d +20,000 +0 /);
    expect(text.stdout).toContain("1 file(s)");
    expect(
      fileTree(join(cfg.stateDir, "spool")).has("openedx/run_users/lms=lms.example.com/run_users.csv"),
    ).toBe(true);

    rmSync(cfg.datalake);
    const dry = await runPanorama(["--config", cfg.file, "upload", "--dry-run"]);
    expect(dry.code).toBe(0);
    expect(dry.stdout).toContain("upload\topenedx/run_users/lms=lms.example.com/run_users.csv");
    expect(existsSync(cfg.datalake)).toBe(false);

    const upload = await runPanorama(["--config", cfg.file, "upload"]);
    expect(upload.code).toBe(0);
    expect(
      fileTree(cfg.datalake).get("openedx/run_users/lms=lms.example.com/run_users.csv")?.split("\r\n").length,
    ).toBe(20002);
    expect(fileTree(join(cfg.stateDir, "spool")).size).toBe(0);
  });

  test("writing x.csv removes x.csv.gz of the same partition, and the reverse", async () => {
    const cfg = writeTestConfig(`[extract]\npreset = "none"\n[[tables]]\nname = "run_users"\n`);
    const key = "openedx/run_users/lms=lms.example.com/run_users.csv";
    expect((await runPanorama(["--config", cfg.file, "run"])).code).toBe(0);
    expect([...fileTree(cfg.datalake).keys()].filter((k) => k.endsWith(".csv") || k.endsWith(".gz"))).toEqual(
      [key],
    );
    // Several spool chunks' worth (the writer reuses its buffers): the gzip object must hold it all.
    const plain = readFileSync(join(cfg.datalake, key));
    expect(plain.length).toBeGreaterThan(256 * 1024);
    const gzipConfig = readFileSync(cfg.file, "utf8").replace(
      'target = "local"',
      'target = "local"\ncompression = "gzip"',
    );
    writeFileSync(cfg.file, gzipConfig);
    expect((await runPanorama(["--config", cfg.file, "run"])).code).toBe(0);
    const files = [...fileTree(cfg.datalake).keys()].filter((k) => k.endsWith(".csv") || k.endsWith(".gz"));
    expect(files).toEqual([`${key}.gz`]);
    const gz = Bun.gunzipSync(readFileSync(join(cfg.datalake, `${key}.gz`)));
    expect(new TextDecoder().decode(gz).startsWith("id,username\r\n1,user1\r\n")).toBe(true);
    expect(Buffer.from(gz).equals(plain)).toBe(true);

    // Back to plain, with the state of what was uploaded lost: the .csv.gz goes all the same.
    writeFileSync(cfg.file, gzipConfig.replace('\ncompression = "gzip"', ""));
    rmSync(join(cfg.stateDir, "uploaded.json"));
    expect((await runPanorama(["--config", cfg.file, "run"])).code).toBe(0);
    const back = [...fileTree(cfg.datalake).keys()].filter((k) => k.endsWith(".csv") || k.endsWith(".gz"));
    expect(back).toEqual([key]);
    expect(readFileSync(join(cfg.datalake, key)).equals(plain)).toBe(true);
  });
});
