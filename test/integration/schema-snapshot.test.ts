// What information_schema says of a run's tables, asked once for all of them (schema-snapshot.ts),
// against the real MariaDB: the same columns, types and nullability as the table-by-table look-up
// (tableColumns) gives, the single-column primary key (integer, auto-increment) or none, views
// told from tables, engines, and a table the database lacks left out.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import type mysql from "mysql2/promise";
import { parseConfig } from "../../src/config/load.ts";
import { close, connect, tableColumns } from "../../src/extract/mysql.ts";
import { snapshotSchema } from "../../src/extract/schema-snapshot.ts";
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
});
