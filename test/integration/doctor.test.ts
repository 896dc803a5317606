// `panorama doctor` against a healthy environment and against each broken part in turn: the right
// check fails, with its hint, and the others still run.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { lookup } from "node:dns/promises";
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ObjectId } from "mongodb";
import { planCatalog } from "../../src/catalog/catalog.ts";
import { glueFor } from "../../src/catalog/register.ts";
import { tableInput } from "../../src/catalog/tables.ts";
import { loadConfig } from "../../src/config/load.ts";
import { type CheckResult, runChecks } from "../../src/doctor.ts";
import { COURSE_INDEX_TABLE } from "../../src/extract/course-structure-fields.ts";
import { type AwsJsonServer, startTestGlue } from "../support/aws-json-server.ts";
import { cleanEnv, runPanorama } from "../support/cli.ts";
import { skipWithoutTestEnv, testEnv } from "../support/env.ts";
import { MongoTestServer } from "../support/mongo-server.ts";
import { rootConnection, testConnection, writeTestConfig } from "../support/mysql.ts";
import { COURSE_INDEX_DDL } from "../support/olx.ts";
import { writeS3Config } from "../support/s3-config.ts";
import { type S3Proxy, startS3Proxy } from "../support/s3-proxy.ts";

const skip = skipWithoutTestEnv();
const tutorNameResolves = await lookup("mysql").then(
  () => true,
  () => false,
);
const env = cleanEnv();
const TABLES = `[extract]
preset = "none"

[[tables]]
name = "doctor_a"

[[tables]]
name = "doctor_b"
fields = [ { name = "id", type = "int" }, { name = "name", type = "varchar" } ]
`;

async function checks(file: string): Promise<CheckResult[]> {
  const results: CheckResult[] = [];
  for await (const result of runChecks({ configPath: file, env })) results.push(result);
  return results;
}

function byName(results: CheckResult[], name: string): CheckResult {
  const found = results.find((r) => r.check === name);
  if (!found) throw new Error(`no check "${name}" in ${results.map((r) => r.check).join(", ")}`);
  return found;
}

/** A config with a readable tracking log, on the scratch database. */
function healthy(extra = "", options: { password?: string } = {}) {
  const setup = writeTestConfig(
    `${TABLES}
[logs]
paths = ["LOGDIR/tracking.log*"]
${extra}`,
    options,
  );
  const logs = join(setup.dir, "logs");
  mkdirSync(logs);
  writeFileSync(join(logs, "tracking.log"), '{"event_type":"x"}\n');
  const text = Bun.file(setup.file);
  return {
    ...setup,
    logs,
    patch: async () => writeFileSync(setup.file, (await text.text()).replace("LOGDIR", logs)),
  };
}

beforeAll(async () => {
  if (skip) return;
  const db = await testConnection(testEnv().mysql.scratchDatabase);
  await db.query(
    "DROP TABLE IF EXISTS doctor_a, doctor_b; CREATE TABLE doctor_a (id INT PRIMARY KEY, v VARCHAR(10)); CREATE TABLE doctor_b (id INT PRIMARY KEY, name VARCHAR(10))",
  );
  await db.end();
});

describe.skipIf(skip)("panorama doctor", () => {
  afterAll(async () => {
    const root = await rootConnection();
    await root.query("DROP USER IF EXISTS 'doctor_limited'@'%'");
    await root.end();
  });

  test("a healthy environment: every check passes, exit 0", async () => {
    const setup = healthy();
    await setup.patch();
    const results = await checks(setup.file);
    expect(results.filter((r) => !r.ok)).toEqual([]);
    expect(results.map((r) => r.check)).toEqual([
      "configuration",
      "file permissions",
      "pseudonyms",
      "state directory",
      "local datalake",
      "MySQL connection",
      "MySQL SELECT",
      "tracking logs",
    ]);
    const cli = await runPanorama(["--config", setup.file, "doctor"], { env });
    expect(cli.code).toBe(0);
    expect(cli.stdout).toContain("✓ MySQL SELECT: allowed on all 2 table(s)");
    expect(cli.stdout).toEndWith("all checks passed\n");
  });

  test("a bad configuration: one ✗ naming the key, nothing else tried, exit 1", async () => {
    const setup = writeTestConfig("[mysql.nope]\nx = 1\n");
    const cli = await runPanorama(["--config", setup.file, "doctor", "--json"], { env });
    expect(cli.code).toBe(1);
    const results = JSON.parse(cli.stdout) as CheckResult[];
    expect(results).toHaveLength(1);
    expect(results[0]?.check).toBe("configuration");
    expect(results[0]?.ok).toBe(false);
    expect(results[0]?.detail).toContain("mysql.nope");
  });

  test("pseudonyms: off said; on with a good key ✓; a key readable by others ✗ with chmod; a missing key fails the configuration with how to make one", async () => {
    const off = healthy();
    await off.patch();
    expect(byName(await checks(off.file), "pseudonyms")).toMatchObject({
      ok: true,
      detail: "off (personal values are written as they are)",
    });

    const key = join(off.dir, "pseudonym.key");
    writeFileSync(key, Buffer.alloc(40, 7), { mode: 0o600 });
    const on = healthy(`\n[privacy]\npseudonymize = true\nkey_file = "${key}"\n`);
    await on.patch();
    const good = byName(await checks(on.file), "pseudonyms");
    expect(good.ok).toBe(true);
    expect(good.detail).toBe(
      `on, key ${key}: 0 column(s) and 10 tracking-log field(s) pseudonymized; the key holds 40 bytes, readable by its owner only`,
    );

    chmodSync(key, 0o644);
    const results = await checks(on.file);
    const exposed = byName(results, "pseudonyms");
    expect(exposed.ok).toBe(false);
    expect(exposed.detail).toContain(
      `${key} holds the pseudonym key and is readable by group or others (mode 0644)`,
    );
    expect(exposed.hint).toContain(`chmod 600 ${key}`);
    expect(byName(results, "file permissions").ok).toBe(true);

    rmSync(key);
    const cli = await runPanorama(["--config", on.file, "doctor", "--json"], { env });
    expect(cli.code).toBe(1);
    const missing = JSON.parse(cli.stdout) as CheckResult[];
    expect(missing).toHaveLength(1);
    expect(missing[0]).toMatchObject({
      check: "configuration",
      ok: false,
      detail: `${on.file}: privacy.key_file: no such key file: ${key}`,
    });
    expect(missing[0]?.hint).toContain("`panorama init` writes one (0600)");
    // Every other command: exit 2 with the same message and fix.
    const run = await runPanorama(["--config", on.file, "run"], { env });
    expect(run.code).toBe(2);
    expect(run.stderr).toContain("privacy.key_file: no such key file");
    expect(run.stderr).toContain("head -c 32 /dev/urandom");
  });

  test("a wrong MySQL password: ✗ connection with the credentials hint, never the password; the others still run", async () => {
    const setup = healthy("", { password: "wrong-secret-4821" });
    await setup.patch();
    const results = await checks(setup.file);
    const mysql = byName(results, "MySQL connection");
    expect(mysql.ok).toBe(false);
    expect(mysql.detail).toContain(testEnv().mysql.user);
    expect(mysql.hint).toContain("check [mysql] user and password");
    expect(byName(results, "tracking logs").ok).toBe(true);
    const cli = await runPanorama(["--config", setup.file, "doctor"], { env });
    expect(cli.code).toBe(1);
    expect(cli.stdout).toContain("✗ MySQL connection");
    expect(cli.stdout + cli.stderr).not.toContain("wrong-secret-4821");
  });

  // Skipped on a network where a host is named mysql.
  test.skipIf(tutorNameResolves)(
    '[mysql] host = "mysql" that does not resolve: ✗ connection, the hint says it is Tutor\'s container name',
    async () => {
      const setup = healthy();
      await setup.patch();
      const text = await Bun.file(setup.file).text();
      writeFileSync(setup.file, text.replace(/^host = ".*"$/m, 'host = "mysql"'));
      const mysql = byName(await checks(setup.file), "MySQL connection");
      expect(mysql.ok).toBe(false);
      expect(mysql.hint).toBe(
        'the host name does not resolve: check [mysql] host; "mysql" is Tutor\'s container name, which resolves only inside Tutor\'s Docker network: set [mysql] host = "127.0.0.1" and port to the port Tutor publishes it on, or run panorama inside that network',
      );
    },
  );

  test("a missing grant: ✗ SELECT naming the table it cannot read and the GRANT to run", async () => {
    const root = await rootConnection();
    const scratch = testEnv().mysql.scratchDatabase;
    await root.query(
      `DROP USER IF EXISTS 'doctor_limited'@'%'; CREATE USER 'doctor_limited'@'%' IDENTIFIED BY 'limited-pw'; GRANT SELECT ON \`${scratch}\`.doctor_b TO 'doctor_limited'@'%'`,
    );
    await root.end();
    const setup = healthy();
    await setup.patch();
    writeFileSync(
      setup.file,
      (await Bun.file(setup.file).text())
        .replace(/user = ".*"/, 'user = "doctor_limited"')
        .replace(/password = ".*"/, 'password = "limited-pw"'),
    );
    const results = await checks(setup.file);
    expect(byName(results, "MySQL connection").ok).toBe(true);
    const select = byName(results, "MySQL SELECT");
    expect(select.ok).toBe(false);
    expect(select.detail).toContain("1 of 2 table(s)");
    expect(select.detail).toContain("doctor_a");
    expect(select.detail).not.toContain("doctor_b");
    expect(select.hint).toContain(`GRANT SELECT ON ${scratch}.* TO 'doctor_limited'`);
  });

  test("a configured column the table lacks fails the SELECT check", async () => {
    const setup = healthy();
    await setup.patch();
    writeFileSync(setup.file, (await Bun.file(setup.file).text()).replace('name = "name"', 'name = "nom"'));
    const select = byName(await checks(setup.file), "MySQL SELECT");
    expect(select.ok).toBe(false);
    expect(select.detail).toContain("doctor_b");
    expect(select.detail).toContain("nom");
    // Nothing is refused: the fix is about the table's fields, not a GRANT.
    expect(select.hint).toStartWith("a missing table or column");
    expect(select.hint).not.toContain("GRANT");
  });

  test("a table that does not exist: the fix leads with its name in [[tables]], not with a GRANT; a typo is told the close name", async () => {
    const setup = healthy('[[tables]]\nname = "doctor_absent"\n\n[[tables]]\nname = "doctor_bb"\n');
    await setup.patch();
    const select = byName(await checks(setup.file), "MySQL SELECT");
    expect(select.detail).toMatch(/doctor_absent \(ER_NO_SUCH_TABLE: [^;)]*\)/);
    expect(select.detail).toMatch(/doctor_bb \(ER_NO_SUCH_TABLE: .*; it has a table doctor_b\)/);
    expect(select.hint).toStartWith("a missing table or column: fix the name in [[tables]] or its fields");
    expect(select.hint).not.toContain("GRANT");
  });

  test("DEMO mode: ✗ mode saying nothing will be extracted; MySQL and S3 are not tried; exit 1", async () => {
    const setup = writeTestConfig(TABLES, { mode: "DEMO" });
    const cli = await runPanorama(["--config", setup.file, "doctor"], { env });
    expect(cli.code).toBe(1);
    expect(cli.stdout).toContain("✗ mode: DEMO: nothing is extracted or shipped until mode is set");
    expect(cli.stdout).toContain(`→ set mode = "FREE", "SAAS" or "CUSTOM" in ${setup.file}`);
    expect(cli.stdout).not.toContain("all checks passed");
    expect(cli.stdout).not.toMatch(/^. MySQL/m);
  });

  test("each check is announced as it starts, before its result", async () => {
    const setup = healthy();
    await setup.patch();
    const events: string[] = [];
    for await (const result of runChecks({
      configPath: setup.file,
      env,
      onStart: (c) => events.push(`start ${c}`),
    })) {
      events.push(`done ${result.check}`);
    }
    // Every check after the configuration's own is preceded by the start of a check named like it.
    const done = events.filter((e) => e.startsWith("done "));
    expect(done.length).toBeGreaterThan(4);
    for (const [i, event] of events.entries()) {
      if (!event.startsWith("done ") || ["done configuration", "done file permissions"].includes(event))
        continue;
      const started = events.slice(0, i).findLast((e) => e.startsWith("start "))!;
      expect(event.slice(5)).toStartWith(started.slice(6));
    }
  });

  test("no tracking log where logs.paths points: ✗ with the paths", async () => {
    const setup = healthy();
    writeFileSync(
      setup.file,
      (await Bun.file(setup.file).text()).replace("LOGDIR", join(setup.dir, "nowhere")),
    );
    const logs = byName(await checks(setup.file), "tracking logs");
    expect(logs.ok).toBe(false);
    expect(logs.detail).toContain(join(setup.dir, "nowhere"));
  });

  test("a tracking log path that does not exist: ✗ with the logs.paths hint, not a permission one", async () => {
    const setup = healthy();
    const missing = join(setup.dir, "logs", "lms-tracking.log");
    writeFileSync(setup.file, (await Bun.file(setup.file).text()).replace("LOGDIR/tracking.log*", missing));
    const logs = byName(await checks(setup.file), "tracking logs");
    expect(logs.ok).toBe(false);
    expect(logs.detail).toBe(`cannot read ${missing} (ENOENT)`);
    expect(logs.hint).toStartWith("set logs.paths to the LMS tracking log on this host");
    expect(logs.hint).toContain("data/lms/logs/tracking.log");
  });

  test("a host whose tables need no MySQL (log shipping only): the MySQL check says it is not used", async () => {
    const setup = writeTestConfig(`[extract]\npreset = "none"\n`, { password: "not-the-password" });
    const results = await checks(setup.file);
    expect(byName(results, "MySQL connection")).toMatchObject({
      ok: true,
      detail: "not used: no table is read from MySQL",
    });
    expect(results.some((r) => r.check.startsWith("MySQL SELECT"))).toBe(false);
  });

  test("an unreadable tracking log: ✗ naming the file", async () => {
    const setup = healthy();
    await setup.patch();
    const log = join(setup.logs, "tracking.log");
    chmodSync(log, 0o600);
    // root reads any file: run the doctor as nobody then, with everything else readable by it.
    const asNobody = process.getuid?.() === 0;
    if (asNobody) {
      for (const path of [setup.dir, setup.logs]) chmodSync(path, 0o777);
      chmodSync(setup.file, 0o644);
    } else {
      chmodSync(log, 0o000);
    }
    const prefix = asNobody ? ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"] : [];
    const child = Bun.spawn(
      [
        ...prefix,
        process.execPath,
        join(import.meta.dir, "..", "..", "src", "cli.ts"),
        "--config",
        setup.file,
        "doctor",
        "--json",
      ],
      {
        env: Object.fromEntries(
          Object.entries({ ...process.env, ...env }).filter(([, v]) => v !== undefined),
        ) as Record<string, string>,
        stdout: "pipe",
        stderr: "pipe",
      },
    );
    const [stdout, code] = await Promise.all([new Response(child.stdout).text(), child.exited]);
    expect(code).toBe(1);
    const logs = byName(JSON.parse(stdout) as CheckResult[], "tracking logs");
    expect(logs.ok).toBe(false);
    expect(logs.detail).toContain(`cannot read ${log} (EACCES)`);
    expect(logs.hint).toContain("add it to the group owning them");
  });

  test("a config file holding a secret, readable by others: ✗ permissions with the chmod", async () => {
    const setup = healthy();
    await setup.patch();
    chmodSync(setup.file, 0o644);
    const permissions = byName(await checks(setup.file), "file permissions");
    expect(permissions.ok).toBe(false);
    expect(permissions.detail).toContain(`chmod 600 ${setup.file}`);
  });

  test("a state directory still to be made: ✓, judged by where it goes, and not made by doctor", async () => {
    const setup = healthy();
    await setup.patch();
    const state = join(setup.dir, "not", "yet");
    writeFileSync(
      setup.file,
      (await Bun.file(setup.file).text()).replace(/state_dir = ".*"/, `state_dir = "${state}"`),
    );
    const check = byName(await checks(setup.file), "state directory");
    expect(check.ok).toBe(true);
    expect(check.detail).toBe(`${state} does not exist yet: the first run makes it in ${setup.dir}`);
    expect(existsSync(join(setup.dir, "not"))).toBe(false);
  });

  test("an unwritable state directory: ✗ naming it", async () => {
    const setup = healthy();
    await setup.patch();
    writeFileSync(
      setup.file,
      (await Bun.file(setup.file).text()).replace(/state_dir = ".*"/, `state_dir = "${setup.file}/state"`),
    );
    const state = byName(await checks(setup.file), "state directory");
    expect(state.ok).toBe(false);
    expect(state.detail).toBe(`${setup.file}/state: ENOTDIR`);
    // A file in the way: no permission would fix it.
    expect(state.hint).toBe(
      "a file stands where a directory of that path should be: set state_dir to a directory",
    );
  });
});

// AWS: s3rver behind the signature-checking proxy, and the Glue + Athena stand-in of
// test/support/aws-json-server.ts (there is no AWS here; it validates requests against the AWS
// API models and verifies signatures like AWS).
describe.skipIf(skip)("panorama doctor on AWS", () => {
  let glue: AwsJsonServer;
  let proxy: S3Proxy;
  const fast = { retry: { attempts: 2, baseMs: 1, maxMs: 2 } };

  beforeAll(async () => {
    const s3 = testEnv().s3;
    glue = await startTestGlue();
    proxy = await startS3Proxy({
      upstream: s3.directEndpoint,
      credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
    });
  });
  const made: string[] = [];
  afterAll(async () => {
    await glue?.stop();
    await proxy?.close();
    for (const dir of made) rmSync(dir, { recursive: true, force: true });
  });

  function awsConfig(
    options: { database?: string; endpoint?: string; mode?: string; glueEndpoint?: string } = {},
  ) {
    const setup = writeS3Config({
      endpoint: options.endpoint ?? proxy.url,
      // A base prefix of its own: the kill tests sharing the bucket leave objects s3rver cannot list.
      datalake: `base_prefix = "doctor"
database = "${options.database ?? "panorama"}"
workgroup = "panorama"
glue_endpoint = "${options.glueEndpoint ?? glue.url}"
athena_endpoint = "${options.glueEndpoint ?? glue.url}"`,
      body: `${TABLES}
[logs]
paths = ["${import.meta.path}"]
`,
    });
    made.push(setup.dir);
    if (options.mode)
      writeFileSync(
        setup.file,
        readFileSync(setup.file, "utf8").replace('mode = "CUSTOM"', `mode = "${options.mode}"`),
      );
    return setup;
  }

  async function awsChecks(file: string): Promise<CheckResult[]> {
    const results: CheckResult[] = [];
    for await (const result of runChecks({ configPath: file, env, aws: fast })) results.push(result);
    return results;
  }

  test("healthy: clock, credentials, S3 put and delete of PanoramaConnectionTest, Glue database, Athena query", async () => {
    proxy.setFaults(undefined);
    const setup = awsConfig();
    const before = proxy.requests.length;
    const results = await awsChecks(setup.file);
    expect(results.filter((r) => !r.ok)).toEqual([]);
    expect(results.map((r) => r.check).slice(-7)).toEqual([
      "clock",
      "AWS credentials",
      "S3 write",
      "S3 list",
      "Glue database",
      "raw tables",
      "Athena workgroup",
    ]);
    expect(byName(results, "raw tables").detail).toBe(
      "0 line up with the layout, 2 not created yet (`panorama catalog` creates them)",
    );
    const sent = proxy.requests.slice(before).map((r) => `${r.method} ${r.path} ${r.status}`);
    expect(sent).toContain(`PUT /${testEnv().s3.bucket}/PanoramaConnectionTest 200`);
    expect(sent).toContain(`DELETE /${testEnv().s3.bucket}/PanoramaConnectionTest 204`);
    expect(byName(results, "AWS credentials").detail).toContain(`…${testEnv().s3.accessKeyId.slice(-4)}`);
    expect(glue.queries.at(-1)?.sql).toBe("SELECT 1");
  });

  test("S3 denied: ✗ S3 write naming the bucket and key, with the iam-policy hint", async () => {
    proxy.setFaults((r) =>
      r.method === "PUT"
        ? { kind: "error", status: 403, code: "AccessDenied", message: "Access Denied" }
        : undefined,
    );
    try {
      const results = await awsChecks(awsConfig().file);
      const write = byName(results, "S3 write");
      expect(write.ok).toBe(false);
      expect(write.detail).toContain(`s3://${testEnv().s3.bucket}/PanoramaConnectionTest`);
      expect(write.detail).toContain("AccessDenied");
      expect(write.hint).toContain("panorama iam-policy");
      expect(byName(results, "Glue database").ok).toBe(true);
    } finally {
      proxy.setFaults(undefined);
    }
  });

  test("listing denied: ✗ S3 list naming the bucket, with the iam-policy hint", async () => {
    proxy.setFaults((r) =>
      r.method === "GET" && r.query["list-type"] === "2"
        ? { kind: "error", status: 403, code: "AccessDenied", message: "Access Denied" }
        : undefined,
    );
    try {
      const results = await awsChecks(awsConfig().file);
      const list = byName(results, "S3 list");
      expect(list.ok).toBe(false);
      expect(list.detail).toContain(`s3://${testEnv().s3.bucket}`);
      expect(list.detail).toContain("AccessDenied");
      expect(list.hint).toBe(
        "grant s3:ListBucket on the bucket with the s3:prefix condition of `panorama iam-policy`",
      );
      expect(byName(results, "S3 write").ok).toBe(true);
    } finally {
      proxy.setFaults(undefined);
    }
  });

  test("listing answered with a 500 InternalError: ✗ S3 list saying S3 answered an error, no IAM grant", async () => {
    // The proxy stands in for S3 answering an error of its own to the list call (each attempt).
    proxy.setFaults((r) =>
      r.method === "GET" && r.query["list-type"] === "2"
        ? { kind: "error", status: 500, code: "InternalError", message: "We encountered an internal error." }
        : undefined,
    );
    try {
      const results = await awsChecks(awsConfig().file);
      const list = byName(results, "S3 list");
      expect(list.ok).toBe(false);
      expect(list.detail).toBe(
        `ListObjectsV2 s3://${testEnv().s3.bucket} failed: InternalError (HTTP 500): We encountered an internal error.`,
      );
      expect(list.hint).toBe(
        "S3 answered with an error of its own, not a refusal: run doctor again later; if it lasts, check datalake.endpoint (when set) and the service's health",
      );
      expect(byName(results, "S3 write").ok).toBe(true);
    } finally {
      proxy.setFaults(undefined);
    }
  });

  test("listing cut off (connection reset every attempt): ✗ S3 list saying S3 could not be reached, no IAM grant", async () => {
    proxy.setFaults((r) =>
      r.method === "GET" && r.query["list-type"] === "2" ? { kind: "reset" } : undefined,
    );
    try {
      const results = await awsChecks(awsConfig().file);
      const list = byName(results, "S3 list");
      expect(list.ok).toBe(false);
      expect(list.detail).toBe(
        `ListObjectsV2 s3://${testEnv().s3.bucket} failed: NetworkError: ECONNRESET (${proxy.url})`,
      );
      expect(list.hint).toBe(
        "S3 could not be reached: check datalake.endpoint (when empty, the AWS endpoint of datalake.region) and the network path to that address (proxy, firewall, DNS)",
      );
    } finally {
      proxy.setFaults(undefined);
    }
  });

  test("Glue and Athena answering 500: ✗ raw tables and ✗ Athena workgroup saying so, not an IAM or a workgroup fix", async () => {
    // A tiny server standing in for Glue and Athena that find the database, then answer every
    // other call with an error of their own.
    const failing = Bun.serve({
      port: 0,
      hostname: "127.0.0.1",
      fetch: (req) =>
        req.headers.get("x-amz-target") === "AWSGlue.GetDatabase"
          ? Response.json({ Database: { Name: "panorama" } })
          : Response.json(
              { __type: "InternalServiceException", message: "Internal service error" },
              { status: 500 },
            ),
    });
    try {
      const results = await awsChecks(awsConfig({ glueEndpoint: `http://127.0.0.1:${failing.port}` }).file);
      expect(byName(results, "Glue database").ok).toBe(true);
      const raw = byName(results, "raw tables");
      expect(raw.ok).toBe(false);
      expect(raw.detail).toContain(
        "GetTable table panorama.doctor_raw_doctor_a failed: InternalServiceException (HTTP 500)",
      );
      expect(raw.hint).toBe(
        "Glue answered with an error of its own, not a refusal: run doctor again later; if it lasts, check datalake.glue_endpoint (when set) and the service's health",
      );
      const athena = byName(results, "Athena workgroup");
      expect(athena.ok).toBe(false);
      expect(athena.detail).toContain("StartQueryExecution");
      expect(athena.hint).toBe(
        "Athena answered with an error of its own, not a refusal: run doctor again later; if it lasts, check datalake.athena_endpoint (when set) and the service's health",
      );
    } finally {
      failing.stop(true);
    }
  });

  test("Glue unreachable: ✗ Glue database saying it could not be reached, naming its endpoint key", async () => {
    const server = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    const port = server.port;
    server.stop(true);
    const results = await awsChecks(awsConfig({ glueEndpoint: `http://127.0.0.1:${port}` }).file);
    const database = byName(results, "Glue database");
    expect(database.ok).toBe(false);
    expect(database.detail).toBe(
      `Glue GetDatabase database panorama failed: NetworkError: ECONNREFUSED (http://127.0.0.1:${port})`,
    );
    expect(database.hint).toBe(
      "Glue could not be reached: check datalake.glue_endpoint (when empty, the AWS endpoint of datalake.region) and the network path to that address (proxy, firewall, DNS)",
    );
  });

  test("S3 unreachable: ✗ S3 write with the cause, its fix said once, on its own line", async () => {
    const server = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    const port = server.port;
    server.stop(true);
    const setup = awsConfig({ endpoint: `http://127.0.0.1:${port}` });
    const cli = await runPanorama(["--config", setup.file, "doctor"], { env });
    expect(cli.code).toBe(1);
    const lines = cli.stdout.split("\n");
    const write = lines.findIndex((l) => l.startsWith("✗ S3 write: "));
    expect(lines[write]).toContain("ECONNREFUSED");
    const fix = lines[write + 1]!;
    expect(fix).toBe(
      "    → S3 could not be reached: check datalake.endpoint (when empty, the AWS endpoint of datalake.region) and the network path to that address (proxy, firewall, DNS)",
    );
    // No fix is said in the message above it: not this one, not the client's own.
    expect(lines[write]).not.toContain("check ");
  });

  test("a missing Glue database: ✗ naming it, with a hint", async () => {
    const results = await awsChecks(awsConfig({ database: "nodb" }).file);
    const database = byName(results, "Glue database");
    expect(database.ok).toBe(false);
    expect(database.detail).toContain("nodb");
    expect(database.hint).toBeTruthy();
  });

  test("raw tables: one that lines up passes, a misaligned one is ✗ naming table and columns, with the fix", async () => {
    glue.addDatabase("doctor_layout");
    const setup = awsConfig({ database: "doctor_layout" });
    const { config } = await loadConfig({ configPath: setup.file, env });
    const catalog = glueFor(config, fast);
    const plan = await planCatalog(config, config.tables, false);
    const [a, b] = plan.tables.map((t) => t.table);
    await catalog.createTable(tableInput(a!));
    await catalog.createTable(tableInput({ ...b!, columns: ["name", "id"] }));
    const results = await awsChecks(setup.file);
    rmSync(setup.dir, { recursive: true, force: true });
    const raw = byName(results, "raw tables");
    expect(raw.ok).toBe(false);
    expect(raw.detail).toStartWith(
      '1 of 2 would be read into the wrong columns: table doctor_raw_doctor_b does not line up with the layout of doctor_b: "name", "id" in another order',
    );
    expect(raw.hint).toContain("panorama catalog --drop --yes --tables doctor_b");
    expect(raw.detail).not.toContain("doctor_a");
  });

  test("FREE mode checks the Glue database but never runs an Athena query", async () => {
    const queries = glue.queries.length;
    const results = await awsChecks(awsConfig({ mode: "FREE" }).file);
    expect(byName(results, "Glue database").ok).toBe(true);
    expect(results.some((r) => r.check === "Athena workgroup")).toBe(false);
    expect(glue.queries.length).toBe(queries);
  });

  test("a skewed clock: the S3 server's Date header an hour off gives ✗ clock with the NTP hint", async () => {
    const skewed = Bun.serve({
      port: 0,
      hostname: "127.0.0.1",
      fetch: () =>
        new Response(null, { status: 403, headers: { date: new Date(Date.now() - 3600_000).toUTCString() } }),
    });
    try {
      const results = await awsChecks(awsConfig({ endpoint: `http://127.0.0.1:${skewed.port}` }).file);
      const clock = byName(results, "clock");
      expect(clock.ok).toBe(false);
      expect(clock.detail).toMatch(/local clock 3[56]\d\d s ahead of 127\.0\.0\.1:/);
      expect(clock.hint).toContain("15 minutes");
    } finally {
      skewed.stop(true);
    }
  });
});

// MongoDB: the real driver against test/support/mongo-server.ts, which stands in for MongoDB
// (there is none here) by speaking its wire protocol.
describe.skipIf(skip)("panorama doctor on MongoDB", () => {
  const user = { user: "panorama", password: "mongo-secret-77", db: "admin" };
  let mongo: MongoTestServer;
  beforeAll(async () => {
    mongo = await MongoTestServer.start({ users: [user] });
  });
  afterAll(() => mongo?.close());

  /** Course structures alone, read as `user` (with `password`); `mongodb`: more of [mongodb]. */
  function mongoConfig(options: { password?: string; mongodb?: string } = {}) {
    return writeTestConfig(`[extract]
include = ["course_structures"]

[mongodb]
host = "127.0.0.1"
port = ${mongo.port}
user = "${user.user}"
password = "${options.password ?? user.password}"
auth_source = "admin"
${options.mongodb ?? ""}
`);
  }

  test("reachable, with the modulestore collections readable", async () => {
    const results = await checks(mongoConfig({ mongodb: "use_split_mongo = false" }).file);
    const check = byName(results, "MongoDB");
    expect(check).toMatchObject({ ok: true });
    expect(check.detail).toContain("modulestore.active_versions");
    expect(mongo.commands.filter((c) => c.name === "find").map((c) => c.body.find)).toEqual(
      expect.arrayContaining([
        "modulestore.structures",
        "modulestore.definitions",
        "modulestore.active_versions",
      ]),
    );
  });

  test("a user without the read role: ✗ MongoDB with the grant to run", async () => {
    // No credentials: the handshake and ping pass, the first find is refused (Unauthorized).
    const setup = writeTestConfig(`[extract]
include = ["course_structures"]

[mongodb]
host = "127.0.0.1"
port = ${mongo.port}
use_split_mongo = false
`);
    const check = byName(await checks(setup.file), "MongoDB");
    rmSync(setup.dir, { recursive: true, force: true });
    expect(check.ok).toBe(false);
    expect(check.detail).toContain("cannot read the modulestore: command find requires authentication");
    expect(check.hint).toStartWith(
      'give the user the read role on the database: db.grantRolesToUser("<user>"',
    );
  });

  test("the wrong database (no structure where MySQL's course index lists courses): ✗ with the fix", async () => {
    const setup = mongoConfig({ mongodb: 'database = "openedx"' });
    const db = await testConnection(testEnv().mysql.scratchDatabase);
    try {
      const version = new ObjectId();
      await db.query(`DROP TABLE IF EXISTS ${COURSE_INDEX_TABLE}`);
      await db.query(COURSE_INDEX_DDL);
      // No course yet: nothing tells an empty modulestore from the wrong database.
      const empty = byName(await checks(setup.file), "MongoDB");
      expect(empty.ok).toBe(true);
      expect(empty.detail).toContain('no course structure in "openedx" yet');

      await db.query(
        `INSERT INTO ${COURSE_INDEX_TABLE} (objectid, course_id, org, draft_version, published_version, library_version, wiki_slug, base_store, edited_on, last_update) VALUES (?, 'course-v1:Org+C1+R1', 'Org', ?, ?, '', 'w', 'mongodb', NOW(), NOW())`,
        [new ObjectId().toHexString(), version.toHexString(), version.toHexString()],
      );
      const wrong = byName(await checks(setup.file), "MongoDB");
      expect(wrong.ok).toBe(false);
      expect(wrong.detail).toContain(
        `modulestore.structures is empty, but MySQL ${COURSE_INDEX_TABLE} lists 1 published course(s)`,
      );
      expect(wrong.hint).toStartWith('check [mongodb] database (or the database of uri; "openedx" now)');

      mongo.insert("openedx", "modulestore.structures", [
        { _id: version, root: ["course", "course"], blocks: [] },
      ]);
      const right = byName(await checks(setup.file), "MongoDB");
      expect(right).toMatchObject({ ok: true });
      expect(right.detail).not.toContain("no course structure");
    } finally {
      mongo.reset();
      await db.query(`DROP TABLE IF EXISTS ${COURSE_INDEX_TABLE}`);
      await db.end();
      rmSync(setup.dir, { recursive: true, force: true });
    }
  });

  test("no course index table (a release before Maple) with use_split_mongo: ✗ saying so, with use_split_mongo = false as the fix", async () => {
    const setup = mongoConfig();
    const db = await testConnection(testEnv().mysql.scratchDatabase);
    try {
      await db.query(`DROP TABLE IF EXISTS ${COURSE_INDEX_TABLE}`);
      const check = byName(await checks(setup.file), "MySQL SELECT");
      expect(check.ok).toBe(false);
      expect(check.detail).toContain(
        `${COURSE_INDEX_TABLE} (does not exist, so this Open edX keeps its course index in MongoDB (releases before Maple))`,
      );
      // The operator never named the table: no [[tables]] fix, no GRANT.
      expect(check.hint).toBe("set [mongodb] use_split_mongo = false (env PANORAMA_USE_SPLIT_MONGO=false)");
    } finally {
      await db.end();
      rmSync(setup.dir, { recursive: true, force: true });
    }
  });

  test("a wrong password: ✗ MongoDB with a hint, never the password", async () => {
    const check = byName(
      await checks(mongoConfig({ password: "not-the-password-31", mongodb: "use_split_mongo = false" }).file),
      "MongoDB",
    );
    expect(check.ok).toBe(false);
    expect(check.detail).toContain("panorama@127.0.0.1");
    expect(check.detail).not.toContain("not-the-password-31");
    expect(check.hint).toBeTruthy();
  });
});
