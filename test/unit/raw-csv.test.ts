// The byte-level row encoder on hand-built text-protocol rows: every length encoding of the
// protocol (1, 3, 4 and 9 bytes), NULL, chunk boundaries, a row larger than the chunk, and the
// same CSV as encodeRows() gives for the values mysql2 would parse from those bytes.
import { expect, test } from "bun:test";
import { encodeRows } from "../../src/extract/csv.ts";
import { RawRowEncoder, rawPlan } from "../../src/extract/raw-csv.ts";
import { rowPayload } from "../support/row-packet.ts";

const TEXT_FIELD = { columnType: 253, characterSet: 224, flags: 0 };
const FIELDS = [
  { columnType: 3, characterSet: 63, flags: 0 }, // INT
  TEXT_FIELD,
  { columnType: 12, characterSet: 63, flags: 0 }, // DATETIME
  { columnType: 5, characterSet: 63, flags: 0 }, // DOUBLE
  { columnType: 253, characterSet: 63, flags: 0 }, // VARBINARY
  { columnType: 246, characterSet: 63, flags: 0 }, // DECIMAL
];
const KINDS = ["integer", "string", "datetime", "double", "binary", "decimal"] as const;

function encodeAll(rows: Buffer[], chunkBytes: number): { text: string; rows: number; flushes: number } {
  const codes = rawPlan(FIELDS, [...KINDS]);
  if (!codes) throw new Error("expected a raw plan");
  const out: Buffer[] = [];
  let counted = 0;
  let flushes = 0;
  const encoder = new RawRowEncoder(
    codes,
    (bytes, n) => {
      out.push(Buffer.from(bytes)); // copied: the view is only valid during the call
      counted += n;
      flushes++;
    },
    chunkBytes,
  );
  for (const row of rows) encoder.row(row, 0, row.length);
  encoder.flush();
  expect(encoder.rows).toBe(rows.length);
  return { text: Buffer.concat(out).toString("utf8"), rows: counted, flushes };
}

test("the CSV of encodeRows() on the values mysql2 parses, through every length encoding and chunk size", () => {
  const big = `${'a\\b"c,d\re\nf é😀'.repeat(5000)}`; // 70+ KB: a 4-byte length
  const huge = "z".repeat(2 ** 24 + 10); // beyond 16 MiB: a 9-byte length
  const cells: [string, string | null, string | null, string | null, Uint8Array | null, string | null][] = [
    ["1", "plain", "2024-01-02 03:04:05", "0.1", new Uint8Array([0, 255, 16]), "-1.50"],
    ["-2147483648", "", "2024-01-02 03:04:05.5", "1e-7", new Uint8Array([]), "0.0000000001"],
    ["3", null, null, null, null, null],
    ["4", '"quoted", with \\ and\r\nnewlines', "2024-01-02 03:04:05.123456", "-0", null, "1"],
    ["5", "x".repeat(300), "1000-01-01 00:00:00", "1.7976931348623157e308", new Uint8Array(300).fill(7), "2"],
    ["6", big, "9999-12-31 23:59:59.99", "5e-324", null, "3"],
    ["7", huge, "2024-01-01 00:00:00", "123456789.123", null, "4"],
  ];
  const expected = encodeRows(
    cells.map(([i, s, dt, d, b, dec]) => [Number(i), s, dt, d === null ? null : Number(d), b, dec]),
    [...KINDS],
  );
  const rows = cells.map((row) => rowPayload(row));
  for (const chunk of [64, 1024, 1 << 16]) {
    const result = encodeAll(rows, chunk);
    expect(result.rows).toBe(cells.length);
    expect(result.text.length).toBe(expected.length);
    expect(result.text === expected).toBe(true);
    // Small chunks: the rows arrive over several hand-overs, each counting the rows it completes.
    if (chunk === 64) expect(result.flushes).toBeGreaterThan(3);
  }
  // A 16 MiB cell encoded three times: beyond the default 5 s on a busy shared machine.
}, 30_000);

test("rawPlan leaves to mysql2 what it cannot copy exactly", () => {
  expect(rawPlan([TEXT_FIELD], ["string"])).not.toBeNull();
  // GEOMETRY, a DATETIME configured as a string, a DOUBLE configured as an integer, column count
  expect(rawPlan([{ columnType: 255, characterSet: 63, flags: 0 }], ["string"])).toBeNull();
  expect(rawPlan([{ columnType: 12, characterSet: 63, flags: 0 }], ["string"])).toBeNull();
  expect(rawPlan([{ columnType: 5, characterSet: 63, flags: 0 }], ["integer"])).toBeNull();
  expect(rawPlan([TEXT_FIELD, TEXT_FIELD], ["string"])).toBeNull();
  // MySQL's JSON type reports the binary charset but is text; other binary strings are hex.
  const json = rawPlan([{ columnType: 245, characterSet: 63, flags: 0 }], ["json"]);
  const bytes = rawPlan([{ columnType: 252, characterSet: 63, flags: 0 }], ["string"]);
  const out: string[] = [];
  const sink = (b: Buffer) => {
    out.push(b.toString("utf8"));
  };
  const jsonEncoder = new RawRowEncoder(json!, sink);
  jsonEncoder.row(rowPayload(['{"a": 1}']), 0, rowPayload(['{"a": 1}']).length);
  jsonEncoder.flush();
  const bytesEncoder = new RawRowEncoder(bytes!, sink);
  bytesEncoder.row(rowPayload(["AB"]), 0, 3);
  bytesEncoder.flush();
  expect(out).toEqual(['"{\\"a\\": 1}"\r\n', "4142\r\n"]);
});

test("a layout's empty columns (SELECT NULL AS name: the NULL type, binary charset) keep the raw path and write empty fields", () => {
  const NULL_LITERAL = { columnType: 6, characterSet: 63, flags: 0 };
  const codes = rawPlan(
    [FIELDS[0]!, NULL_LITERAL, TEXT_FIELD, NULL_LITERAL],
    ["integer", "string", "string", "datetime"],
  );
  expect(codes).not.toBeNull();
  const out: string[] = [];
  const encoder = new RawRowEncoder(codes!, (bytes) => out.push(bytes.toString("utf8")));
  encoder.row(rowPayload(["7", null, "a,b", null]), 0, rowPayload(["7", null, "a,b", null]).length);
  encoder.flush();
  expect(out.join("")).toBe('7,,"a,b",\r\n');
});

// Column definitions as MySQL 8.0/8.4 sends them (MariaDB differs): utf8mb4 text under MySQL 8's
// default collation utf8mb4_0900_ai_ci (id 255) or utf8mb4_bin (46), and the JSON type (245) with
// the binary character set (63) and BLOB|BINARY flags, whose bytes are nevertheless UTF-8 text.
const MYSQL8_FIELDS = [
  { columnType: 3, characterSet: 63, flags: 0x4203 }, // INT NOT NULL PRIMARY KEY AUTO_INCREMENT
  { columnType: 253, characterSet: 255, flags: 0x1001 }, // VARCHAR(255) utf8mb4_0900_ai_ci NOT NULL
  { columnType: 252, characterSet: 46, flags: 0x10 }, // LONGTEXT utf8mb4_bin
  { columnType: 245, characterSet: 63, flags: 0x90 }, // JSON
  { columnType: 245, characterSet: 63, flags: 0x90 }, // JSON, configured as a string
  { columnType: 12, characterSet: 63, flags: 0x80 }, // DATETIME(6)
  { columnType: 1, characterSet: 63, flags: 0x1 }, // TINYINT(1) NOT NULL
  { columnType: 252, characterSet: 63, flags: 0x90 }, // LONGBLOB
];
const MYSQL8_KINDS = [
  "integer",
  "string",
  "string",
  "json",
  "string",
  "datetime",
  "integer",
  "binary",
] as const;

test("MySQL 8 column definitions: utf8mb4 under 0900 collations and the binary-charset JSON type are UTF-8 text, byte for byte", () => {
  const codes = rawPlan(MYSQL8_FIELDS, [...MYSQL8_KINDS]);
  expect(codes).not.toBeNull();
  // JSON as MySQL 8 prints it (normalised spacing), with characters beyond the BMP and escapes.
  const cells: (string | Uint8Array | null)[][] = [
    [
      "1",
      'Café 😀, "quoted"',
      "line\r\nbreak \\ 日本語",
      '{"lang": "fr", "emoji": "🎓", "q": "a\\"b"}',
      '[1, 2.5, {"k": null}]',
      "2024-02-29 23:59:59.000001",
      "1",
      new Uint8Array([0xf0, 0x9f, 0x98, 0x80, 0x00]),
    ],
    ["2", "", null, null, "{}", "2024-01-01 00:00:00", "0", null],
  ];
  const out: Buffer[] = [];
  const encoder = new RawRowEncoder(codes!, (bytes) => {
    out.push(Buffer.from(bytes));
  });
  for (const row of cells) {
    const payload = rowPayload(row);
    encoder.row(payload, 0, payload.length);
  }
  encoder.flush();
  // What mysql2 parses from those bytes (JSON read as UTF-8 with jsonStrings, the blob as bytes),
  // through the value encoder.
  const expected = encodeRows(
    cells.map((row) => row.map((cell, i) => ((i === 0 || i === 6) && cell !== null ? Number(cell) : cell))),
    [...MYSQL8_KINDS],
  );
  const text = Buffer.concat(out).toString("utf8");
  expect(text).toBe(expected);
  // The JSON cells are their text (quoted for their commas and quotes), never hex; the blob is.
  expect(text).toContain('"{\\"lang\\": \\"fr\\", \\"emoji\\": \\"🎓\\"');
  expect(text).toContain(',"[1, 2.5, {\\"k\\": null}]",');
  expect(text).toContain(",f09f988000\r\n");
});
