// What information_schema says of a run's tables, asked once for all of them (schema-snapshot.ts),
// against the real MariaDB: the same columns, types and nullability as the table-by-table look-up
// (tableColumns) gives, the single-column primary key (integer, auto-increment) or none, views
// told from tables, engines, and a table the database lacks left out.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync, rmSync } from "node:fs";
import type mysql from "mysql2/promise";
import { parseConfig } from "../../src/config/load.ts";
import { close, connect, tableColumns } from "../../src/extract/mysql.ts";
import { cachesStatistics, snapshotSchema } from "../../src/extract/schema-snapshot.ts";
import { skipWithoutTestEnv, testEnv } from "../support/env.ts";
import { testConnection, writeTestConfig } from "../support/mysql.ts";

const skip = skipWithoutTestEnv();
let db: mysql.Connection;
const TABLES = ["snap_auto", "snap_pair", "snap_text", "snap_none", "snap_view"];

beforeAll(async () => {
  if (skip) return;
  db = await testConnection(testEnv().mysql.scratchDatabase);
  await db.query(`DROP VIEW IF EXISTS snap_view;
    DROP TABLE IF EXISTS snap_auto, snap_pair, snap_text, snap_none;
    CREATE TABLE snap_auto (id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY, name VARCHAR(20) NULL,
      doc JSON, modified DATETIME(6) NOT NULL, amount DECIMAL(10, 2) NOT NULL DEFAULT 0);
    CREATE TABLE snap_pair (a INT NOT NULL, b INT NOT NULL, v TEXT, PRIMARY KEY (a, b));
    CREATE TABLE snap_text (k VARCHAR(20) NOT NULL PRIMARY KEY, n INT);
    CREATE TABLE snap_none (n INT, s CHAR(3) CHARACTER SET latin1 NOT NULL);
    CREATE VIEW snap_view AS SELECT id, name FROM snap_auto;
    INSERT INTO snap_auto (name, modified) SELECT CONCAT('n', seq), NOW() FROM seq_1_to_50`);
});

afterAll(async () => {
  if (skip) return;
  await db.query(
    "DROP VIEW IF EXISTS snap_view; DROP TABLE IF EXISTS snap_auto, snap_pair, snap_text, snap_none",
  );
  await db.end();
});

describe.skipIf(skip)("schema snapshot", () => {
  test("every table's columns and primary key as the table-by-table look-ups give them; views and absent tables told", async () => {
    const env = testEnv().mysql;
    const cfg = writeTestConfig(`[extract]\npreset = "none"\n`);
    const { config } = parseConfig(readFileSync(cfg.file, "utf8"), cfg.file, {});
    const connection = await connect(config.mysql);
    try {
      const snapshot = await snapshotSchema(connection, env.scratchDatabase, [
        ...TABLES,
        "snap_absent",
        "snap_auto", // named twice: asked once
      ]);
      expect([...snapshot.keys()].sort()).toEqual([...TABLES].sort());
      for (const table of TABLES) {
        const facts = snapshot.get(table)!;
        expect({ table, columns: facts.columns }).toEqual({
          table,
          columns: (await tableColumns(connection, env.scratchDatabase, table))!,
        });
      }
      // Each table's key, the view's included (none).
      expect(snapshot.get("snap_view")!.primaryKey).toBeNull();
      expect(snapshot.get("snap_auto")!.primaryKey).toEqual({
        column: "id",
        integer: true,
        autoIncrement: true,
      });
      expect(snapshot.get("snap_auto")!.columns.map((c) => [c.name, c.nullable])).toEqual([
        ["id", false],
        ["name", true],
        ["doc", true],
        ["modified", false],
        ["amount", false],
      ]);
      expect(snapshot.get("snap_pair")!.primaryKey).toBeNull(); // two columns
      expect(snapshot.get("snap_text")!.primaryKey).toEqual({
        column: "k",
        integer: false,
        autoIncrement: false,
      });
      expect(snapshot.get("snap_none")!.primaryKey).toBeNull();
      expect(TABLES.map((t) => [t, snapshot.get(t)!.baseTable])).toEqual([
        ["snap_auto", true],
        ["snap_pair", true],
        ["snap_text", true],
        ["snap_none", true],
        ["snap_view", false],
      ]);
      expect(TABLES.map((t) => [t, snapshot.get(t)!.engine])).toEqual([
        ["snap_auto", "innodb"],
        ["snap_pair", "innodb"],
        ["snap_text", "innodb"],
        ["snap_none", "innodb"],
        ["snap_view", ""],
      ]);
      expect(await snapshotSchema(connection, env.scratchDatabase, [])).toEqual(new Map());
    } finally {
      await close(connection);
    }
  });

  test("the change marker: taken for an InnoDB table whose last change is 2 seconds old; moved by a commit, TRUNCATE, ALTER; none for MyISAM, MySQL partitions, a view, a table just changed or never changed", async () => {
    const env = testEnv().mysql;
    const cfg = writeTestConfig(`[extract]\npreset = "none"\n`);
    const { config } = parseConfig(readFileSync(cfg.file, "utf8"), cfg.file, {});
    await db.query(`DROP TABLE IF EXISTS snap_myisam, snap_fresh, snap_split;
      CREATE TABLE snap_myisam (id INT PRIMARY KEY, n INT) ENGINE=MyISAM;
      INSERT INTO snap_myisam VALUES (1, 1);
      CREATE TABLE snap_split (id INT PRIMARY KEY, n INT) ENGINE=InnoDB PARTITION BY HASH (id) PARTITIONS 2;
      INSERT INTO snap_split VALUES (1, 1), (2, 2);
      CREATE TABLE snap_fresh (id INT PRIMARY KEY, n INT) ENGINE=InnoDB`);
    const connection = await connect(config.mysql);
    const names = ["snap_auto", "snap_text", "snap_myisam", "snap_fresh", "snap_split", "snap_view"];
    const markers = async () => {
      const snapshot = await snapshotSchema(connection, env.scratchDatabase, names);
      return Object.fromEntries(names.map((n) => [n, snapshot.get(n)!.changeMarker]));
    };
    try {
      // snap_auto was filled a moment ago: a change of this second may still be committing.
      await db.query("UPDATE snap_auto SET name = 'now' WHERE id = 1");
      expect((await markers()).snap_auto).toBeNull();
      await Bun.sleep(2100);
      const settled = await markers();
      expect(settled.snap_auto).toEqual(expect.any(String));
      expect(settled.snap_myisam).toBeNull(); // not InnoDB: its UPDATE_TIME is a file's time
      expect(settled.snap_fresh).toBeNull(); // never changed since the server started
      expect(settled.snap_split).toBeNull(); // EXCHANGE PARTITION swaps rows without a commit
      expect(settled.snap_view).toBeNull();
      expect((await markers()).snap_auto).toBe(settled.snap_auto!); // nothing committed: the same

      // A transaction open while the marker is taken moves it when it commits.
      const other = await testConnection(env.scratchDatabase);
      await other.query("START TRANSACTION");
      await other.query("UPDATE snap_auto SET name = 'late' WHERE id = 2");
      expect((await markers()).snap_auto).toBe(settled.snap_auto!);
      await other.query("COMMIT");
      await other.end();
      await Bun.sleep(2100);
      const committed = (await markers()).snap_auto;
      expect(committed).toEqual(expect.any(String));
      expect(committed).not.toBe(settled.snap_auto);
      // TRUNCATE leaves UPDATE_TIME as it was: the row estimate and AUTO_INCREMENT move it.
      await db.query("TRUNCATE snap_auto");
      const truncated = (await markers()).snap_auto;
      expect(truncated).toEqual(expect.any(String));
      expect(truncated).not.toBe(committed);
      // Rebuilt: the server forgets when it last changed.
      await db.query("ALTER TABLE snap_auto FORCE");
      expect((await markers()).snap_auto).toBeNull();
    } finally {
      await close(connection);
      await db.query("DROP TABLE IF EXISTS snap_myisam, snap_fresh, snap_split");
      rmSync(cfg.dir, { recursive: true, force: true });
    }
  });

  test("MySQL 8 answers information_schema from a cache unless told not to; MariaDB and MySQL 5.7 do not", () => {
    expect(cachesStatistics("8.0.36")).toBe(true);
    expect(cachesStatistics("8.4.3")).toBe(true);
    expect(cachesStatistics("9.1.0-commercial")).toBe(true);
    expect(cachesStatistics("5.7.44-log")).toBe(false);
    expect(cachesStatistics("10.11.6-MariaDB-0+deb12u1")).toBe(false);
    expect(cachesStatistics("11.4.2-MariaDB")).toBe(false);
    expect(cachesStatistics("")).toBe(false);
  });
});
