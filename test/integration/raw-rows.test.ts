// Rows encoded straight from MariaDB's packets (src/extract/raw-csv.ts) against the reference:
// mysql2's own row parser, then encodeRows(). Every MySQL type family, every awkward value, in
// one real result set; and a result the byte path leaves to mysql2 (a configured kind that
// disagrees with the server's type) takes the parsed path with the same result.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import type { Connection } from "mysql2";
import type mysqlPromise from "mysql2/promise";
import { parseConfig } from "../../src/config/load.ts";
import type { MysqlConfig } from "../../src/config/types.ts";
import { type ColumnKind, columnKind, encodeRows } from "../../src/extract/csv.ts";
import { close, connect, query, streamCsv, tableColumns } from "../../src/extract/mysql.ts";
import { batchReads, LOW_WATER_BYTES, WAIT_MS } from "../../src/extract/read-batching.ts";
import { ADVERSARIAL_STRINGS } from "../support/adversarial.ts";
import { chunkingProxy } from "../support/chunking-proxy.ts";
import { skipWithoutTestEnv, testEnv } from "../support/env.ts";
import { rootConnection, testConnection, writeTestConfig } from "../support/mysql.ts";

const skip = skipWithoutTestEnv();
let db: mysqlPromise.Connection;
let connection: Connection;

// The adversarial values, the long one shortened to fit a TEXT column, and one of 100 KB whose
// every character needs quoting or escaping.
const STRINGS: (string | null)[] = [
  ...ADVERSARIAL_STRINGS.map((s) => (s !== null && s.length > 300 ? s.slice(0, 300) : s)),
  'é,\\"'.repeat(20_000),
];

/** The [mysql] section of a test config, as panorama loads it. */
function mysqlConfig(): MysqlConfig {
  const cfg = writeTestConfig();
  return parseConfig(readFileSync(cfg.file, "utf8"), cfg.file, {}).config.mysql;
}

async function kindsOf(table: string): Promise<ColumnKind[]> {
  const columns = await tableColumns(connection, testEnv().mysql.scratchDatabase, table);
  return (columns ?? []).map((c) => columnKind(c.type));
}

/** The table through streamCsv: its bytes, and whether they came from the packets. */
async function streamed(table: string, chunks: { count: number }, over: Connection = connection) {
  const kinds = await kindsOf(table);
  const parts: Buffer[] = [];
  const result = await streamCsv(over, `SELECT * FROM ${table} ORDER BY 1`, [], kinds, (data) => {
    chunks.count++;
    parts.push(typeof data === "string" ? Buffer.from(data) : Buffer.from(data));
    return undefined;
  });
  return { ...result, text: Buffer.concat(parts).toString("utf8") };
}

/** The reference: mysql2's parsed values, encoded by encodeRows(). */
async function parsed(table: string): Promise<{ rows: number; text: string }> {
  const kinds = await kindsOf(table);
  const rows = await query<(string | number | Uint8Array | null)[]>(
    connection,
    `SELECT * FROM ${table} ORDER BY 1`,
    [],
    true,
  );
  return { rows: rows.length, text: encodeRows(rows, kinds) };
}

beforeAll(async () => {
  if (skip) return;
  db = await testConnection(testEnv().mysql.scratchDatabase);
  connection = await connect(mysqlConfig());
  await db.query(`DROP TABLE IF EXISTS raw_types; DROP TABLE IF EXISTS raw_fallback;
    CREATE TABLE raw_types (
      id INT PRIMARY KEY, ti TINYINT, si SMALLINT UNSIGNED, mi MEDIUMINT, bi BIGINT, ubi BIGINT UNSIGNED,
      yr YEAR, bo BOOLEAN, de DECIMAL(30,10), fl FLOAT, db DOUBLE, dt DATETIME, dt3 DATETIME(3),
      dt6 DATETIME(6), ts TIMESTAMP(2) NULL, d DATE, t TIME(1), vc VARCHAR(255), ch CHAR(5), tx TEXT,
      lt LONGTEXT, j JSON, en ENUM('a','b,c'), st SET('x','y'), vb VARBINARY(20), bl MEDIUMBLOB,
      bits BIT(12), z INT(6) ZEROFILL
    ) CHARSET utf8mb4;
    CREATE TABLE raw_fallback (id INT PRIMARY KEY, dt DATETIME, s VARCHAR(50)) CHARSET utf8mb4;`);
  const numbers = [
    ["-128", "0", "-8388608", "-9223372036854775808", "18446744073709551615", "1901", "1"],
    ["127", "65535", "8388607", "9007199254740993", "0", "2155", "0"],
    [null, null, null, null, null, null, null],
  ];
  const reals = [
    ["-12345678901234567890.0123456789", 2.5, 0.1 + 0.2],
    ["0.0000000001", -1e-30, 1.7976931348623157e308],
    ["0.0000000000", 1e20, 5e-324],
    [null, null, null],
    ["1.5000000000", 0, -0.0],
  ];
  const times = [
    ["2024-02-29 23:59:59", "2024-02-29 23:59:59.120", "2024-02-29 23:59:59.000001", "2024-01-01 00:00:00.5"],
    ["1000-01-01 00:00:00", "9999-12-31 23:59:59.999", "2000-01-01 00:00:00.100000", null],
    [null, null, null, "2038-01-19 03:14:07.99"],
  ];
  for (const [i, s] of STRINGS.entries()) {
    const n = numbers[i % numbers.length]!;
    const r = reals[i % reals.length]!;
    const t = times[i % times.length]!;
    const json = s === null ? null : JSON.stringify({ s, i });
    await db.query(
      "INSERT INTO raw_types VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
      [
        i,
        ...n,
        ...r,
        ...t,
        i % 3 === 2 ? null : "2024-02-29",
        i % 3 === 2 ? null : "-838:59:58.5",
        s === null ? null : s.slice(0, 255),
        s === null ? null : s.slice(0, 5),
        s === null ? null : s.slice(0, 10_000),
        s,
        json,
        i % 3 === 0 ? "b,c" : i % 3 === 1 ? "a" : null,
        i % 2 === 0 ? "x,y" : "",
        s === null ? null : Buffer.from(s).subarray(0, 20),
        s === null ? null : Buffer.from(s),
        i % 3 === 2 ? null : [0, 1, 4095][i % 3],
        i % 3 === 2 ? null : [0, 42, 123456][i % 3],
      ],
    );
  }
  await db.query(
    "INSERT INTO raw_fallback VALUES (1, '2024-01-01 10:00:00', 'a,b'), (2, NULL, NULL), (3, '2024-01-01 10:00:00', '\"')",
  );
});

afterAll(async () => {
  if (connection) await close(connection);
  await db?.end();
});

describe.skipIf(skip)("rows from the packets", () => {
  test("every type family and awkward value: the bytes of mysql2's parse + encodeRows", async () => {
    const reference = await parsed("raw_types");
    const chunks = { count: 0 };
    const fast = await streamed("raw_types", chunks);
    expect(fast.raw).toBe(true);
    expect(fast.rows).toBe(STRINGS.length);
    expect(reference.rows).toBe(STRINGS.length);
    // Line by line first, so that a difference names its row.
    expect(fast.text.split("\r\n")).toEqual(reference.text.split("\r\n"));
    expect(fast.text).toBe(reference.text);
    // Spot checks that the reference itself holds what DESIGN §5 asks for.
    expect(fast.text).toContain(",18446744073709551615,");
    expect(fast.text).toContain(",2024-02-29 23:59:59.000000,2024-02-29 23:59:59.120000,");
    expect(fast.text).toContain(",0.30000000000000004,");
    expect(fast.text).toContain(',"\\"quoted\\" at the start",');
  });

  test("a kind that disagrees with the server's type: mysql2's parse, with the same result", async () => {
    // `dt` configured as a string although it is a DATETIME: written as the server's text.
    const kinds: ColumnKind[] = ["integer", "string", "string"];
    const parts: string[] = [];
    const result = await streamCsv(connection, "SELECT * FROM raw_fallback ORDER BY 1", [], kinds, (data) => {
      parts.push(typeof data === "string" ? data : Buffer.from(data).toString("utf8"));
      return undefined;
    });
    expect(result).toEqual({ rows: 3, raw: false });
    expect(parts.join("")).toBe('1,2024-01-01 10:00:00,"a,b"\r\n2,,\r\n3,2024-01-01 10:00:00,"\\""\r\n');
  });

  test("ZEROFILL integers are written as their numbers, BIGINT included; BIT as its number", async () => {
    await db.query(`DROP TABLE IF EXISTS raw_zerofill;
      CREATE TABLE raw_zerofill (id INT, i INT(8) ZEROFILL, b BIGINT(25) ZEROFILL, y YEAR, bits BIT(64));
      INSERT INTO raw_zerofill VALUES (1, 42, 42, 2024, b'1111111111111111111111111111111111111111111111111111111111111111'),
        (2, 0, 0, 0, b'0'), (3, NULL, NULL, NULL, NULL);`);
    const fast = await streamed("raw_zerofill", { count: 0 });
    expect(fast.raw).toBe(true);
    expect(fast.text).toBe("1,42,42,2024,18446744073709551615\r\n2,0,0,0,0\r\n3,,,,\r\n");
  });

  test("an empty result, and a query error, from either path", async () => {
    await db.query("DROP TABLE IF EXISTS raw_empty; CREATE TABLE raw_empty (id INT, s TEXT)");
    const empty = await streamed("raw_empty", { count: 0 });
    expect(empty).toEqual({ rows: 0, raw: true, text: "" });
    await expect(
      streamCsv(connection, "SELECT nope FROM raw_empty", [], ["string"], () => undefined),
    ).rejects.toThrow(/Unknown column 'nope'/);
    // streamCsv destroys a connection that failed mid-result: a fresh one for what follows.
    connection = await connect(mysqlConfig());
  });
});

// Every column but BIT is encoded by the WebAssembly module (src/extract/wasm/rows-to-csv.c) from
// the bytes read off the socket; a DOUBLE whose text is not already the CSV's goes back to the
// reference encoder, the end of the rows and a row split in several packets to mysql2's parser.
describe.skipIf(skip)("rows through the WebAssembly encoder", () => {
  const COLUMNS =
    "id, ti, si, mi, bi, ubi, yr, bo, de, fl, db, dt, dt3, dt6, ts, d, t, vc, ch, tx, lt, j, en, st, vb, bl, z";

  beforeAll(async () => {
    if (skip) return;
    // Enough rows for many reads (a cell larger than the module's input area: the next test).
    await db.query(`DROP TABLE IF EXISTS raw_batch;
      CREATE TABLE raw_batch AS SELECT ${COLUMNS} FROM raw_types;
      INSERT INTO raw_batch SELECT id + 1000, ${COLUMNS.replace("id, ", "")} FROM raw_types;
      INSERT INTO raw_batch SELECT id + 2000, ${COLUMNS.replace("id, ", "")} FROM raw_types;`);
  });

  test("a connection's socket has the descriptor the read batching needs (Bun's `_handle.fd`), which takes the mark", async () => {
    // Without it the reads of a result are gathered no more: the bytes stay right, the CPU does not.
    const socket = (connection as unknown as { stream: unknown }).stream;
    const batching = batchReads(socket, LOW_WATER_BYTES, WAIT_MS, 0);
    expect(batching).not.toBeNull();
    batching!.stop();
    const [row] = await query<{ one: number }>(connection, "SELECT 1 AS one");
    expect(row!.one).toBe(1);
  });

  test("the reference's bytes, read in one piece or in pieces that end anywhere; the connection goes on", async () => {
    const reference = await parsed("raw_batch");
    const direct = await streamed("raw_batch", { count: 0 });
    expect(direct.raw).toBe(true);
    expect(direct.rows).toBe(reference.rows);
    expect(direct.text.split("\r\n")).toEqual(reference.text.split("\r\n"));
    expect(direct.text).toBe(reference.text);
    // A small result comes whole with its fields, its end too: each query gives mysql2 its
    // parser back, or the next one's packets would be read as rows.
    await db.query(`DROP TABLE IF EXISTS raw_small;
      CREATE TABLE raw_small (id INT PRIMARY KEY, s VARCHAR(20));
      INSERT INTO raw_small VALUES (1, 'a,b'), (2, NULL);`);
    for (let i = 0; i < 3; i++) {
      expect(await streamed("raw_small", { count: 0 })).toEqual({
        rows: 2,
        raw: true,
        text: '1,"a,b"\r\n2,\r\n',
      });
    }
    expect(await query(connection, "SELECT 1 AS one")).toEqual([{ one: 1 }]);

    const env = testEnv().mysql;
    const errors: unknown[] = [];
    const consoleError = console.error;
    console.error = (...args: unknown[]) => errors.push(args);
    try {
      for (const maxPiece of [5, 1500]) {
        const proxy = await chunkingProxy({ host: env.host, port: env.port }, maxPiece, maxPiece);
        const through = await connect({ ...mysqlConfig(), host: "127.0.0.1", port: proxy.port });
        try {
          const result = await streamed("raw_batch", { count: 0 }, through);
          expect(result.rows).toBe(reference.rows);
          expect(result.text === reference.text).toBe(true);
          // mysql2 has its parser back, in step: the next query on the connection works.
          expect(await query(through, "SELECT 1 AS one")).toEqual([{ one: 1 }]);
          expect(proxy.pieces()).toBeGreaterThan(maxPiece === 5 ? 100_000 : 1000);
        } finally {
          await close(through);
          await proxy.close();
        }
      }
    } finally {
      console.error = consoleError;
    }
    // mysql2 says "got packets out of order" on console.error when its sequence ids slip.
    expect(errors).toEqual([]);
  }, 60_000);

  test("a row of more than 16 MiB (several packets) and the rows after it", async () => {
    // The server sends no row larger than max_allowed_packet (16 MiB here): raised for this test.
    const root = await rootConnection();
    try {
      await root.query("SET GLOBAL max_allowed_packet = 67108864");
    } finally {
      await root.end();
    }
    const setup = await testConnection(testEnv().mysql.scratchDatabase);
    try {
      await setup.query(`DROP TABLE IF EXISTS raw_huge;
        CREATE TABLE raw_huge (id INT PRIMARY KEY, s LONGTEXT, d DOUBLE) CHARSET utf8mb4;
        INSERT INTO raw_huge VALUES (1, 'before', 1), (2, REPEAT('x,"', 5800000), 0.5),
          (3, REPEAT('y', 2500000), 2), (4, 'after', 0.1e0 + 0.2e0), (5, NULL, NULL);`);
    } finally {
      await setup.end();
    }
    const big = await connect(mysqlConfig());
    try {
      const result = await streamed("raw_huge", { count: 0 }, big);
      expect(result.rows).toBe(5);
      const lines = result.text.split("\r\n");
      expect(lines[0]).toBe("1,before,1.0");
      expect(lines[1] === `2,"${'x,\\"'.repeat(5800000)}",0.5`).toBe(true);
      // 2.5 MB: more than the module's input area, which grows for it
      expect(lines[2] === `3,${"y".repeat(2500000)},2.0`).toBe(true);
      expect(lines.slice(3)).toEqual(["4,after,0.30000000000000004", "5,,", ""]);
      expect(await query(big, "SELECT 2 AS two")).toEqual([{ two: 2 }]);
    } finally {
      await close(big);
    }
  }, 60_000);
});
