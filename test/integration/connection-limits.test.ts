// A server whose DBA limits panorama's account (MAX_USER_CONNECTIONS below `[mysql] connections`),
// against the real MariaDB: the extra connections the pool, the partition scan and the ranges of
// a big table ask for are refused, and the reads go on over the connections the server gave,
// with one warning that says the limit and what to set; nothing is read twice or left out. A
// main connection refused outright fails with the limit and its fix.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import mysql from "mysql2/promise";
import { parseConfig } from "../../src/config/load.ts";
import { spoolDir } from "../../src/datalake/spool.ts";
import { planTable } from "../../src/extract/extract.ts";
import { close, connect } from "../../src/extract/mysql.ts";
import { extractPartition } from "../../src/extract/partition.ts";
import { extractRanges, type KeyRange } from "../../src/extract/pk-ranges.ts";
import { SpareConnections } from "../../src/extract/spare-connections.ts";
import { cleanEnv, runPanorama } from "../support/cli.ts";
import { skipWithoutTestEnv, testEnv } from "../support/env.ts";
import { rootConnection, testConnection, writeTestConfig } from "../support/mysql.ts";

const skip = skipWithoutTestEnv();
setDefaultTimeout(60_000);
const USER = "pz_limited";
const PASSWORD = "limited-secret-1";
const TABLES = ["limited_a", "limited_b", "limited_c"];
let db: mysql.Connection;
let root: mysql.Connection;
const dirs: string[] = [];

/** A config for the limited user over `connections` connections, reading `tables` (partitioned or not). */
function limitedConfig(connections: number, tables: { name: string; partitioned: boolean }[]) {
  const cfg = writeTestConfig(
    `connections = ${connections}
[extract]
preset = "none"
${tables.map((t) => `[[tables]]\nname = "${t.name}"\n${t.partitioned ? 'partition_fields = ["course_id"]\n' : ""}`).join("\n")}`,
    { user: USER, password: PASSWORD },
  );
  dirs.push(cfg.dir);
  return cfg;
}

/** Data rows per object of a local datalake, by the object's path under `datalake`. */
function datalakeRows(datalake: string): Record<string, number> {
  const rows: Record<string, number> = {};
  if (!existsSync(datalake)) return rows;
  for (const name of readdirSync(datalake, { recursive: true }) as string[]) {
    if (!name.endsWith(".csv")) continue;
    rows[name] = readFileSync(join(datalake, name), "utf8").split("\r\n").length - 2;
  }
  return rows;
}

beforeAll(async () => {
  if (skip) return;
  const scratch = testEnv().mysql.scratchDatabase;
  db = await testConnection(scratch);
  root = await rootConnection();
  for (const name of TABLES) {
    await db.query(`DROP TABLE IF EXISTS ${name};
      CREATE TABLE ${name} (id INT AUTO_INCREMENT PRIMARY KEY, course_id VARCHAR(64), n INT) ENGINE=InnoDB;
      INSERT INTO ${name} (course_id, n) SELECT CONCAT('course-v1:A+', seq % 3, '+T'), seq FROM seq_1_to_300`);
  }
  await root.query(`DROP USER IF EXISTS '${USER}'@'%';
    CREATE USER '${USER}'@'%' IDENTIFIED BY '${PASSWORD}' WITH MAX_USER_CONNECTIONS 1;
    GRANT SELECT ON ${scratch}.* TO '${USER}'@'%'`);
});

afterAll(async () => {
  if (skip) return;
  for (const name of TABLES) await db.query(`DROP TABLE IF EXISTS ${name}`);
  await root.query(`DROP USER IF EXISTS '${USER}'@'%'`);
  await db.end();
  await root.end();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

describe.skipIf(skip)("an account limited to fewer connections than [mysql] connections", () => {
  // Seen on a shared server: MAX_USER_CONNECTIONS 1 and connections = 4 failed every table with
  // "User 'panorama' has exceeded the 'max_user_connections' resource", the main connection
  // itself refused when a spare opened beside it took the one the account has.
  for (const tables of [
    [{ name: "limited_a", partitioned: true }],
    TABLES.map((name, i) => ({ name, partitioned: i > 0 })),
  ]) {
    test(`run reads ${tables.length} table(s) over the one connection it may have, and says so once`, async () => {
      const cfg = limitedConfig(4, tables);
      const result = await runPanorama(["--config", cfg.file, "run", "--full"], {
        cwd: cfg.dir,
        env: cleanEnv(),
      });
      expect(result.stderr).not.toContain('"level":"error"');
      expect(result.code).toBe(0);
      const warnings = result.stderr.split("\n").filter((line) => line.includes("refuses more connections"));
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toContain("(current value: 1)");
      expect(warnings[0]).toContain("[mysql] connections = 4");
      expect(warnings[0]).toContain("MAX_USER_CONNECTIONS");
      const rows = datalakeRows(cfg.datalake);
      for (const t of tables) {
        const objects = Object.entries(rows).filter(([key]) => key.startsWith(`openedx/${t.name}/`));
        expect(objects.length).toBe(t.partitioned ? 3 : 1);
        expect(objects.reduce((sum, [, n]) => sum + n, 0)).toBe(300);
      }
    });
  }

  test("the ranges of a big table are all read, in order, over the connections the server gave", async () => {
    const cfg = limitedConfig(4, [{ name: "limited_a", partitioned: false }]);
    const config = parseConfig(readFileSync(cfg.file, "utf8"), cfg.file, {}).config;
    const main = await connect(config.mysql);
    const spares = new SpareConnections(config.mysql);
    try {
      const plan = (await planTable(main, config, config.tables[0]!, true))!;
      const job = { table: plan.table, columns: plan.columns, spares };
      const ranges: KeyRange[] = [null, 50n, 120n, 200n].map((from, i, all) => ({
        from,
        to: all[i + 1] ?? null,
      }));
      const ranged = await extractRanges(main, config, job, { column: "id", ranges }, 4);
      const single = await extractPartition(main, { ...config, state_dir: join(cfg.dir, "single") }, job, []);
      expect(ranged.rows).toBe(300);
      expect(readFileSync(join(spoolDir(config.state_dir), ranged.key))).toEqual(
        readFileSync(join(spoolDir(join(cfg.dir, "single")), single.key)),
      );
    } finally {
      await spares.closeAll();
      await close(main);
    }
  });

  test("a main connection refused outright fails the run with the limit and what to change", async () => {
    const cfg = limitedConfig(2, [{ name: "limited_a", partitioned: false }]);
    const env = testEnv().mysql;
    // Another session of the account holds the one connection it has.
    const other = await mysql.createConnection({
      host: env.host,
      port: env.port,
      user: USER,
      password: PASSWORD,
    });
    try {
      const result = await runPanorama(["--config", cfg.file, "run"], { cwd: cfg.dir, env: cleanEnv() });
      expect(result.code).toBe(1);
      expect(result.stderr).toContain("has exceeded the 'max_user_connections' resource");
      expect(result.stderr).toContain("set [mysql] connections to at most its MAX_USER_CONNECTIONS");
      expect(datalakeRows(cfg.datalake)).toEqual({});
    } finally {
      await other.end();
    }
  });
});
