// A table's partition keys change (base_partitions edited) on S3 with a Glue catalog: the table
// is dropped and made again as the error says, and the next runs register its partitions. Those
// written under the earlier keys stay in the state, not sent to a table that cannot hold them,
// and are registered again when the keys go back. The real CLI and MariaDB, s3rver behind the
// SigV4-checking proxy, the loopback Glue and Athena of test/support/aws-json-server.ts.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import type mysql from "mysql2/promise";
import { type AwsJsonServer, startTestGlue } from "../support/aws-json-server.ts";
import { cleanEnv, runPanorama } from "../support/cli.ts";
import { skipWithoutTestEnv, testEnv } from "../support/env.ts";
import { testConnection } from "../support/mysql.ts";
import { type S3TestConfig, writeS3Config } from "../support/s3-config.ts";

const skip = skipWithoutTestEnv();
// Each test runs the CLI several times: seconds each on a loaded machine.
setDefaultTimeout(60_000);
const PREFIX = `pkchange_${Date.now().toString(36)}`;
const RAW = `${PREFIX}_raw_pkchange_items`;
const SITE = '[datalake.base_partitions]\nlms = "lms.example.com"\nsite = "main"\n';

let db: mysql.Connection;
let glue: AwsJsonServer;
let cfg: S3TestConfig;
let plain = "";

const cli = (...args: string[]) =>
  runPanorama(["--config", cfg.file, "--json", ...args], { env: cleanEnv() });

function errors(stderr: string): string[] {
  return stderr
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { level: string; message: string })
    .filter((l) => l.level === "error")
    .map((l) => l.message);
}

function registered(): string[][] {
  return glue.partitions("panorama", RAW).map((p) => p.Values as string[]);
}

/** The config with `extra` before [aws], then the table dropped and made again in Glue. */
async function switchTo(extra: string): Promise<void> {
  writeFileSync(cfg.file, plain.replace("[aws]", `${extra}\n[aws]`));
  const refused = await cli("run");
  expect(refused.code).toBe(1);
  expect(errors(refused.stderr)[0]).toContain("its partition keys are");
  expect((await cli("catalog", "--drop", "--yes", "--tables", "pkchange_items")).code).toBe(0);
  const made = await cli("catalog", "--tables", "pkchange_items");
  expect(errors(made.stderr)).toEqual([]);
  expect(made.code).toBe(0);
}

beforeAll(async () => {
  if (skip) return;
  const env = testEnv();
  db = await testConnection(env.mysql.scratchDatabase);
  await db.query(
    "DROP TABLE IF EXISTS pkchange_items; CREATE TABLE pkchange_items (id INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(10)); INSERT INTO pkchange_items (v) VALUES ('a'), ('b')",
  );
  glue = await startTestGlue();
  cfg = writeS3Config({
    datalake: `base_prefix = "${PREFIX}"\ndatabase = "panorama"\nglue_endpoint = "${glue.url}"\nathena_endpoint = "${glue.url}"`,
    body: '[extract]\npreset = "none"\n\n[[tables]]\nname = "pkchange_items"\n',
  });
  plain = readFileSync(cfg.file, "utf8");
});

afterAll(async () => {
  if (skip) return;
  await db?.query("DROP TABLE IF EXISTS pkchange_items");
  await db?.end();
  await glue?.stop();
  if (cfg) rmSync(cfg.dir, { recursive: true, force: true });
});

describe.skipIf(skip)("partition keys changed under an existing catalog", () => {
  test("after the table is made again with the new keys, run registers its partitions", async () => {
    expect((await cli("catalog")).code).toBe(0);
    expect((await cli("run")).code).toBe(0);
    expect(registered()).toEqual([["lms.example.com"]]);

    await switchTo(SITE);
    const run = await cli("run");
    expect(errors(run.stderr)).toEqual([]);
    expect(run.code).toBe(0);
    expect(registered()).toEqual([["lms.example.com", "main"]]);
    const status = JSON.parse((await cli("status", "--json")).stdout) as {
      tables: { table: string; pending_partitions: number | null }[];
    };
    expect(status.tables.find((t) => t.table === "pkchange_items")?.pending_partitions).toBe(0);
  });

  test("back to the earlier keys, the partitions written under them are registered again", async () => {
    await switchTo("");
    expect(registered()).toEqual([["lms.example.com"]]);
    const run = await cli("run");
    expect(errors(run.stderr)).toEqual([]);
    expect(run.code).toBe(0);
  });
});
