// Every registered command in each mode (DESIGN §1), through the real CLI: DEMO does nothing with
// data and says so (exit 0); FREE ships no tracking logs (exit 0, a message); SAAS registers
// partitions but leaves the catalog's tables and views to the provider; CUSTOM does everything.
// The command list is read from src/commands/index.ts, so a new command without an expectation
// here fails the coverage test.
//
// A local datalake on the private MariaDB (generated Open edX data) for every mode; the catalog's
// mode rules also against an S3 datalake (s3rver behind the signing proxy) and a loopback Glue +
// Athena (test/support/aws-json-server.ts: there is no AWS in the tests).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import {
  copyFileSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { commands } from "../../src/commands/index.ts";
import { MODES, type Mode } from "../../src/config/types.ts";
import { type AwsJsonServer, startTestGlue } from "../support/aws-json-server.ts";
import { type CliResult, cleanEnv, ROOT, runPanorama } from "../support/cli.ts";
import { skipWithoutTestEnv, testEnv } from "../support/env.ts";
import { dropTestDatabase, generatedDatabase } from "../support/mysql.ts";

const skip = skipWithoutTestEnv();
const DATABASE = "panorama_modes";
const TRACKING = join(ROOT, "test", "fixtures", "tracking", "events.jsonl");
const TRACKING_EVENTS = readFileSync(TRACKING, "utf8").split("\n").filter(Boolean).length;
const DATA_COMMANDS = ["run", "extract", "upload", "catalog", "log-ship"];

let work = "";
let generated: Record<string, number> = {};
let glue: AwsJsonServer;

/** Files under dir, recursively ([] when it does not exist). */
function files(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? files(path) : [path];
  });
}

/** Rows per table in a local datalake: CSV lines minus the header, tracking-log events. */
function datalakeRows(datalake: string): Record<string, number> {
  const base = join(datalake, "openedx");
  const rows: Record<string, number> = {};
  for (const table of existsSync(base) ? readdirSync(base) : []) {
    rows[table] = files(join(base, table)).reduce((n, file) => {
      const bytes = readFileSync(file);
      const text = (file.endsWith(".gz") ? gunzipSync(bytes) : bytes).toString("utf8");
      const lines = text.split("\n").filter((l) => l !== "").length;
      return n + lines - (table === "tracking_logs" ? 0 : 1);
    }, 0);
  }
  return rows;
}

interface ModeSetup {
  dir: string;
  file: string;
  stateDir: string;
  datalake: string;
}

function writeModeConfig(mode: Mode, extra = "", datalake = ""): ModeSetup {
  const env = testEnv().mysql;
  const dir = mkdtempSync(join(work, `${mode}-`));
  const file = join(dir, "panorama.toml");
  const log = join(dir, "tracking.log");
  copyFileSync(TRACKING, log);
  writeFileSync(
    file,
    `mode = "${mode}"
lms_host = "${mode.toLowerCase()}.example.com"
state_dir = "${join(dir, "state")}"
${extra}
[datalake]
${datalake || `target = "local"\npath = "${join(dir, "datalake")}"`}

[mysql]
host = "${env.host}"
port = ${env.port}
user = "${env.user}"
password = "${env.password}"
database = "${DATABASE}"

[extract]
exclude = ["course_structures"]

[logs]
paths = ["${log}"]
`,
    { mode: 0o600 },
  );
  return { dir, file, stateDir: join(dir, "state"), datalake: join(dir, "datalake") };
}

const panorama = (setup: ModeSetup, args: string[]): Promise<CliResult> =>
  runPanorama(["--config", setup.file, ...args], { env: cleanEnv() });

/** Exit 0; on failure the message shows what the command said. */
function expectOk(result: CliResult): void {
  expect({ code: result.code, stderr: result.code === 0 ? "" : result.stderr }).toEqual({
    code: 0,
    stderr: "",
  });
}

/** What the refusal calls each job: an operator's words, not the code's names. */
const SKIPPED: Record<string, string> = {
  extract: "the extraction of the MySQL tables is skipped",
  upload: "the upload to the datalake is skipped",
  "catalog-partitions": "the registration of partitions in Glue is skipped",
  "log-ship": "the shipping of tracking logs is skipped",
};

/** What a data command refused by the mode looks like: exit 0, the reason, nothing on stdout. */
function expectRefused(result: CliResult, mode: Mode, job: keyof typeof SKIPPED): void {
  expectOk(result);
  expect(result.stdout).toBe("");
  expect(result.stderr).toContain(`${mode} mode`);
  expect(result.stderr).toContain(SKIPPED[job]!);
}

/** What each command must do in a mode, checked on the CLI's exit code, output and files. */
type Step = (mode: Mode, setup: ModeSetup) => Promise<void>;

const STEPS: Record<string, Step> = {
  extract: async (mode, setup) => {
    const result = await panorama(setup, ["extract"]);
    if (mode === "DEMO") {
      expectRefused(result, mode, "extract");
      expect(files(join(setup.stateDir, "spool"))).toEqual([]);
      return;
    }
    expectOk(result);
    expect(files(join(setup.stateDir, "spool")).some((f) => f.endsWith("auth_user.csv"))).toBe(true);
    expect(existsSync(setup.datalake)).toBe(false);
  },
  upload: async (mode, setup) => {
    const result = await panorama(setup, ["upload"]);
    if (mode === "DEMO") {
      expectRefused(result, mode, "upload");
      expect(existsSync(setup.datalake)).toBe(false);
      return;
    }
    expectOk(result);
    expect(datalakeRows(setup.datalake).auth_user).toBe(generated.auth_user!);
  },
  run: async (mode, setup) => {
    const result = await panorama(setup, ["run"]);
    if (mode === "DEMO") {
      expectRefused(result, mode, "extract");
      expect(existsSync(setup.datalake)).toBe(false);
      return;
    }
    expectOk(result);
    const rows = datalakeRows(setup.datalake);
    for (const [table, count] of Object.entries(generated)) {
      if (table === "split_modulestore_django_splitmodulestorecourseindex") continue;
      expect({ table, rows: rows[table] }).toEqual({ table, rows: count });
    }
    expect(result.stderr).toContain("local datalake: there is no catalog to update");
  },
  catalog: async (mode, setup) => {
    const [plain, create, ddl] = await Promise.all([
      panorama(setup, ["catalog"]),
      panorama(setup, ["catalog", "--create"]),
      panorama(setup, ["catalog", "--print-ddl"]),
    ]);
    if (mode === "DEMO") {
      for (const result of [plain, create, ddl]) expectRefused(result, mode, "catalog-partitions");
      return;
    }
    for (const result of [plain, create, ddl]) expectOk(result);
    // A local datalake has no catalog service; the DDL still prints.
    expect(plain.stderr).toContain("has no catalog");
    if (mode === "CUSTOM") expect(create.stderr).not.toContain("is skipped");
    else expect(create.stderr).toContain(`${mode} mode`);
    expect(ddl.stdout).toContain(
      "CREATE EXTERNAL TABLE IF NOT EXISTS `panorama`.`openedx_raw_courseware_studentmodule`",
    );
    expect(ddl.stdout).toContain("openedx_table_courseware_studentmodule");
  },
  "log-ship": async (mode, setup) => {
    const result = await panorama(setup, ["log-ship", "--once"]);
    const shipped = datalakeRows(setup.datalake).tracking_logs;
    if (mode === "DEMO" || mode === "FREE") {
      expectRefused(result, mode, "log-ship");
      expect(shipped).toBeUndefined();
      return;
    }
    expectOk(result);
    expect(shipped).toBe(TRACKING_EVENTS);
  },
  schema: async (_mode, setup) => {
    const result = await panorama(setup, ["schema", "pull", "--tables", "auth_user"]);
    expectOk(result);
    expect(result.stdout).toContain('name = "auth_user"');
    expect(result.stdout).toContain('{ name = "date_joined", type = "datetime" }');
    expect(result.stdout).toContain(
      '  { name = "password", type = "varchar" },  # never read: always an empty field',
    );
  },
  status: async (mode, setup) => {
    const result = await panorama(setup, ["status", "--json"]);
    expectOk(result);
    const status = JSON.parse(result.stdout) as {
      mode: string;
      tables: { table: string; last_run: { rows: number } | null }[];
      logs: { path: string }[];
    };
    expect(status.mode).toBe(mode);
    const studentmodule = status.tables.find((t) => t.table === "courseware_studentmodule");
    // After `run`: DEMO never ran; in the others `run` came after `extract`, which had set the
    // watermark, yet it read the table whole: no full read was recorded yet (`extract` deletes
    // nothing, so it records none), and full_every (DESIGN §7) makes the first run's read full.
    if (mode === "DEMO") expect(studentmodule?.last_run).toBeNull();
    else {
      expect(studentmodule?.last_run).toMatchObject({ command: "run", error: null });
      expect(studentmodule?.last_run?.rows).toBe(generated.courseware_studentmodule!);
    }
    expect(status.logs.length).toBe(mode === "SAAS" || mode === "CUSTOM" ? 1 : 0);
  },
  verify: async (mode, setup) => {
    const result = await panorama(setup, ["verify"]);
    if (mode === "DEMO") {
      expectRefused(result, mode, "extract");
      return;
    }
    // After `run`, the datalake agrees with MySQL; course structures are excluded here.
    expectOk(result);
    expect(result.stdout).toContain(
      `✓ courseware_studentmodule: 4 partition(s), ${generated.courseware_studentmodule} rows`,
    );
    expect(result.stdout).toContain("the datalake agrees with MySQL");
  },
  doctor: async (mode, setup) => {
    const result = await panorama(setup, ["doctor"]);
    expect(result.stdout).toContain(`✓ configuration: ${mode} mode`);
    if (mode === "DEMO") {
      // DEMO extracts nothing: doctor says so and fails, rather than "all checks passed".
      expect(result.code).toBe(1);
      expect(result.stdout).toContain("✗ mode: DEMO: nothing is extracted or shipped until mode is set");
      expect(result.stdout).not.toMatch(/^. MySQL/m);
    } else {
      expectOk(result);
      expect(result.stdout).toContain("all checks passed");
      expect(result.stdout).toContain("✓ MySQL SELECT");
    }
  },
  crontab: async (mode, setup) => {
    const result = await panorama(setup, ["crontab"]);
    expectOk(result);
    const lines = result.stdout
      .split("\n")
      .filter((l) => l !== "" && !l.startsWith("#") && /^\S+ \S+ \S+ \S+ \S+ /.test(l));
    const runs = lines.filter((l) => l.includes(" run >>"));
    const ships = lines.filter((l) => l.includes(" log-ship --once"));
    expect({ runs: runs.length, ships: ships.length }).toEqual({
      runs: mode === "DEMO" ? 0 : 1,
      ships: mode === "SAAS" || mode === "CUSTOM" ? 1 : 0,
    });
    if (mode === "DEMO") expect(result.stdout).toContain("DEMO mode schedules nothing");
  },
  "iam-policy": async (mode, setup) => {
    const result = await panorama(setup, ["iam-policy"]);
    expectOk(result);
    expect(result.stdout).toBe("");
    expect(result.stderr).toContain(
      mode === "DEMO" ? "DEMO mode needs no AWS access" : "needs no AWS access",
    );
  },
  init: async (_mode, setup) => {
    const output = join(setup.dir, "init.toml");
    const result = await panorama(setup, ["init", "--output", output]);
    expectOk(result);
    expect(readFileSync(output, "utf8")).toContain("[mysql]");
    expect(statSync(output).mode & 0o077).toBe(0);
  },
  k8s: async (mode, setup) => {
    const result = await panorama(setup, ["k8s"]);
    expectOk(result);
    if (mode === "DEMO") {
      expect(result.stdout).toContain("DEMO mode schedules nothing");
      return;
    }
    const kinds = (Bun.YAML.parse(result.stdout) as { kind: string }[]).map((d) => d.kind);
    expect(kinds.filter((k) => k === "CronJob")).toHaveLength(2);
    expect(kinds.includes("DaemonSet")).toBe(mode === "SAAS" || mode === "CUSTOM");
  },
  completions: async (_mode, setup) => {
    const result = await panorama(setup, ["completions", "bash"]);
    expectOk(result);
    for (const name of Object.keys(commands)) expect(result.stdout).toContain(name);
  },
};

/** Order matters for the data commands (extract → upload → run → verify → status); the rest run at once. */
const SEQUENCE = ["extract", "upload", "run", "verify", "catalog", "log-ship", "status"];

describe.skipIf(skip)("modes, every command", () => {
  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), "panorama-modes-"));
    generated = await generatedDatabase(DATABASE, {
      users: 40,
      courses: 4,
      enrollments: 80,
      studentmodule: 400,
      seed: 7,
    });
    glue = await startTestGlue();
  }, 120_000); // generating the database takes seconds: more than bun's 5 s default on a busy machine
  afterAll(async () => {
    await glue?.stop();
    await dropTestDatabase(DATABASE);
    rmSync(work, { recursive: true, force: true });
  });

  test("every registered command has its expectations here", () => {
    const missing = Object.keys(commands).filter((name) => !(name in STEPS));
    expect(missing).toEqual([]);
    for (const name of DATA_COMMANDS) expect(Object.keys(commands)).toContain(name);
  });

  for (const mode of MODES) {
    test(`${mode}: what each command does and refuses`, async () => {
      const setup = writeModeConfig(mode);
      const registered = Object.keys(commands).filter((name) => name in STEPS);
      for (const name of SEQUENCE.filter((n) => registered.includes(n))) await STEPS[name]!(mode, setup);
      await Promise.all(
        registered.filter((n) => !SEQUENCE.includes(n)).map((name) => STEPS[name]!(mode, setup)),
      );
    }, 60_000);
  }

  describe("the catalog on an S3 datalake", () => {
    const s3Datalake = () => {
      const s3 = testEnv().s3;
      return `target = "s3"
bucket = "${s3.bucket}"
region = "${s3.region}"
endpoint = "${s3.endpoint}"
database = "panorama"
workgroup = "panorama"
glue_endpoint = "${glue.url}"
athena_endpoint = "${glue.url}"`;
    };
    const aws = () => {
      const s3 = testEnv().s3;
      return `[aws]\naccess_key_id = "${s3.accessKeyId}"\nsecret_access_key = "${s3.secretAccessKey}"\n`;
    };
    const counts = () => ({
      create: glue.calls("CreateTable") + glue.calls("UpdateTable"),
      views: glue.queries.length,
      partitions: glue.calls("BatchCreatePartition"),
    });

    test("CUSTOM creates the tables and views, then registers partitions", async () => {
      const setup = writeModeConfig("CUSTOM", "", s3Datalake());
      writeFileSync(setup.file, `${readFileSync(setup.file, "utf8")}\n${aws()}`);
      const before = counts();
      // Views for two tables only: each is an Athena query polled to its end, which takes a while.
      const created = await panorama(setup, ["catalog", "--create"]);
      expectOk(created);
      const views = await panorama(setup, [
        "catalog",
        "--views",
        "--tables",
        "auth_user,courseware_studentmodule",
      ]);
      expectOk(views);
      const after = counts();
      expect(after.create).toBeGreaterThan(before.create);
      expect(after.views - before.views).toBe(2);
      const run = await panorama(setup, ["run"]);
      expectOk(run);
      expect(counts().partitions).toBeGreaterThan(after.partitions);
      expect(glue.partitions("panorama", "openedx_raw_courseware_studentmodule").length).toBe(4);
    }, 60_000);

    for (const mode of ["SAAS", "FREE"] as const) {
      test(`${mode}: catalog registers the pending partitions only; --create and --views are refused`, async () => {
        const setup = writeModeConfig(mode, "", s3Datalake());
        writeFileSync(setup.file, `${readFileSync(setup.file, "utf8")}\n${aws()}`);
        const before = counts();
        const refused = await panorama(setup, ["catalog", "--create", "--views", "--tables", "auth_user"]);
        expectOk(refused);
        expect(refused.stderr).toContain(`${mode} mode`);
        expect(refused.stderr).toContain("the creation of the Glue tables is skipped");
        expect(refused.stderr).toContain("the creation of the Athena views is skipped");
        expect(counts()).toEqual(before);
        // The tables exist (the CUSTOM test above, standing in for the provider). `run` registers
        // the partitions it uploads; when Glue refuses them they stay pending, and `catalog`
        // registers them later, touching nothing else.
        glue.failPartitions(() => "InternalServiceException");
        const run = await panorama(setup, ["run"]);
        glue.failPartitions(null);
        expect(run.code).toBe(1);
        const pending = async () => {
          const status = await panorama(setup, ["status", "--json"]);
          expectOk(status);
          const tables = (
            JSON.parse(status.stdout) as { tables: { table: string; pending_partitions: number }[] }
          ).tables;
          return tables.find((t) => t.table === "courseware_studentmodule")?.pending_partitions;
        };
        expect(await pending()).toBe(4);
        const registeredBefore = glue.calls("BatchCreatePartition");
        const catalog = await panorama(setup, ["catalog"]);
        expectOk(catalog);
        expect(await pending()).toBe(0);
        const after = counts();
        expect(after.create).toBe(before.create);
        expect(after.views).toBe(before.views);
        expect(glue.calls("BatchCreatePartition")).toBeGreaterThan(registeredBefore);
        const lms = glue
          .partitions("panorama", "openedx_raw_courseware_studentmodule")
          .filter((p) => (p.Values as string[])[0] === `${mode.toLowerCase()}.example.com`);
        expect(lms.length).toBe(4);
      }, 60_000);
    }

    test("CUSTOM without a reachable Glue: a clear error, exit 1", async () => {
      const setup = writeModeConfig("CUSTOM", "", s3Datalake().replaceAll(glue.url, "http://127.0.0.1:9"));
      writeFileSync(setup.file, `${readFileSync(setup.file, "utf8")}\n${aws()}`);
      const result = await panorama(setup, ["catalog", "--create"]);
      expect(result.code).toBe(1);
      expect(result.stderr).toContain("Glue GetDatabase database panorama failed");
      expect(result.stderr).toContain("ECONNREFUSED");
      expect(result.stderr).not.toContain(testEnv().s3.secretAccessKey);
      // doctor says the same, one line among the others that pass.
      const doctor = await panorama(setup, ["doctor"]);
      expect(doctor.code).toBe(1);
      expect(doctor.stdout).toContain("✓ S3");
      expect(doctor.stdout).toMatch(/✗ Glue[^\n]*ECONNREFUSED/);
      expect(doctor.stdout + doctor.stderr).not.toContain(testEnv().s3.secretAccessKey);
    }, 120_000);
  });
});
