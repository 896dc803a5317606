// [metrics] textfile after `run`, `verify` and `log-ship` (DESIGN §12): a file the exposition-format rules
// accept, carrying the figures of the run, each command's families kept when the other writes.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { appendFileSync, copyFileSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import type mysql from "mysql2/promise";
import { acquireLock } from "../../src/state/lock.ts";
import { ROOT, runPanorama } from "../support/cli.ts";
import { skipWithoutTestEnv, testEnv } from "../support/env.ts";
import { testConnection, writeTestConfig } from "../support/mysql.ts";
import { parseExposition, seriesValue } from "../support/prometheus.ts";

const skip = skipWithoutTestEnv();
let db: mysql.Connection;
const dirs: string[] = [];

beforeAll(async () => {
  if (skip) return;
  db = await testConnection(testEnv().mysql.scratchDatabase);
  await db.query(`DROP TABLE IF EXISTS metrics_rows; CREATE TABLE metrics_rows (id INT PRIMARY KEY, course_id VARCHAR(40));
    INSERT INTO metrics_rows SELECT seq, CONCAT('course-v1:Org+C', seq % 4, '+1') FROM seq_1_to_1234`);
});

afterAll(async () => {
  if (skip) return;
  await db.query("DROP TABLE IF EXISTS metrics_rows; DROP TABLE IF EXISTS metrics_gone");
  await db.end();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

describe.skipIf(skip)("[metrics] textfile", () => {
  test("run and log-ship write their figures; a failing run keeps the last success and sets the flags", async () => {
    await db.query(
      "DROP TABLE IF EXISTS metrics_gone; CREATE TABLE metrics_gone (id INT PRIMARY KEY); INSERT INTO metrics_gone VALUES (1), (2)",
    );
    const cfg = writeTestConfig(`[extract]
preset = "none"

[[tables]]
name = "metrics_rows"
partition_fields = ["course_id"]

[[tables]]
name = "metrics_gone"
`);
    dirs.push(cfg.dir);
    const textfile = join(cfg.dir, "textfile_collector", "panorama.prom");
    const log = join(cfg.dir, "tracking.log");
    copyFileSync(join(ROOT, "test/fixtures/tracking/events.jsonl"), log);
    appendFileSync(cfg.file, `\n[logs]\npaths = ["${log}"]\n\n[metrics]\ntextfile = "${textfile}"\n`);

    const before = Math.floor(Date.now() / 1000);
    expect((await runPanorama(["--config", cfg.file, "run"])).code).toBe(0);
    let samples = parseExposition(readFileSync(textfile, "utf8"));
    const table = (name: string, table: string) => seriesValue(samples, name, { table });
    expect(table("panorama_table_rows", "metrics_rows")).toBe(1234);
    expect(table("panorama_table_objects", "metrics_rows")).toBe(4);
    const stored = readdirSync(join(cfg.datalake, "openedx", "metrics_rows", "lms=lms.example.com"), {
      recursive: true,
    })
      .map((name) => join(cfg.datalake, "openedx", "metrics_rows", "lms=lms.example.com", String(name)))
      .filter((path) => statSync(path).isFile())
      .reduce((sum, path) => sum + statSync(path).size, 0);
    expect(table("panorama_table_bytes", "metrics_rows")).toBe(stored);
    expect(table("panorama_table_rows", "metrics_gone")).toBe(2);
    expect(table("panorama_table_error", "metrics_gone")).toBe(0);
    expect(table("panorama_table_seconds", "metrics_rows")).toBeGreaterThanOrEqual(0);
    const success = table("panorama_table_last_success_timestamp_seconds", "metrics_gone")!;
    expect(success).toBeGreaterThanOrEqual(before);
    expect(seriesValue(samples, "panorama_last_exit_code", { command: "run" })).toBe(0);
    expect(seriesValue(samples, "panorama_last_duration_seconds", { command: "run" })).toBeGreaterThan(0);

    expect((await runPanorama(["--config", cfg.file, "log-ship", "--once"])).code).toBe(0);
    samples = parseExposition(readFileSync(textfile, "utf8"));
    expect(seriesValue(samples, "panorama_log_unshipped_bytes", { file: log })).toBe(0);
    expect(
      seriesValue(samples, "panorama_log_last_upload_timestamp_seconds", { file: log }),
    ).toBeGreaterThanOrEqual(before);
    expect(seriesValue(samples, "panorama_last_exit_code", { command: "log-ship" })).toBe(0);
    // run's figures are still there.
    expect(table("panorama_table_rows", "metrics_rows")).toBe(1234);

    // A table gone from MySQL: its error flag, exit code 1, and the time of its last success kept.
    await db.query("DROP TABLE metrics_gone");
    expect((await runPanorama(["--config", cfg.file, "run"])).code).toBe(1);
    samples = parseExposition(readFileSync(textfile, "utf8"));
    expect(table("panorama_table_error", "metrics_gone")).toBe(1);
    expect(table("panorama_table_error", "metrics_rows")).toBe(0);
    expect(table("panorama_table_last_success_timestamp_seconds", "metrics_gone")).toBe(success);
    expect(seriesValue(samples, "panorama_last_exit_code", { command: "run" })).toBe(1);
    // log-ship's figures, from its last run, are kept.
    expect(seriesValue(samples, "panorama_log_unshipped_bytes", { file: log })).toBe(0);
    // Written by rename: no temporary file left beside it.
    expect(readdirSync(join(cfg.dir, "textfile_collector"))).toEqual(["panorama.prom"]);

    // A run of one table: the other's figures stay those of its last run.
    expect((await runPanorama(["--config", cfg.file, "run", "--tables", "metrics_rows"])).code).toBe(0);
    samples = parseExposition(readFileSync(textfile, "utf8"));
    // (Unchanged since the last run: read as such, 0 rows.)
    expect(table("panorama_table_rows", "metrics_rows")).toBe(0);
    expect(table("panorama_table_error", "metrics_gone")).toBe(1);
    expect(table("panorama_table_last_success_timestamp_seconds", "metrics_gone")).toBe(success);
    expect(seriesValue(samples, "panorama_last_exit_code", { command: "run" })).toBe(0);

    // A cron line broken (exit 2) and a run that finds the lock held (exit 3) are said too.
    expect((await runPanorama(["--config", cfg.file, "run", "--tables", "nosuch"])).code).toBe(2);
    samples = parseExposition(readFileSync(textfile, "utf8"));
    expect(seriesValue(samples, "panorama_last_exit_code", { command: "run" })).toBe(2);
    expect(table("panorama_table_error", "metrics_gone")).toBe(1);
    const lock = acquireLock(cfg.stateDir, "test");
    try {
      expect((await runPanorama(["--config", cfg.file, "run"])).code).toBe(3);
    } finally {
      lock.release();
    }
    samples = parseExposition(readFileSync(textfile, "utf8"));
    expect(seriesValue(samples, "panorama_last_exit_code", { command: "run" })).toBe(3);
  });

  test("verify writes its exit code and, per table, the differences it found and left", async () => {
    const cfg = writeTestConfig(`[extract]
preset = "none"

[[tables]]
name = "metrics_rows"
partition_fields = ["course_id"]
`);
    dirs.push(cfg.dir);
    const textfile = join(cfg.dir, "panorama.prom");
    appendFileSync(cfg.file, `\n[metrics]\ntextfile = "${textfile}"\n`);
    expect((await runPanorama(["--config", cfg.file, "run"])).code).toBe(0);
    expect((await runPanorama(["--config", cfg.file, "verify"])).code).toBe(0);
    let samples = parseExposition(readFileSync(textfile, "utf8"));
    expect(seriesValue(samples, "panorama_last_exit_code", { command: "verify" })).toBe(0);
    expect(seriesValue(samples, "panorama_verify_differences", { table: "metrics_rows" })).toBe(0);
    expect(seriesValue(samples, "panorama_verify_error", { table: "metrics_rows" })).toBe(0);
    expect(seriesValue(samples, "panorama_last_exit_code", { command: "run" })).toBe(0);

    // One partition's object removed by hand: verify finds it (exit 1), --repair leaves nothing.
    const partition = join(cfg.datalake, "openedx", "metrics_rows", "lms=lms.example.com");
    const first = readdirSync(partition)[0]!;
    rmSync(join(partition, first), { recursive: true, force: true });
    expect((await runPanorama(["--config", cfg.file, "verify"])).code).toBe(1);
    samples = parseExposition(readFileSync(textfile, "utf8"));
    expect(seriesValue(samples, "panorama_last_exit_code", { command: "verify" })).toBe(1);
    expect(seriesValue(samples, "panorama_verify_differences", { table: "metrics_rows" })).toBe(1);
    expect((await runPanorama(["--config", cfg.file, "verify", "--repair"])).code).toBe(0);
    samples = parseExposition(readFileSync(textfile, "utf8"));
    expect(seriesValue(samples, "panorama_last_exit_code", { command: "verify" })).toBe(0);
    expect(seriesValue(samples, "panorama_verify_differences", { table: "metrics_rows" })).toBe(0);
  });

  // Seen on a host whose textfile directory panorama created: it was made 0700, as state_dir is,
  // so node_exporter (another user) could read neither it nor the 0644 file in it, and said
  // nothing panorama would show; under a umask of 077 the file itself was 0600.
  test("the textfile and the directories panorama makes for it are readable by others, whatever the umask", async () => {
    const cfg = writeTestConfig(`[extract]
preset = "none"

[[tables]]
name = "metrics_rows"
`);
    dirs.push(cfg.dir);
    const collector = join(cfg.dir, "node_exporter", "textfile_collector");
    const textfile = join(collector, "panorama.prom");
    appendFileSync(cfg.file, `\n[metrics]\ntextfile = "${textfile}"\n`);
    const umask = process.umask(0o077);
    try {
      expect((await runPanorama(["--config", cfg.file, "run"])).code).toBe(0);
    } finally {
      process.umask(umask);
    }
    for (const dir of [join(cfg.dir, "node_exporter"), collector]) {
      expect((statSync(dir).mode & 0o777).toString(8)).toBe("755");
    }
    expect((statSync(textfile).mode & 0o777).toString(8)).toBe("644");
    expect(
      seriesValue(parseExposition(readFileSync(textfile, "utf8")), "panorama_last_exit_code", {
        command: "run",
      }),
    ).toBe(0);
  });
});
