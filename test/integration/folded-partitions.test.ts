// Partition values that the column's collation folds together ('MITx' and 'mitx', 'a b' and
// 'a b ' under utf8mb4_general_ci) are partitions of their own: each spelling its own object
// holding its own rows, in the first full read, in the watermark window of a later run (the cheap
// probe's partitions with a save since its last probe included), and in verify's counts. Grouped
// by the field alone, both spellings were one partition named by whichever a query met first: the
// full read wrote the rows of both under one key, and a window meeting the other spelling first
// wrote them again under the other (the rows twice in the datalake) or, through the probe, did
// not read the change at all.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { rmSync } from "node:fs";
import type mysql from "mysql2/promise";
import { runPanorama } from "../support/cli.ts";
import { skipWithoutTestEnv, testEnv } from "../support/env.ts";
import { fileTree } from "../support/file-tree.ts";
import { testConnection, writeTestConfig } from "../support/mysql.ts";
import { decodeFile } from "../support/opencsv.ts";

const skip = skipWithoutTestEnv();
setDefaultTimeout(60_000);
let db: mysql.Connection;
const dirs: string[] = [];

const SPELLINGS = ["course-v1:MITx+6.00x+2024", "course-v1:mitx+6.00x+2024", "a b", "a b ", "other"];

/** Over 2 connections: the full read is one scan routed by course_id. */
function tables(name: string) {
  return `connections = 2

[extract]
preset = "none"

[[tables]]
name = "${name}"
partition_fields = ["course_id"]
incremental = { timestamp_field = "modified", overlap = "1 hour" }
`;
}

/** Per course_id, the `v` values of the datalake's objects (the partition value from the key). */
function datalake(dir: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const [key, text] of fileTree(dir)) {
    const value = decodeURIComponent(/course_id=(.*)\/[^/]+\.csv$/.exec(key)![1]!);
    const rows = decodeFile(text).slice(1);
    out.set(value, rows.map((row) => row[1]!).sort());
  }
  return out;
}

/** Per course_id, the `v` values MySQL has, each spelling apart. */
async function mysqlRows(table: string): Promise<Map<string, string[]>> {
  const [rows] = await db.query<mysql.RowDataPacket[]>(`SELECT course_id, v FROM ${table}`);
  const out = new Map<string, string[]>();
  for (const row of rows) out.set(row.course_id, [...(out.get(row.course_id) ?? []), row.v].sort());
  return out;
}

async function run(file: string, command = "run") {
  const result = await runPanorama(["--config", file, command]);
  expect(result.stderr).not.toContain('"level":"error"');
  return result;
}

beforeAll(async () => {
  if (skip) return;
  db = await testConnection(testEnv().mysql.scratchDatabase);
});

afterAll(async () => {
  await db?.end();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

describe.skipIf(skip)("partition values the collation folds", () => {
  for (const [table, key] of [
    ["folded_by_index", "id INT AUTO_INCREMENT PRIMARY KEY"],
    ["folded_by_checksum", "id INT NOT NULL"],
  ] as const) {
    test(`each spelling is a partition of its own, read in full and in the window (${table})`, async () => {
      await db.query(`DROP TABLE IF EXISTS ${table}`);
      await db.query(`CREATE TABLE ${table} (${key}, course_id VARCHAR(255) NOT NULL, v VARCHAR(100),
        modified DATETIME(6) NOT NULL, KEY (course_id), KEY (modified)) CHARSET utf8mb4 COLLATE utf8mb4_general_ci`);
      let id = 0;
      for (const course of SPELLINGS) {
        for (let i = 0; i < 3; i++) {
          await db.query(`INSERT INTO ${table} (id, course_id, v, modified) VALUES (?, ?, ?, '2024-01-01')`, [
            ++id,
            course,
            `${course}#${i}`,
          ]);
        }
      }
      const cfg = writeTestConfig(tables(table));
      dirs.push(cfg.dir);
      await run(cfg.file);
      expect(datalake(cfg.datalake)).toEqual(await mysqlRows(table));

      // The watermark moves past the first read's rows, so the next window holds only the saves
      // below: the lower-case spellings alone.
      await db.query(`UPDATE ${table} SET modified = '2024-06-01' WHERE course_id = BINARY 'other'`);
      await run(cfg.file);
      await db.query(
        `UPDATE ${table} SET v = CONCAT('changed ', id), modified = '2024-06-01 00:10:00' WHERE course_id = BINARY 'course-v1:mitx+6.00x+2024' OR course_id = BINARY 'a b '`,
      );
      await run(cfg.file);
      expect(datalake(cfg.datalake)).toEqual(await mysqlRows(table));
      expect((await run(cfg.file, "verify")).code).toBe(0);
    });
  }
});
