// What `run` prints as it goes (DESIGN §12): each table's line as soon as that table is done (in
// JSON too), one summary line at the end, and on a terminal lines that fit its 80 columns.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { rmSync } from "node:fs";
import type mysql from "mysql2/promise";
import { CLI, ROOT, runPanorama } from "../support/cli.ts";
import { skipWithoutTestEnv, testEnv } from "../support/env.ts";
import { testConnection, writeTestConfig } from "../support/mysql.ts";

const skip = skipWithoutTestEnv();
// Longer than a line of 80 columns with its figures: the terminal line must be wrapped by us.
const LONG = "run_output_a_table_named_long_enough_to_need_a_second_line";
const TABLES = `[extract]
preset = "none"

[[tables]]
name = "run_output_small"

[[tables]]
name = "run_output_events"
partition_fields = ["course_id"]

[[tables]]
name = "${LONG}"
`;
let db: mysql.Connection;
const dirs: string[] = [];

interface Line {
  level: string;
  message: string;
  table?: string;
  key?: string;
  [field: string]: unknown;
}

beforeAll(async () => {
  if (skip) return;
  db = await testConnection(testEnv().mysql.scratchDatabase);
  await db.query(`DROP TABLE IF EXISTS run_output_small; DROP TABLE IF EXISTS run_output_events; DROP TABLE IF EXISTS ${LONG};
    CREATE TABLE run_output_small (id INT PRIMARY KEY, name VARCHAR(20));
    INSERT INTO run_output_small SELECT seq, CONCAT('n', seq) FROM seq_1_to_50;
    CREATE TABLE run_output_events (id INT PRIMARY KEY, course_id VARCHAR(50), payload VARCHAR(200), KEY (course_id));
    INSERT INTO run_output_events SELECT seq, CONCAT('course-v1:Org+C', seq % 40, '+1'), REPEAT('x', 150) FROM seq_1_to_20000;
    CREATE TABLE ${LONG} (id INT PRIMARY KEY);
    INSERT INTO ${LONG} SELECT seq FROM seq_1_to_10`);
});

afterAll(async () => {
  if (skip) return;
  await db.query(
    `DROP TABLE IF EXISTS run_output_small; DROP TABLE IF EXISTS run_output_events; DROP TABLE IF EXISTS ${LONG}`,
  );
  await db.end();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

describe.skipIf(skip)("run's output", () => {
  test("JSON: a table's line comes when it is done, before the next table's uploads end; one summary last", async () => {
    const cfg = writeTestConfig(TABLES);
    dirs.push(cfg.dir);
    const run = await runPanorama(["--config", cfg.file, "--json", "--log-level", "debug", "run"]);
    expect(run.code).toBe(0);
    const lines = run.stderr
      .split("\n")
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Line);
    const index = (predicate: (l: Line) => boolean) => lines.findIndex(predicate);
    const smallDone = index((l) => l.message === "run_output_small: done");
    const eventsUploads = lines
      .map((l, i) => (l.message === "uploaded" && l.table === "run_output_events" ? i : -1))
      .filter((i) => i >= 0);
    expect(eventsUploads).toHaveLength(40);
    // Not held back until the end: the small table is reported while the next one is stored.
    expect(smallDone).toBeGreaterThanOrEqual(0);
    expect(smallDone).toBeLessThan(eventsUploads.at(-1)!);
    const eventsDone = index((l) => l.message === "run_output_events: done");
    expect(eventsDone).toBeGreaterThan(eventsUploads.at(-1)!);
    expect(lines[eventsDone]).toMatchObject({ rows: 20000, objects: 40 });
    // One summary, the last line, with the run's figures.
    const summaries = lines.filter((l) => l.message === "run: finished");
    expect(summaries).toHaveLength(1);
    expect(lines.at(-1)).toBe(summaries[0]!);
    expect(summaries[0]).toMatchObject({ tables: 3, failed: 0, rows: 20060, objects: 42 });
  });

  test.skipIf(!Bun.which("script"))("on an 80-column terminal every line fits", async () => {
    const cfg = writeTestConfig(TABLES);
    dirs.push(cfg.dir);
    // script(1) gives the command a pseudo-terminal, sized here as an 80-column one.
    const command = `stty cols 80 rows 40 && exec "${process.execPath}" "${CLI}" --config "${cfg.file}" run`;
    const child = Bun.spawn(["script", "-qec", command, "/dev/null"], {
      cwd: ROOT,
      env: { ...process.env, NO_COLOR: "1" },
      stdout: "pipe",
      stderr: "pipe",
    });
    const [output, code] = await Promise.all([new Response(child.stdout).text(), child.exited]);
    expect(code).toBe(0);
    // What the terminal shows: each piece between carriage returns and newlines, escapes removed.
    // biome-ignore lint/suspicious/noControlCharactersInRegex: terminal escape sequences
    const pieces = output.replace(/\x1b\[[0-9;]*[A-Za-z]/g, "").split(/[\r\n]+/);
    const tooWide = pieces.filter((p) => [...p].length > 80);
    expect(tooWide).toEqual([]);
    expect(pieces).toContainEqual(expect.stringMatching(/^✔ run_output_events: 20,000 rows, 40 objects, /));
    expect(pieces).toContainEqual(expect.stringMatching(new RegExp(`^✔ ${LONG}: 10 rows, 1 object,$`)));
    expect(pieces).toContainEqual(
      expect.stringMatching(/^✔ run: 3 tables done, 0 failed; 20,060 rows, 42 objects, /),
    );
    // The live line: rows as they stream.
    expect(pieces).toContainEqual(expect.stringMatching(/^… run_output_events .*rows/));
  });

  test("stderr a file: JSON lines, whole and in order, without --json; stderr closed: the run still stores everything", async () => {
    const cfg = writeTestConfig(TABLES);
    dirs.push(cfg.dir);
    // Not a terminal: one JSON object per line, whole and in order, without --json.
    const logFile = `${cfg.dir}/stderr.log`;
    const child = Bun.spawn([process.execPath, CLI, "--config", cfg.file, "--log-level", "debug", "run"], {
      cwd: ROOT,
      stdout: "ignore",
      stderr: Bun.file(logFile),
    });
    expect(await child.exited).toBe(0);
    const lines = (await Bun.file(logFile).text())
      .split("\n")
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Line);
    expect(lines.filter((l) => l.message === "uploaded")).toHaveLength(42);
    expect(lines.at(-1)).toMatchObject({ message: "run: finished", tables: 3, failed: 0, rows: 20060 });

    // Nowhere to write a line: nothing is said, nothing fails, the lake gets every object.
    const closed = writeTestConfig(TABLES);
    dirs.push(closed.dir);
    const command = `exec "${process.execPath}" "${CLI}" --config "${closed.file}" run 2>&-`;
    const silent = Bun.spawn(["bash", "-c", command], { cwd: ROOT, stdout: "ignore", stderr: "pipe" });
    const [said, code] = await Promise.all([new Response(silent.stderr).text(), silent.exited]);
    expect(said).toBe("");
    expect(code).toBe(0);
    // Bun opens /dev/null in place of a closed stderr: no data file can take its descriptor.
    const objects = (dir: string) => [...new Bun.Glob("**/*.csv").scanSync(dir)].sort();
    expect(objects(closed.datalake)).toHaveLength(42);
    expect(objects(closed.datalake)).toEqual(objects(cfg.datalake));
    for (const key of objects(cfg.datalake)) {
      expect(await Bun.file(`${closed.datalake}/${key}`).text()).toBe(
        await Bun.file(`${cfg.datalake}/${key}`).text(),
      );
    }
  });
});
