// Policy consistency: run the whole pipeline of a CUSTOM config (catalog --create --views, run =
// extract → upload → partitions, log-ship, catalog --dry-run, catalog --drop) against the real
// MariaDB, s3rver behind a recording SigV4 proxy, and the loopback Glue + Athena that stands in
// for AWS (test/support/aws-json-server.ts), recording every AWS action and resource used, then
// check `panorama iam-policy` for the same config against what was recorded.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type mysql from "mysql2/promise";
import { type AwsJsonServer, type RecordedAction, startTestGlue } from "../support/aws-json-server.ts";
import { cleanEnv, ROOT, runPanorama } from "../support/cli.ts";
import { skipWithoutTestEnv, testEnv } from "../support/env.ts";
import { testConnection } from "../support/mysql.ts";
import { writeS3Config } from "../support/s3-config.ts";
import { type S3Proxy, startS3Proxy } from "../support/s3-proxy.ts";

const skip = skipWithoutTestEnv();
const ACCOUNT = "123456789012";
let glue: AwsJsonServer;
let proxy: S3Proxy;
let db: mysql.Connection;

beforeAll(async () => {
  if (skip) return;
  const env = testEnv();
  proxy = await startS3Proxy({
    upstream: env.s3.directEndpoint,
    credentials: { accessKeyId: env.s3.accessKeyId, secretAccessKey: env.s3.secretAccessKey },
  });
  glue = await startTestGlue({ accountId: ACCOUNT });
  db = await testConnection(env.mysql.scratchDatabase);
  await db.query("DROP TABLE IF EXISTS policy_widgets");
  await db.query(
    "CREATE TABLE policy_widgets (id INT PRIMARY KEY, course_id VARCHAR(64), label VARCHAR(32))",
  );
  await db.query(
    "INSERT INTO policy_widgets VALUES (1, 'course-v1:A+B+C', 'one'), (2, 'course-v1:A+B+C', 'two'), (3, 'course-v1:X+Y+Z', 'three')",
  );
});

afterAll(async () => {
  if (skip) return;
  await db.query("DROP TABLE IF EXISTS policy_widgets");
  await db.end();
  await glue.stop();
  await proxy.close();
});

/** The IAM action of an S3 request as the proxy recorded it. */
function s3Action(method: string, query: Record<string, string>): string {
  if (method === "DELETE")
    return query.uploadId !== undefined ? "s3:AbortMultipartUpload" : "s3:DeleteObject";
  if (method === "GET" && "uploads" in query) return "s3:ListBucketMultipartUploads";
  if (method === "GET" && query["list-type"] === "2") return "s3:ListBucket";
  if (method === "GET" || method === "HEAD") return "s3:GetObject";
  return "s3:PutObject";
}

function arnMatches(pattern: string, arn: string): boolean {
  const re = new RegExp(
    `^${pattern
      .split("*")
      .map((p) => p.replace(/[.+?^${}()|[\]\\]/g, "\\$&"))
      .join(".*")}$`,
  );
  return re.test(arn);
}

test.skipIf(skip)(
  "iam-policy allows every action the pipeline used, and grants none it never used",
  async () => {
    const prefix = `policy_${Date.now().toString(36)}`;
    const log = join(mkdtempSync(join(tmpdir(), "panorama-policy-")), "tracking.log");
    writeFileSync(
      log,
      `${(await Bun.file(join(ROOT, "test/fixtures/tracking/events.jsonl")).text()).split("\n").slice(0, 5).join("\n")}\n`,
    );
    const { file } = writeS3Config({
      endpoint: proxy.url,
      datalake: `base_prefix = "${prefix}"
database = "panorama"
workgroup = "panorama"
account_id = "${ACCOUNT}"
athena_results_bucket = "athena-results"
glue_endpoint = "${glue.url}"
athena_endpoint = "${glue.url}"`,
      body: `[extract]
preset = "none"

[[tables]]
name = "policy_widgets"
partition_fields = ["course_id"]
fields = [ { name = "id", type = "int" }, { name = "course_id", type = "varchar" }, { name = "label", type = "varchar" } ]

[logs]
paths = ["${log}"]
`,
    });
    const panorama = async (...args: string[]) => {
      const result = await runPanorama([...args, "--config", file], { env: cleanEnv() });
      expect(result.code, `${args.join(" ")}: ${result.stderr}`).toBe(0);
      return result;
    };
    proxy.requests.length = 0;
    glue.reset();
    await panorama("catalog", "--create", "--views");
    await panorama("doctor");
    await panorama("run");
    await panorama("log-ship", "--once");
    // A course deleted in MySQL: the full read deletes its object and its Glue partition.
    await db.query("DELETE FROM policy_widgets WHERE course_id = 'course-v1:X+Y+Z'");
    await panorama("run", "--full");
    const widgets = `${prefix}_raw_policy_widgets`;
    expect(glue.partitions("panorama", widgets).map((p) => p.Values)).toEqual([
      ["lms.example.com", "course-v1:A+B+C"],
    ]);
    expect(glue.calls("BatchDeletePartition")).toBe(1);
    // A row deleted without its timestamp moving: verify finds it, --repair stores the partition again.
    await db.query("DELETE FROM policy_widgets WHERE id = 2");
    const found = await runPanorama(["verify", "--config", file], { env: cleanEnv() });
    expect(found.code, found.stderr).toBe(1);
    await panorama("verify", "--repair");
    await panorama("verify");
    await panorama("catalog", "--dry-run");
    // The views again: Athena replaces them (UpdateTable on the caller's behalf).
    await panorama("catalog", "--views");
    await panorama("catalog", "--drop", "--yes");

    // Partitions really were registered: both courses in one call, then each tracking-log day
    // in its own (log-ship registers a day when its first object is stored).
    const days = new Set(
      readFileSync(log, "utf8")
        .split("\n")
        .filter((line) => line.trim() !== "")
        .map((line) => {
          const event = JSON.parse(line) as { time?: string; timestamp?: string };
          return (event.time ?? event.timestamp ?? "").slice(0, 10);
        }),
    );
    expect(days.size).toBeGreaterThan(0);
    expect(glue.calls("BatchCreatePartition")).toBe(1 + days.size);

    const used: (RecordedAction & { prefix?: string })[] = [
      ...glue.actions.filter((a) => a.status === 200 || a.onBehalf),
      ...proxy.requests
        .filter((r) => r.status !== undefined && r.status < 400)
        .map((r) => {
          const [, bucket = "", ...key] = r.path.split("?")[0]!.split("/");
          const objectKey = key.map(decodeURIComponent).join("/");
          const action = s3Action(r.method, r.query);
          return {
            action,
            resources: [`arn:aws:s3:::${bucket}${objectKey ? `/${objectKey}` : ""}`],
            onBehalf: false,
            status: r.status!,
            // What IAM's s3:prefix condition key sees of a listing.
            ...(action === "s3:ListBucket" ? { prefix: r.query.prefix ?? "" } : {}),
          };
        }),
    ];
    expect(
      used.some((a) => a.action === "s3:PutObject" && a.resources[0]!.includes(`/${prefix}/policy_widgets/`)),
    ).toBe(true);

    const printed = await panorama("iam-policy");
    const policy = JSON.parse(printed.stdout) as {
      Statement: {
        Action: string[];
        Resource: string[];
        Condition?: Record<string, Record<string, string[]>>;
      }[];
    };
    // The one condition the policy uses, StringLike on s3:prefix; any other fails the test.
    const conditionHolds = (
      condition: Record<string, Record<string, string[]>> | undefined,
      prefix?: string,
    ) => {
      if (condition === undefined) return true;
      return Object.entries(condition).every(
        ([operator, keys]) =>
          operator === "StringLike" &&
          Object.entries(keys).every(
            ([key, patterns]) =>
              key === "s3:prefix" && prefix !== undefined && patterns.some((p) => arnMatches(p, prefix)),
          ),
      );
    };
    const allowed = (action: string, arn: string, prefix?: string) =>
      policy.Statement.some(
        (s) =>
          s.Action.includes(action) &&
          s.Resource.some((r) => arnMatches(r, arn)) &&
          conditionHolds(s.Condition, prefix),
      );
    const denied = used.flatMap((a) =>
      a.resources
        .filter((arn) => !allowed(a.action, arn, a.prefix))
        .map(
          (arn) =>
            `${a.action} ${arn}${a.prefix === undefined ? "" : ` prefix=${a.prefix}`}${a.onBehalf ? " (by Athena)" : ""}`,
        ),
    );
    expect(denied).toEqual([]);
    // The condition is really checked: a listing outside the base prefix would be denied.
    const bucket = `arn:aws:s3:::${testEnv().s3.bucket}`;
    expect(used.some((a) => a.action === "s3:ListBucket")).toBe(true);
    expect(allowed("s3:ListBucket", bucket, `${prefix}/policy_widgets/`)).toBe(true);
    expect(allowed("s3:ListBucket", bucket, "other/")).toBe(false);
    // Both variants' data objects may be deleted, the tracking logs never.
    const data = `${bucket}/${prefix}/policy_widgets/lms=lms.example.com/policy_widgets.csv`;
    expect(allowed("s3:DeleteObject", data)).toBe(true);
    expect(allowed("s3:DeleteObject", `${data}.gz`)).toBe(true);
    expect(
      allowed("s3:DeleteObject", `${bucket}/${prefix}/tracking_logs/lms=a/year=2024/month=01/day=01/x.gz`),
    ).toBe(false);

    // Granted but not used by this pipeline, each for a reason outside it:
    const elsewhere: Record<string, string> = {
      "s3:AbortMultipartUpload": "only when a multipart upload fails",
      "s3:ListBucketMultipartUploads":
        "only when a CreateMultipartUpload's answer was lost, or a run was killed while it was in flight",
      "s3:GetObject": "reading Athena query results (doctor's test query)",
    };
    const usedActions = new Set(used.map((a) => a.action));
    const unused = [...new Set(policy.Statement.flatMap((s) => s.Action))].filter(
      (action) => !usedActions.has(action) && !(action in elsewhere),
    );
    expect(unused).toEqual([]);
  },
  120_000,
);
