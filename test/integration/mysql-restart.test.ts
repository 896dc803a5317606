// A MySQL connection lost under a read (the server restarted, failed over, or the network cut it):
// the table is read again, once, when the server answers. The drops are made by a TCP proxy in
// front of the test's real MariaDB (test/support/dropping-proxy.ts): a restart of MariaDB itself
// closes the session the same way (mysql2's PROTOCOL_CONNECTION_LOST, "Connection lost: The
// server closed the connection", checked against this MariaDB's SHUTDOWN and KILL), and then
// refuses connections until it is up, which the proxy does by closing its port for a while.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type mysql from "mysql2/promise";
import type { VerifyReport } from "../../src/verify.ts";
import { runPanorama } from "../support/cli.ts";
import { droppingProxy } from "../support/dropping-proxy.ts";
import { skipWithoutTestEnv, testEnv } from "../support/env.ts";
import { testConnection, writeTestConfig } from "../support/mysql.ts";

const skip = skipWithoutTestEnv();
let db: mysql.Connection;
const dirs: string[] = [];
/** the proxies drop a connection once it has carried this much of lost_rows (4.6 MB) */
const AFTER_BYTES = 1_000_000;
const AGAIN = "lost_rows is read again once the server answers";

function tables(partitioned: boolean): string {
  return `[extract]
preset = "none"
[[tables]]
name = "lost_rows"
${partitioned ? 'partition_fields = ["course_id"]' : ""}
[[tables]]
name = "lost_small"
`;
}

/** Every CSV file of the spool, complete or not (a temporary one too), without the manifests: name → bytes. */
function spool(stateDir: string): Map<string, string> {
  const root = join(stateDir, "spool");
  const files = new Map<string, string>();
  if (!existsSync(root)) return files;
  for (const name of readdirSync(root, { recursive: true }) as string[]) {
    if (name.endsWith(".csv") || name.includes(".csv.partial-"))
      files.set(name, readFileSync(join(root, name), "latin1"));
  }
  return files;
}

/** Every file of a local datalake: path → bytes. */
function datalake(root: string): Map<string, string> {
  const files = new Map<string, string>();
  for (const name of readdirSync(root, { recursive: true }) as string[]) {
    const path = join(root, name);
    if (statSync(path).isFile()) files.set(name, readFileSync(path, "latin1"));
  }
  return files;
}

/** A config reading through `port` (the proxy) instead of the server's. */
function throughPort(
  partitioned: boolean,
  port: number,
  body = tables(partitioned),
): ReturnType<typeof writeTestConfig> {
  const cfg = writeTestConfig(body);
  dirs.push(cfg.dir);
  writeFileSync(cfg.file, readFileSync(cfg.file, "utf8").replace(/^port = \d+$/m, `port = ${port}`));
  return cfg;
}

/** The spool of an extraction straight from the server, to compare with. */
async function direct(partitioned: boolean): Promise<Map<string, string>> {
  const cfg = writeTestConfig(tables(partitioned));
  dirs.push(cfg.dir);
  const result = await runPanorama(["--config", cfg.file, "extract", "--full"]);
  expect(result.code).toBe(0);
  return spool(cfg.stateDir);
}

const count = (text: string, part: string) => text.split(part).length - 1;

beforeAll(async () => {
  if (skip) return;
  db = await testConnection(testEnv().mysql.scratchDatabase);
  await db.query(`DROP TABLE IF EXISTS lost_rows; DROP TABLE IF EXISTS lost_bits; DROP TABLE IF EXISTS lost_small;
    CREATE TABLE lost_rows (id INT PRIMARY KEY, course_id VARCHAR(40), payload VARCHAR(200), KEY (course_id));
    INSERT INTO lost_rows SELECT seq, CONCAT('course-v1:x+', seq % 7), REPEAT('x', 200) FROM seq_1_to_20000;
    CREATE TABLE lost_bits LIKE lost_rows;
    ALTER TABLE lost_bits ADD COLUMN flag BIT(1) NOT NULL DEFAULT b'1';
    INSERT INTO lost_bits (id, course_id, payload) SELECT id, course_id, payload FROM lost_rows;
    CREATE TABLE lost_small (id INT PRIMARY KEY, name VARCHAR(20));
    INSERT INTO lost_small VALUES (1, 'a'), (2, 'b')`);
});

afterAll(async () => {
  await db?.query(
    "DROP TABLE IF EXISTS lost_rows; DROP TABLE IF EXISTS lost_bits; DROP TABLE IF EXISTS lost_small",
  );
  await db?.end();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

describe.skipIf(skip)("a MySQL connection lost mid-run", () => {
  for (const partitioned of [false, true]) {
    test(`lost under the read${partitioned ? " (by course, one scan)" : ""}: read again, the files those of a read without a drop`, async () => {
      const expected = await direct(partitioned);
      const proxy = await droppingProxy(testEnv().mysql, { afterBytes: AFTER_BYTES });
      try {
        const cfg = throughPort(partitioned, proxy.port);
        const result = await runPanorama(["--config", cfg.file, "extract", "--full"]);
        expect(proxy.drops()).toBe(1);
        expect(result.code).toBe(0);
        expect(count(result.stderr, AGAIN)).toBe(1);
        expect(result.stderr).toContain("Connection lost");
        const files = spool(cfg.stateDir);
        expect([...files.keys()].sort()).toEqual([...expected.keys()].sort());
        expect(files.size).toBe(partitioned ? 8 : 2);
        for (const [name, bytes] of expected) expect(files.get(name) === bytes).toBe(true);
      } finally {
        await proxy.close();
      }
    }, 60_000);
  }

  test("MySQL restarting (its port refusing for 0.8 s): waited for, then read, with a row changed meanwhile", async () => {
    const proxy = await droppingProxy(testEnv().mysql, { afterBytes: AFTER_BYTES, downMs: 800 });
    try {
      const cfg = throughPort(false, proxy.port);
      const child = runPanorama(["--config", cfg.file, "extract", "--full"]);
      // A row changed while the server is away: the second read has it.
      for (let i = 0; i < 600 && proxy.drops() === 0; i++) await Bun.sleep(10);
      expect(proxy.drops()).toBe(1);
      await db.query("UPDATE lost_rows SET payload = 'changed while away' WHERE id = 17");
      const started = performance.now();
      const result = await child;
      expect(result.code).toBe(0);
      expect(performance.now() - started).toBeGreaterThan(500);
      expect(count(result.stderr, AGAIN)).toBe(1);
      const text = [...spool(cfg.stateDir)].find(([name]) => name.endsWith("lost_rows.csv"))?.[1] ?? "";
      expect(text).toContain("\n17,course-v1:x+3,changed while away\r");
      expect(text.split("\n").length).toBe(20_002);
    } finally {
      await proxy.close();
      await db.query("UPDATE lost_rows SET payload = REPEAT('x', 200) WHERE id = 17");
    }
  }, 60_000);

  // The server goes away as a statement is sent (it never gets there): the second table's read,
  // or the first statement that names it, while the run plans its tables.
  for (const [when, onQuery, said] of [
    ["as the next table is read", "SELECT `id`, `name` FROM `lost_small`", 1],
    // Planning is a shortcut: the table not planned plans itself when it is read.
    ["while the run plans its tables", "`lost_small`", 0],
  ] as const) {
    test(`MySQL restarting ${when}: the run waits for it, and nothing fails`, async () => {
      const proxy = await droppingProxy(testEnv().mysql, {
        afterBytes: Number.MAX_SAFE_INTEGER,
        onQuery,
        downMs: 600,
      });
      try {
        const cfg = throughPort(false, proxy.port);
        const started = performance.now();
        const result = await runPanorama(["--config", cfg.file, "extract", "--full"]);
        expect(proxy.drops()).toBe(1);
        expect(result.code).toBe(0);
        expect(performance.now() - started).toBeGreaterThan(500);
        expect(result.stderr).not.toContain("failed");
        expect(count(result.stderr, "lost_small is read again once the server answers")).toBe(said);
        expect([...spool(cfg.stateDir).keys()].filter((n) => n.endsWith(".csv"))).toHaveLength(2);
      } finally {
        await proxy.close();
      }
    }, 60_000);
  }

  test("`run`, partitions read one at a time, lost after some were stored: the datalake of a run without a drop", async () => {
    // A BIT column keeps the table out of the one scan: each partition is a read of its own, and
    // is stored (run uploads each file as it is complete) before the drop.
    const body = `[extract]\npreset = "none"\n[[tables]]\nname = "lost_bits"\npartition_fields = ["course_id"]\n`;
    const reference = writeTestConfig(body);
    dirs.push(reference.dir);
    expect((await runPanorama(["--config", reference.file, "run", "--full"])).code).toBe(0);
    const proxy = await droppingProxy(testEnv().mysql, { afterBytes: AFTER_BYTES });
    try {
      const cfg = throughPort(true, proxy.port, body);
      const result = await runPanorama(["--config", cfg.file, "run", "--full"]);
      expect(proxy.drops()).toBe(1);
      expect(result.code).toBe(0);
      expect(count(result.stderr, "lost_bits is read again once the server answers")).toBe(1);
      const expected = datalake(reference.datalake);
      const stored = datalake(cfg.datalake);
      expect(expected.size).toBe(7);
      expect([...stored.keys()].sort()).toEqual([...expected.keys()].sort());
      for (const [name, bytes] of expected) expect(stored.get(name) === bytes).toBe(true);
      expect(spool(cfg.stateDir).size).toBe(0);
    } finally {
      await proxy.close();
    }
  }, 60_000);

  test("verify: MySQL restarting as a table is counted: counted again once it answers; away longer, the tables after it not tried", async () => {
    const cfg = writeTestConfig(tables(false));
    dirs.push(cfg.dir);
    expect((await runPanorama(["--config", cfg.file, "run", "--full"])).code).toBe(0);
    const direct = readFileSync(cfg.file, "utf8");
    const verify = async (downMs: number, env: Record<string, string> = {}) => {
      const proxy = await droppingProxy(testEnv().mysql, {
        afterBytes: Number.MAX_SAFE_INTEGER,
        onQuery: "COUNT(*) FROM `lost_rows`",
        downMs,
      });
      try {
        writeFileSync(cfg.file, direct.replace(/^port = \d+$/m, `port = ${proxy.port}`));
        const result = await runPanorama(["--config", cfg.file, "--json", "verify"], { env });
        expect(proxy.drops()).toBe(1);
        return { ...result, report: JSON.parse(result.stdout) as { found: VerifyReport } };
      } finally {
        await proxy.close();
      }
    };
    const back = await verify(600);
    expect(back.code).toBe(0);
    expect(back.report.found.ok).toBe(true);
    expect(back.report.found.tables.map((t) => [t.table, t.mysql_rows, t.error])).toEqual([
      ["lost_rows", 20_000, null],
      ["lost_small", 2, null],
    ]);
    expect(count(back.stderr, "lost_rows is counted again once the server answers")).toBe(1);

    const away = await verify(60_000, { PANORAMA_TEST_SERVER_WAIT_MS: "500" });
    expect(away.code).toBe(1);
    const [rows, small] = away.report.found.tables;
    expect(rows!.error).toContain("cannot connect");
    expect(small!.error).toBe("not checked: MySQL did not answer again (said for lost_rows)");
    expect(count(away.stderr, "lost_rows is counted again once the server answers")).toBe(1);
  }, 60_000);

  test("lost again on the second read: the table fails with its cause, nothing of it in the spool; the next table is read", async () => {
    const proxy = await droppingProxy(testEnv().mysql, { afterBytes: AFTER_BYTES, times: 2 });
    try {
      const cfg = throughPort(false, proxy.port);
      const result = await runPanorama(["--config", cfg.file, "extract", "--full"]);
      expect(proxy.drops()).toBe(2);
      expect(result.code).toBe(1);
      expect(count(result.stderr, AGAIN)).toBe(1);
      expect(result.stderr).toContain("1 of 2 tables failed (lost_rows)");
      expect(result.stderr).toContain("the next run reads the table again");
      const names = [...spool(cfg.stateDir).keys()];
      expect(names.some((n) => n.includes("lost_rows"))).toBe(false);
      expect(names.filter((n) => n.endsWith("lost_small.csv"))).toHaveLength(1);
    } finally {
      await proxy.close();
    }
  }, 60_000);

  test("a server away for longer than the run waits: the table fails, the tables after it are not tried", async () => {
    const proxy = await droppingProxy(testEnv().mysql, { afterBytes: AFTER_BYTES, downMs: 60_000 });
    try {
      const cfg = throughPort(false, proxy.port);
      const started = performance.now();
      const result = await runPanorama(["--config", cfg.file, "extract", "--full"], {
        env: { PANORAMA_TEST_SERVER_WAIT_MS: "800" },
      });
      const seconds = (performance.now() - started) / 1000;
      expect(result.code).toBe(1);
      expect(seconds).toBeLessThan(20);
      expect(count(result.stderr, AGAIN)).toBe(1);
      expect(result.stderr).toContain("cannot connect");
      expect(result.stderr).toContain("2 of 2 tables failed (lost_rows, lost_small)");
      expect(spool(cfg.stateDir).size).toBe(0);
    } finally {
      await proxy.close();
    }
  }, 60_000);
});
