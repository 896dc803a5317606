// Partition registration when Glue cannot be reached (DESIGN: one cause, one error): `run` and
// `log-ship --once` against a Glue endpoint that refuses connections, or accepts them and never
// answers, say so once, keep every partition pending, and a later run with Glue back registers
// them. The S3 stand-in of the test environment holds the data; the loopback Glue of test/support
// stands in for AWS once it is back.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type mysql from "mysql2/promise";
import { AwsClient } from "../../src/aws/client.ts";
import { type AwsJsonServer, existingCsvTable, startAwsJsonServer } from "../support/aws-json-server.ts";
import { cleanEnv, runPanorama } from "../support/cli.ts";
import { skipWithoutTestEnv, type TestEnv, testEnv } from "../support/env.ts";
import { fixtureEvents, openEdxTime } from "../support/log-writer.ts";
import { testConnection } from "../support/mysql.ts";
import { writeS3Config } from "../support/s3-config.ts";
import { startSilentServer } from "../support/silent-server.ts";

const skip = skipWithoutTestEnv();
// Retries a few ms apart, not the quarter-second and more an operator's run waits: the tests
// count calls and read messages, never time.
const cliEnv = cleanEnv({ PANORAMA_TEST_AWS_RETRY_MS: "10" });
let env: TestEnv;
let db: mysql.Connection;
let glue: AwsJsonServer;
const dirs: string[] = [];

const TABLES = ["gu_a", "gu_b", "gu_c"];
const COURSES = 3;

const BODY = `[extract]
preset = "none"
${TABLES.map((t) => `\n[[tables]]\nname = "${t}"\npartition_fields = ["course_id"]\n`).join("")}`;

/** Glue and Athena as `panorama catalog` leaves them: every raw table exists, partitioned. */
function startGlue(): Promise<AwsJsonServer> {
  return startAwsJsonServer({
    accessKeyId: env.s3.accessKeyId,
    secretAccessKey: env.s3.secretAccessKey,
    region: env.s3.region,
    databases: ["panorama"],
    existingTable: (name) =>
      existingCsvTable(
        name,
        name.endsWith("_raw_tracking_logs") ? ["lms", "year", "month", "day"] : ["lms", "course_id"],
      ),
  });
}

/** A loopback port nothing listens on: connections to it are refused. */
function closedPort(): number {
  const server = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = server.port;
  server.stop(true);
  return port;
}

function uniquePrefix(name: string): string {
  return `gu_${name}_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 8)}`;
}

/** An S3 config whose Glue endpoint is `glueEndpoint`; `extra` goes after the tables. */
function config(prefix: string, glueEndpoint: string, extra = "") {
  const setup = writeS3Config({
    datalake: `base_prefix = "${prefix}"\nglue_endpoint = "${glueEndpoint}"`,
    body: `${BODY}${extra}`,
  });
  dirs.push(setup.dir);
  return setup;
}

function pointGlueAt(file: string, from: string, to: string): void {
  writeFileSync(
    file,
    readFileSync(file, "utf8").replace(`glue_endpoint = "${from}"`, `glue_endpoint = "${to}"`),
  );
}

/** The messages of the JSON log lines (stderr is not a TTY) at `level`. */
function messages(stderr: string, level: string): string[] {
  return stderr
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l) as { level: string; message: string })
    .filter((l) => l.level === level)
    .map((l) => l.message);
}

interface StatusJson {
  tables: { table: string; pending_partitions: number | null }[];
  logs_pending_partitions: number | null;
}

async function status(file: string): Promise<StatusJson> {
  const result = await runPanorama(["--config", file, "status", "--json"], { env: cliEnv });
  expect(result.code).toBe(0);
  return JSON.parse(result.stdout) as StatusJson;
}

async function pendingByTable(file: string): Promise<Record<string, number | null>> {
  const { tables } = await status(file);
  return Object.fromEntries(tables.map((t) => [t.table, t.pending_partitions]));
}

/** Glue's partitions of each configured table, by course. */
function registered(prefix: string): Record<string, string[]> {
  return Object.fromEntries(
    TABLES.map((t) => [
      t,
      glue
        .partitions("panorama", `${prefix}_raw_${t}`)
        .map((p) => (p.Values as string[])[1]!)
        .sort(),
    ]),
  );
}

const ALL_COURSES = Array.from({ length: COURSES }, (_, i) => `course-v1:Org+C${i}+2024`).sort();

beforeAll(async () => {
  if (skip) return;
  env = testEnv();
  glue = await startGlue();
  db = await testConnection(env.mysql.scratchDatabase);
  for (const table of TABLES) {
    await db.query(`DROP TABLE IF EXISTS ${table}; CREATE TABLE ${table} (id INT PRIMARY KEY, course_id VARCHAR(100));
      INSERT INTO ${table} SELECT seq, CONCAT('course-v1:Org+C', seq % ${COURSES}, '+2024') FROM seq_1_to_30;`);
  }
});

afterAll(async () => {
  await glue?.stop();
  if (db) {
    for (const table of TABLES) await db.query(`DROP TABLE IF EXISTS ${table}`);
    await db.end();
  }
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

describe.skipIf(skip)("Glue unreachable", () => {
  test("run: one error naming the cause, the endpoint and what to check, every partition kept pending; run --tables then registers only its table's, a full run the rest", async () => {
    const prefix = uniquePrefix("run");
    const down = `http://127.0.0.1:${closedPort()}`;
    const setup = config(prefix, down);

    const failed = await runPanorama(["--config", setup.file, "run"], { env: cliEnv });
    expect(failed.code).toBe(1);
    const errors = messages(failed.stderr, "error");
    // Found by the comparison before anything is written; the registration does not call again.
    expect(errors).toEqual([
      `Glue cannot be reached: NetworkError: ECONNREFUSED (${down}); check datalake.glue_endpoint (when empty, the AWS endpoint of datalake.region) and the network path to that address (proxy, firewall, DNS); the raw tables are compared with the layout, and the partitions registered, by the next run`,
    ]);
    const glueNames = TABLES.map((t) => `${prefix}_raw_${t}`);
    expect(messages(failed.stderr, "info")).toContain(
      `Glue could not be reached earlier: the partitions of 3 table(s) stay pending; the next run registers them: ${glueNames.join(", ")}`,
    );
    // No table is blamed for it.
    for (const name of glueNames) expect(failed.stderr).not.toContain(`${name}: partitions not registered`);
    // The data is stored all the same, and every partition is remembered.
    expect(await pendingByTable(setup.file)).toEqual({ gu_a: COURSES, gu_b: COURSES, gu_c: COURSES });

    pointGlueAt(setup.file, down, glue.url);
    const one = await runPanorama(["--config", setup.file, "run", "--tables", "gu_a"], { env: cliEnv });
    expect(messages(one.stderr, "error")).toEqual([]);
    expect(one.code).toBe(0);
    expect(registered(prefix)).toEqual({ gu_a: ALL_COURSES, gu_b: [], gu_c: [] });
    expect(await pendingByTable(setup.file)).toEqual({ gu_a: 0, gu_b: COURSES, gu_c: COURSES });

    const all = await runPanorama(["--config", setup.file, "run"], { env: cliEnv });
    expect(messages(all.stderr, "error")).toEqual([]);
    expect(all.code).toBe(0);
    expect(registered(prefix)).toEqual({ gu_a: ALL_COURSES, gu_b: ALL_COURSES, gu_c: ALL_COURSES });
    expect(await pendingByTable(setup.file)).toEqual({ gu_a: 0, gu_b: 0, gu_c: 0 });
  }, 120_000);

  test("run: connections that close unanswered are retried for one call only, not once per table", async () => {
    // A Glue that accepts each connection and closes it at once, counting them.
    let connections = 0;
    const closing = Bun.listen({
      hostname: "127.0.0.1",
      port: 0,
      socket: {
        open(socket) {
          connections++;
          socket.end();
        },
        data() {},
      },
    });
    try {
      const prefix = uniquePrefix("reset");
      const setup = config(prefix, `http://127.0.0.1:${closing.port}`);
      // What one call costs: the client's own attempts, with its default retry policy.
      const call = new AwsClient(setup.config, { retry: { baseMs: 10 } }).json(
        "glue",
        "AWSGlue.GetDatabase",
        { Name: "panorama" },
        "db",
      );
      expect(
        await call.then(
          () => null,
          (error: unknown) => error,
        ),
      ).toMatchObject({ code: "NetworkError" });
      const perCall = connections;
      expect(perCall).toBeGreaterThan(1);

      connections = 0;
      const failed = await runPanorama(["--config", setup.file, "run"], { env: cliEnv });
      expect(failed.code).toBe(1);
      expect(
        messages(failed.stderr, "error").filter((m) => m.includes("Glue cannot be reached")),
      ).toHaveLength(1);
      // One call, the comparison's before anything is written: the registration knows.
      expect(connections).toBe(perCall);
      expect(await pendingByTable(setup.file)).toEqual({ gu_a: COURSES, gu_b: COURSES, gu_c: COURSES });
    } finally {
      closing.stop(true);
    }
  }, 120_000);

  test("run: a Glue that accepts connections and never answers ends in bounded time, one error naming the endpoint, the data stored and every partition pending", async () => {
    // A black-holed proxy or a hung load balancer: connections are accepted, nothing is answered.
    const silent = await startSilentServer("silent");
    try {
      const prefix = uniquePrefix("silent");
      const setup = config(prefix, silent.url);
      const started = Date.now();
      // The test knob shortens the 30 s limit on silence to 1 s; killed at 60 s if it still hangs.
      const failed = await runPanorama(["--config", setup.file, "run"], {
        env: { ...cliEnv, PANORAMA_TEST_AWS_TIMEOUT_MS: "1000" },
        timeoutMs: 60_000,
      });
      expect(failed.code).toBe(1);
      expect(Date.now() - started).toBeLessThan(30_000);
      expect(messages(failed.stderr, "error")).toEqual([
        `Glue cannot be reached: Timeout: no answer for 1 s (${silent.url}); check datalake.glue_endpoint (when empty, the AWS endpoint of datalake.region) and the network path to that address (proxy, firewall, DNS); the raw tables are compared with the layout, and the partitions registered, by the next run`,
      ]);
      // The retry is said, above debug level.
      const retries = messages(failed.stderr, "warn").filter((m) => m.includes("; retrying"));
      expect(retries).toEqual([
        `GetTable table panorama.${prefix}_raw_gu_a failed: Timeout: no answer for 1 s (${silent.url}); retrying (attempt 2)`,
      ]);
      // Two attempts for the comparison before anything is written; the registration after the
      // uploads knows Glue is silent and does not wait through the limit again.
      expect(silent.connections).toBe(2);
      expect(await pendingByTable(setup.file)).toEqual({ gu_a: COURSES, gu_b: COURSES, gu_c: COURSES });
    } finally {
      await silent.stop();
    }
  }, 90_000);

  test("log-ship --once: one error for all its day partitions, each kept pending; the next log-ship registers them", async () => {
    const prefix = uniquePrefix("logs");
    const down = `http://127.0.0.1:${closedPort()}`;
    const setup = config(prefix, down, `\n[logs]\npaths = ["LOG"]\n`);
    const log = join(setup.dir, "tracking.log");
    writeFileSync(setup.file, readFileSync(setup.file, "utf8").replace('"LOG"', `"${log}"`));
    // Events of three days: three day partitions, each registered when first written into.
    const days = ["2024-03-01", "2024-03-02", "2024-03-03"];
    const events = fixtureEvents();
    writeFileSync(
      log,
      days
        .flatMap((day, d) =>
          [0, 1].map(
            (i) =>
              `{"name": "panorama.test", "seq": ${d * 2 + i}, "time": "${openEdxTime(Date.parse(`${day}T10:00:0${i}Z`))}", "event": ${events[d * 2 + i]}}\n`,
          ),
        )
        .join(""),
    );

    const failed = await runPanorama(["--config", setup.file, "log-ship", "--once"], { env: cliEnv });
    expect(failed.code).toBe(1);
    expect(messages(failed.stderr, "error")).toEqual([
      `partitions not registered: Glue cannot be reached: NetworkError: ECONNREFUSED (${down}); check datalake.glue_endpoint (when empty, the AWS endpoint of datalake.region) and the network path to that address (proxy, firewall, DNS)`,
    ]);
    expect((await status(setup.file)).logs_pending_partitions).toBe(days.length);

    pointGlueAt(setup.file, down, glue.url);
    const next = await runPanorama(["--config", setup.file, "log-ship", "--once"], { env: cliEnv });
    expect(messages(next.stderr, "error")).toEqual([]);
    expect(next.code).toBe(0);
    expect((await status(setup.file)).logs_pending_partitions).toBe(0);
    const logsTable = `${prefix}_raw_tracking_logs`;
    expect(
      glue
        .partitions("panorama", logsTable)
        .map((p) => (p.Values as string[]).slice(1).join("-"))
        .sort(),
    ).toEqual(days);
  }, 120_000);
});
