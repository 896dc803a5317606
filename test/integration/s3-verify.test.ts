// Deletions and reconciliation (DESIGN §7a) on S3: the real CLI and MariaDB, s3rver behind the
// environment's SigV4-checking proxy, the loopback Glue that checks requests against the AWS
// model. gzip objects: the size verify compares is the compressed size S3 lists.
import { afterAll, beforeAll, beforeEach, describe, expect, setDefaultTimeout, test } from "bun:test";
import { createHash } from "node:crypto";
import { readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type mysql from "mysql2/promise";
import { AwsClient } from "../../src/aws/client.ts";
import { Glue, type StorageDescriptor } from "../../src/aws/glue.ts";
import { S3Client } from "../../src/aws/s3.ts";
import { type AwsJsonServer, existingCsvTable, startAwsJsonServer } from "../support/aws-json-server.ts";
import { cleanEnv, runPanorama } from "../support/cli.ts";
import { skipWithoutTestEnv, type TestEnv, testEnv } from "../support/env.ts";
import { testConnection, writeTestConfig } from "../support/mysql.ts";
import { type S3TestConfig, writeS3Config } from "../support/s3-config.ts";
import { startS3Proxy } from "../support/s3-proxy.ts";

const skip = skipWithoutTestEnv();
// Each test runs the CLI several times: seconds each on a loaded machine.
setDefaultTimeout(60_000);
let db: mysql.Connection;
let env: TestEnv;
let glue: AwsJsonServer;
const dirs: string[] = [];

const TABLES = `[extract]
preset = "none"

[[tables]]
name = "s3verify_grades"
partition_fields = ["course_id"]
incremental = { timestamp_field = "modified", overlap = "1 hour" }
`;
const GLUE_TABLE = (prefix: string) => `${prefix}_raw_s3verify_grades`;
const course = (n: number) => `course-v1:Org+V${n}+2024`;
const keyOf = (prefix: string, n: number) =>
  `${prefix}/s3verify_grades/lms=lms.example.com/course_id=course-v1%3AOrg%2BV${n}%2B2024/s3verify_grades.csv.gz`;

function uniquePrefix(): string {
  return `s3verify_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 8)}`;
}

function s3Config(prefix: string): S3TestConfig {
  const cfg = writeS3Config({
    datalake: `base_prefix = "${prefix}"\ncompression = "gzip"\nglue_endpoint = "${glue.url}"`,
    body: TABLES,
  });
  dirs.push(cfg.dir);
  return cfg;
}

function s3Of(cfg: S3TestConfig): S3Client {
  return new S3Client(new AwsClient(cfg.config), cfg.config);
}

/** Every object under `prefix/`: key without the prefix → SHA-256 of its bytes. */
async function bucketObjects(cfg: S3TestConfig, prefix: string): Promise<Map<string, string>> {
  const s3 = s3Of(cfg);
  const out = new Map<string, string>();
  for (const { key } of await s3.listObjects(env.s3.bucket, `${prefix}/`)) {
    const body = await (
      await fetch(s3.url(env.s3.bucket, key).replace(env.s3.endpoint, env.s3.directEndpoint))
    ).arrayBuffer();
    out.set(key.slice(prefix.length + 1), createHash("sha256").update(new Uint8Array(body)).digest("hex"));
  }
  return out;
}

/** What a clean, full extraction of MySQL as it is now writes (a local datalake, same layout). */
async function cleanExtraction(prefix: string): Promise<Map<string, string>> {
  const local = writeTestConfig(TABLES);
  dirs.push(local.dir);
  const text = readFileSync(local.file, "utf8").replace(
    'target = "local"',
    `target = "local"\nbase_prefix = "${prefix}"\ncompression = "gzip"`,
  );
  await Bun.write(local.file, text);
  expect((await runPanorama(["--config", local.file, "run", "--full"])).code).toBe(0);
  const out = new Map<string, string>();
  const base = join(local.datalake, prefix);
  for (const name of readdirSync(base, { recursive: true }) as string[]) {
    const path = join(base, name);
    if (statSync(path).isFile()) out.set(name, createHash("sha256").update(readFileSync(path)).digest("hex"));
  }
  return out;
}

async function panorama(cfg: S3TestConfig, ...args: string[]) {
  // Retries a few ms apart: the tests count and read, never time.
  return runPanorama(["--config", cfg.file, ...args], {
    env: cleanEnv({ PANORAMA_TEST_AWS_RETRY_MS: "10" }),
  });
}

function partitionCourses(prefix: string): string[] {
  return glue
    .partitions("panorama", GLUE_TABLE(prefix))
    .map((p) => (p.Values as string[])[1]!)
    .sort();
}

beforeAll(async () => {
  if (skip) return;
  env = testEnv();
  glue = await startAwsJsonServer({
    accessKeyId: env.s3.accessKeyId,
    secretAccessKey: env.s3.secretAccessKey,
    region: env.s3.region,
    databases: ["panorama"],
    existingTable: (name) => existingCsvTable(name, ["lms", "course_id"]),
  });
  db = await testConnection(env.mysql.scratchDatabase);
});

beforeEach(async () => {
  if (skip) return;
  await db.query(`DROP TABLE IF EXISTS s3verify_grades;
    CREATE TABLE s3verify_grades (id INT PRIMARY KEY, course_id VARCHAR(100), grade INT, modified DATETIME(6), KEY (course_id));
    INSERT INTO s3verify_grades SELECT seq, CONCAT('course-v1:Org+V', seq % 30, '+2024'), seq % 11,
      '2024-01-01 00:00:00' + INTERVAL seq HOUR FROM seq_1_to_3000`);
});

afterAll(async () => {
  if (skip) return;
  await db.query("DROP TABLE IF EXISTS s3verify_grades");
  await db.end();
  await glue.stop();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

describe.skipIf(skip)("deletions and verify on S3 with Glue", () => {
  test("a course deleted in MySQL: after the next full read its object and its Glue partition are gone", async () => {
    const prefix = uniquePrefix();
    const cfg = s3Config(prefix);
    expect((await panorama(cfg, "run")).code).toBe(0);
    expect(partitionCourses(prefix)).toHaveLength(30);
    await db.query("DELETE FROM s3verify_grades WHERE course_id IN (?, ?)", [course(7), course(8)]);
    glue.reset();
    const full = await panorama(cfg, "run", "--full");
    expect(full.code, full.stderr).toBe(0);
    const objects = await bucketObjects(cfg, prefix);
    expect(objects.size).toBe(28);
    expect([...objects.keys()].some((k) => k.includes("V7%2B") || k.includes("V8%2B"))).toBe(false);
    expect(partitionCourses(prefix)).not.toContain(course(7));
    expect(partitionCourses(prefix)).not.toContain(course(8));
    expect(partitionCourses(prefix)).toHaveLength(28);
    expect(glue.calls("BatchDeletePartition")).toBe(1);
    expect(objects).toEqual(await cleanExtraction(prefix));
  }, 60_000);

  test("missing, replaced and stale objects: reported (exit 1), repaired (exit 0), the bucket equals a clean extraction", async () => {
    const prefix = uniquePrefix();
    const cfg = s3Config(prefix);
    expect((await panorama(cfg, "run")).code).toBe(0);
    const clean = await bucketObjects(cfg, prefix);
    const s3 = s3Of(cfg);
    // Deleted by hand; replaced by other bytes; an object of a course MySQL never had.
    await s3.deleteObject(env.s3.bucket, keyOf(prefix, 3));
    await s3.putObject(env.s3.bucket, keyOf(prefix, 4), new TextEncoder().encode("not the data"));
    const stale = keyOf(prefix, 99);
    await s3.putObject(env.s3.bucket, stale, new TextEncoder().encode("stale"));
    glue.reset();

    const found = await panorama(cfg, "verify", "--json");
    expect(found.code).toBe(1);
    const report = JSON.parse(found.stdout) as {
      found: { tables: { findings: { kind: string; key: string; listed_bytes: number | null }[] }[] };
    };
    const findings = report.found.tables[0]!.findings;
    expect(findings.map((f) => `${f.kind} ${f.key}`).sort()).toEqual(
      [`missing ${keyOf(prefix, 3)}`, `size ${keyOf(prefix, 4)}`, `stale ${stale}`].sort(),
    );
    expect(findings.find((f) => f.kind === "size")?.listed_bytes).toBe("not the data".length);

    // verify alone changes nothing.
    expect((await bucketObjects(cfg, prefix)).has(stale.slice(prefix.length + 1))).toBe(true);

    const repaired = await panorama(cfg, "verify", "--repair");
    expect(repaired.code, repaired.stderr).toBe(0);
    expect(await bucketObjects(cfg, prefix)).toEqual(clean);
    expect(await bucketObjects(cfg, prefix)).toEqual(await cleanExtraction(prefix));
    // The stale object's partition was never registered: Glue is asked and has nothing to remove.
    expect(glue.calls("BatchDeletePartition")).toBe(1);
    expect(partitionCourses(prefix)).toHaveLength(30);
    expect((await panorama(cfg, "verify")).code).toBe(0);
  }, 60_000);

  test("S3 refusing writes during a repair: exit 1 naming the failure; the next repair completes it", async () => {
    const prefix = uniquePrefix();
    const cfg = s3Config(prefix);
    expect((await panorama(cfg, "run")).code).toBe(0);
    await s3Of(cfg).deleteObject(env.s3.bucket, keyOf(prefix, 6));
    const proxy = await startS3Proxy({
      upstream: env.s3.directEndpoint,
      credentials: { accessKeyId: env.s3.accessKeyId, secretAccessKey: env.s3.secretAccessKey },
    });
    try {
      proxy.setFaults((r) =>
        r.method === "PUT"
          ? { kind: "error", status: 403, code: "AccessDenied", message: "Access Denied" }
          : undefined,
      );
      const text = readFileSync(cfg.file, "utf8");
      await Bun.write(cfg.file, text.replace(`endpoint = "${env.s3.endpoint}"`, `endpoint = "${proxy.url}"`));
      const refused = await panorama(cfg, "verify", "--repair");
      expect(refused.code).toBe(1);
      expect(refused.stderr).toContain("s3verify_grades: repair failed");
      expect(refused.stderr).toContain("AccessDenied");
      expect(refused.stdout).toContain(`missing\t${keyOf(prefix, 6)}`);
      expect(refused.stdout).toContain("after the repair:");
      await Bun.write(cfg.file, text);
    } finally {
      await proxy.close();
    }
    expect((await panorama(cfg, "verify", "--repair")).code).toBe(0);
    expect(await bucketObjects(cfg, prefix)).toEqual(await cleanExtraction(prefix));
  }, 60_000);

  test("rows deleted inside a partition, no timestamp moved: verify --repair stores the partition again at once", async () => {
    const prefix = uniquePrefix();
    const cfg = s3Config(prefix);
    expect((await panorama(cfg, "run")).code).toBe(0);
    await db.query("DELETE FROM s3verify_grades WHERE course_id = ? AND id < 1000", [course(5)]);
    expect((await panorama(cfg, "run")).code).toBe(0);
    expect((await panorama(cfg, "verify")).code).toBe(1);
    expect((await panorama(cfg, "verify", "--repair")).code).toBe(0);
    expect(await bucketObjects(cfg, prefix)).toEqual(await cleanExtraction(prefix));
  }, 60_000);

  test("partitions Glue lost: each object in them is a catalog difference (exit 1); --repair registers them again without reading MySQL", async () => {
    const prefix = uniquePrefix();
    const cfg = s3Config(prefix);
    expect((await panorama(cfg, "run")).code).toBe(0);
    const gone = [course(3), course(4)];
    const client = new Glue(new AwsClient(cfg.config), "panorama");
    await client.batchDeletePartition(
      GLUE_TABLE(prefix),
      gone.map((c) => ["lms.example.com", c]),
    );
    expect(partitionCourses(prefix)).toHaveLength(28);
    const said = await panorama(cfg, "verify");
    expect(said.code).toBe(1);
    for (const n of [3, 4]) {
      expect(said.stdout).toContain(
        `catalog\t${keyOf(prefix, n)}\tits partition is not in the Glue table: Athena does not read it`,
      );
    }
    expect(said.stdout).toContain("✗ s3verify_grades: 2 catalog (of 30 partition(s), 30 object(s))");
    const bucket = await bucketObjects(cfg, prefix);
    const repaired = await panorama(cfg, "verify", "--repair");
    expect(repaired.code, repaired.stdout + repaired.stderr).toBe(0);
    expect(partitionCourses(prefix)).toEqual(Array.from({ length: 30 }, (_, n) => course(n)).sort());
    expect(await bucketObjects(cfg, prefix)).toEqual(bucket);
    expect(repaired.stderr).toContain(
      "repairing 0 partition(s), deleting 0 stale object(s), registering 2 partition(s)",
    );

    // A table that projects its partitions (a provider's) needs none registered: no difference.
    await client.batchDeletePartition(GLUE_TABLE(prefix), [["lms.example.com", course(5)]]);
    const table = (await client.getTable(GLUE_TABLE(prefix)))!;
    await client.updateTable({
      Name: table.Name,
      TableType: table.TableType ?? "EXTERNAL_TABLE",
      PartitionKeys: table.PartitionKeys ?? [],
      StorageDescriptor: table.StorageDescriptor as StorageDescriptor,
      Parameters: { ...table.Parameters, "projection.enabled": "true" },
    });
    const projected = await panorama(cfg, "verify");
    expect(projected.code, projected.stdout).toBe(0);
    expect(projected.stdout).not.toContain("catalog\t");
  }, 60_000);

  test("Glue refusing verify's reads: the data is verified all the same, the catalog said not compared, once", async () => {
    const prefix = uniquePrefix();
    const cfg = s3Config(prefix);
    expect((await panorama(cfg, "run")).code).toBe(0);
    // A Glue that knows other credentials: it refuses every call at once, as AWS refuses them.
    const other = await startAwsJsonServer({
      accessKeyId: "AKIDOTHERACCOUNT1",
      secretAccessKey: "another-secret",
      region: env.s3.region,
      databases: ["panorama"],
    });
    try {
      writeFileSync(cfg.file, readFileSync(cfg.file, "utf8").replace(glue.url, other.url));
      const said = await panorama(cfg, "verify");
      expect(said.code, said.stderr).toBe(0);
      expect(said.stdout).toContain("✓ s3verify_grades: 30 partition(s), 3000 rows, 30 object(s) agree");
      const warnings = said.stderr
        .split("\n")
        .filter((l) => l.includes("Glue's partitions could not be read"));
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toContain("so the catalog is not compared");
    } finally {
      await other.stop();
    }
  }, 60_000);

  test("a table the configuration no longer names: its objects in the bucket are said and kept, another host's are not", async () => {
    const prefix = uniquePrefix();
    const cfg = s3Config(prefix);
    expect((await panorama(cfg, "run")).code).toBe(0);
    const s3 = s3Of(cfg);
    const ours = [1, 2, 3].map(
      (n) => `${prefix}/s3verify_gone/lms=lms.example.com/course_id=c${n}/s3verify_gone.csv.gz`,
    );
    for (const key of ours) await s3.putObject(env.s3.bucket, key, new Uint8Array(10));
    await s3.putObject(
      env.s3.bucket,
      `${prefix}/s3verify_theirs/lms=other.example.com/s3verify_theirs.csv.gz`,
      new Uint8Array(10),
    );
    const before = await bucketObjects(cfg, prefix);
    const said = await panorama(cfg, "verify", "--repair");
    expect(said.code).toBe(0);
    expect(said.stdout).toContain(
      `- s3verify_gone: not in the configuration, yet 3 object(s) (30 B) of this host's are in the datalake, kept and no longer updated: add it back to [[tables]], or delete ${prefix}/s3verify_gone/lms=lms.example.com/ and its catalog table if it should go`,
    );
    expect(said.stdout).not.toContain("s3verify_theirs");
    expect(await bucketObjects(cfg, prefix)).toEqual(before);
  }, 60_000);
});

describe.skipIf(skip)("verify with S3 unreachable", () => {
  // Seen with datalake.endpoint naming a host that does not resolve: each of the preset's 29
  // tables tried its listing 6 times, the same error 29 times, and the daily verify took 2 minutes.
  test("the first table says why; the others are not tried, and name the table that said it", async () => {
    await db.query(`DROP TABLE IF EXISTS s3verify_other;
      CREATE TABLE s3verify_other (id INT PRIMARY KEY); INSERT INTO s3verify_other VALUES (1), (2)`);
    try {
      const cfg = writeS3Config({
        endpoint: "http://127.0.0.1:1",
        body: `${TABLES}\n[[tables]]\nname = "s3verify_other"\n`,
      });
      dirs.push(cfg.dir);
      const result = await panorama(cfg, "verify");
      expect(result.code).toBe(1);
      const lines = result.stdout.split("\n");
      expect(lines[0]).toStartWith("✗ s3verify_grades: not verified: ListObjectsV2");
      expect(lines[0]).toContain("ECONNREFUSED");
      expect(lines[1]).toBe(
        "✗ s3verify_other: not verified: the datalake could not be reached (said for s3verify_grades)",
      );
      // One table's attempts: retried 5 times, not 10.
      expect(result.stderr.match(/retrying \(attempt/g)).toHaveLength(5);
    } finally {
      await db.query("DROP TABLE IF EXISTS s3verify_other");
    }
  });
});
