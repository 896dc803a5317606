// A first `run` in CUSTOM mode before `panorama catalog` created the tables: the data is stored,
// one error says which tables are missing and the command that creates them, the closing line
// says the catalog is behind (the exit status is 1), and after `panorama catalog` the next run
// registers every partition. S3 is the test environment's; Glue and Athena are the loopback
// stand-in of test/support, which validates each request against AWS's API model.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { rmSync } from "node:fs";
import type mysql from "mysql2/promise";
import { type AwsJsonServer, startAwsJsonServer } from "../support/aws-json-server.ts";
import { cleanEnv, runPanorama } from "../support/cli.ts";
import { skipWithoutTestEnv, testEnv } from "../support/env.ts";
import { testConnection } from "../support/mysql.ts";
import { writeS3Config } from "../support/s3-config.ts";

const skip = skipWithoutTestEnv();
const TABLES = ["rbc_a", "rbc_b"];
let db: mysql.Connection;
let glue: AwsJsonServer;
let dir = "";

beforeAll(async () => {
  if (skip) return;
  const env = testEnv();
  glue = await startAwsJsonServer({
    accessKeyId: env.s3.accessKeyId,
    secretAccessKey: env.s3.secretAccessKey,
    region: env.s3.region,
    databases: ["panorama"],
    workgroups: { panorama: "s3://acme-athena-results/" },
  });
  db = await testConnection(env.mysql.scratchDatabase);
  for (const table of TABLES) {
    await db.query(`DROP TABLE IF EXISTS ${table}; CREATE TABLE ${table} (id INT PRIMARY KEY, course_id VARCHAR(100));
      INSERT INTO ${table} SELECT seq, CONCAT('course-v1:Org+C', seq % 2, '+2024') FROM seq_1_to_10;`);
  }
});

afterAll(async () => {
  await glue?.stop();
  if (db) {
    for (const table of TABLES) await db.query(`DROP TABLE IF EXISTS ${table}`);
    await db.end();
  }
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** The JSON log lines (stderr is not a TTY) at `level`. */
function lines(stderr: string, level: string): { message: string; [field: string]: unknown }[] {
  return stderr
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l) as { level: string; message: string })
    .filter((l) => l.level === level);
}

describe.skipIf(skip)("run before catalog", () => {
  test("one error with the command, the catalog said behind, then registered after `panorama catalog`", async () => {
    const prefix = `rbc_${Date.now().toString(36)}`;
    const setup = writeS3Config({
      datalake: `base_prefix = "${prefix}"\nglue_endpoint = "${glue.url}"\nathena_endpoint = "${glue.url}"\nworkgroup = "panorama"`,
      body: `[extract]\npreset = "none"\n${TABLES.map((t) => `[[tables]]\nname = "${t}"\npartition_fields = ["course_id"]\n`).join("")}`,
    });
    dir = setup.dir;
    const env = cleanEnv();

    const first = await runPanorama(["--config", setup.file, "run"], { env });
    expect(first.code).toBe(1);
    const glueNames = TABLES.map((t) => `${prefix}_raw_${t}`);
    expect(lines(first.stderr, "error").map((l) => l.message)).toEqual([
      `partitions not registered: 2 table(s) do not exist in the Glue database panorama: ${glueNames.join(", ")}; run \`panorama catalog\` once to create them (and their views); their partitions stay pending and the next run registers them`,
    ]);
    const finished = lines(first.stderr, "info").find((l) => l.message === "run: finished");
    expect(finished).toMatchObject({ tables: 2, failed: 0, catalogued: false });
    expect(glue.partitions("panorama", glueNames[0]!)).toEqual([]);

    const catalog = await runPanorama(["--config", setup.file, "catalog"], { env });
    expect(lines(catalog.stderr, "error")).toEqual([]);
    expect(catalog.code).toBe(0);
    const second = await runPanorama(["--config", setup.file, "run"], { env });
    expect(lines(second.stderr, "error")).toEqual([]);
    expect(second.code).toBe(0);
    for (const name of glueNames) expect(glue.partitions("panorama", name)).toHaveLength(2);
  }, 60_000);
});
