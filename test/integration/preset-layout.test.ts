// Upstream's layout (DESIGN §10): every preset table's CSV header is the reference field list,
// in order, auth_user.password included. That column is always empty and never read: the test
// user may not SELECT it (a column-level grant leaves it out), and run, doctor and the catalog
// still work.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import copy from "../../src/config/openedx-tables.json" with { type: "json" };
import { type CheckResult, runChecks } from "../../src/doctor.ts";
import { cleanEnv, runPanorama } from "../support/cli.ts";
import { skipWithoutTestEnv, testEnv } from "../support/env.ts";
import {
  dropTestDatabase,
  generatedDatabase,
  limitedReader,
  testConnection,
  writeTestConfig,
} from "../support/mysql.ts";
import { decodeFile } from "../support/opencsv.ts";

const skip = skipWithoutTestEnv();
// Generating the Open edX database and running the CLI take seconds each: more, on a busy
// machine, than bun's 5 s default.
setDefaultTimeout(120_000);
const DATABASE = "panorama_layout";
const READER = { user: "layout_reader", password: "layout-reader-pw" };

interface ReferenceTable {
  name: string;
  datasource: string;
  fields: { name: string }[];
  partitions?: { partition_fields: string[] };
}

/** The shared reference itself when this checkout sits in the workspace, else the preset's copy. */
function referenceTables(): ReferenceTable[] {
  const shared = join(import.meta.dir, "../../../shared/reference/openedx-tables.json");
  const text = existsSync(shared) ? readFileSync(shared, "utf8") : JSON.stringify(copy);
  return (JSON.parse(text) as { tables: ReferenceTable[] }).tables;
}

const REFERENCE = referenceTables();
const csvHeader = (t: ReferenceTable) =>
  t.fields.map((f) => f.name).filter((f) => !(t.partitions?.partition_fields ?? []).includes(f));

let cfg: ReturnType<typeof writeTestConfig>;

beforeAll(async () => {
  if (skip) return;
  await generatedDatabase(DATABASE, { users: 25, courses: 2, enrollments: 40, studentmodule: 100, seed: 5 });
  // Every table, and every column of auth_user but the password: reading it would be refused.
  await limitedReader(DATABASE, READER, { partly: { table: "auth_user", without: ["password"] } });
  cfg = writeTestConfig('[extract]\nexclude = ["course_structures"]\n', {
    database: DATABASE,
    user: READER.user,
    password: READER.password,
  });
});

afterAll(async () => {
  if (skip) return;
  if (cfg) rmSync(cfg.dir, { recursive: true, force: true });
  await dropTestDatabase(DATABASE, [READER.user]);
});

describe.skipIf(skip)("upstream's layout", () => {
  test("the reader may not select auth_user.password (the premise of the next tests)", async () => {
    const env = testEnv().mysql;
    const mysql = await import("mysql2/promise");
    const reader = await mysql.createConnection({
      host: env.host,
      port: env.port,
      user: READER.user,
      password: READER.password,
      database: DATABASE,
    });
    try {
      await expect(reader.query("SELECT password FROM auth_user LIMIT 1")).rejects.toThrow(
        /SELECT command denied .* column 'password'/,
      );
    } finally {
      await reader.end();
    }
  });

  test("run: every preset table's CSV header is the reference field list; password empty, never read", async () => {
    const result = await runPanorama(["--config", cfg.file, "run"]);
    expect(result.stderr).not.toContain('"level":"warn"');
    expect(result.code).toBe(0);
    const files = new Map<string, string[]>();
    for (const name of readdirSync(cfg.datalake, { recursive: true }) as string[]) {
      if (!name.endsWith(".csv")) continue;
      const table = name
        .split("/")
        .pop()!
        .replace(/\.csv$/, "");
      files.set(table, [...(files.get(table) ?? []), join(cfg.datalake, name)]);
    }
    const mysqlTables = REFERENCE.filter((t) => t.datasource === "mysql");
    expect([...files.keys()].sort()).toEqual(mysqlTables.map((t) => t.name).sort());
    for (const table of mysqlTables) {
      for (const path of files.get(table.name)!) {
        const [header] = decodeFile(readFileSync(path, "utf8"));
        expect({ table: table.name, header }).toEqual({ table: table.name, header: csvHeader(table) });
      }
    }
    const [header, ...users] = decodeFile(readFileSync(files.get("auth_user")![0]!, "utf8"));
    const password = header!.indexOf("password");
    const db = await testConnection(DATABASE);
    try {
      const [hashes] = await db.query("SELECT COUNT(*) AS n FROM auth_user WHERE password <> ''");
      expect(Number((hashes as { n: number }[])[0]!.n)).toBe(users.length);
    } finally {
      await db.end();
    }
    expect(users.length).toBeGreaterThan(0);
    expect(users.filter((u) => u[password] !== "")).toEqual([]);

    // The next run probes auth_user by a checksum of the columns it reads: never the password.
    const again = await runPanorama(["--config", cfg.file, "run"]);
    expect(again.code).toBe(0);
    const runs = JSON.parse(readFileSync(join(cfg.stateDir, "runs.json"), "utf8")) as Record<
      string,
      { rows: number; unread?: number; error: string | null }
    >;
    expect(runs.auth_user).toMatchObject({ rows: 0, unread: 1, error: null });
  });

  test("catalog --print-ddl: every raw table's columns are the reference field list", async () => {
    // course_structures included: its layout needs no MongoDB.
    const all = writeTestConfig("", { database: DATABASE });
    const result = await runPanorama(["--config", all.file, "catalog", "--print-ddl"], { env: cleanEnv() });
    rmSync(all.dir, { recursive: true, force: true });
    expect(result.code).toBe(0);
    for (const table of REFERENCE) {
      const ddl = new RegExp(
        `CREATE EXTERNAL TABLE IF NOT EXISTS \`panorama\`\\.\`openedx_raw_${table.name}\` \\(\\n([^)]*)\\)`,
      ).exec(result.stdout);
      const columns = [...(ddl?.[1] ?? "").matchAll(/`([^`]+)` string/g)].map((m) => m[1]);
      expect({ table: table.name, columns }).toEqual({ table: table.name, columns: csvHeader(table) });
    }
  });

  test("doctor: MySQL SELECT passes without ever selecting the password", async () => {
    const results: CheckResult[] = [];
    for await (const r of runChecks({ configPath: cfg.file, env: cleanEnv() })) results.push(r);
    const select = results.find((r) => r.check === "MySQL SELECT")!;
    expect(select).toMatchObject({ ok: true });
    expect(select.detail).toStartWith(`allowed on all ${REFERENCE.length - 1} table(s)`);
  });
});
