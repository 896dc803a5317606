import { describe, expect, test } from "bun:test";
import type { CellValue, ColumnKind } from "../../src/extract/csv.ts";
import { canonicalForm, columnKind, encodeHeader, encodeRows, formatDouble } from "../../src/extract/csv.ts";
import { decodeFile, readRecord } from "../support/opencsv.ts";

/** Encode header + rows, decode them the way OpenCSVSerde does, drop the header. */
function roundTrip(rows: CellValue[][], kinds: ColumnKind[]): string[][] {
  const names = kinds.map((_, i) => `c${i}`);
  const decoded = decodeFile(encodeHeader(names) + encodeRows(rows, kinds));
  expect(decoded[0]).toEqual(names);
  return decoded.slice(1);
}

const ADVERSARIAL: string[] = [
  '"',
  '""',
  '"hello"', // a JSON string value: begins with a quote
  'a"b',
  '"a',
  'a"',
  ",",
  ",,",
  "a,b",
  ",lead",
  "trail,",
  "\\",
  "\\\\",
  "\\a",
  "a\\",
  "\\start",
  "end\\",
  '\\"',
  '"\\',
  "\\,",
  ",\\",
  "\r",
  "\n",
  "\r\n",
  "\n\r",
  "a\r\nb",
  "line1\nline2\n",
  "\\n is not a newline",
  "\t",
  "\ttab lead",
  " lead space",
  "trail space ",
  ' "x"',
  ' "',
  "ñandú",
  "日本語のテキスト",
  "emoji 😀 and 👩‍👩‍👧",
  "😀",
  "NULL",
  "null",
  "''",
  "'",
  "a\u00a0b",
  "\u2028\u2029",
  "\u0000nul",
  '{"a": "b,c", "d": [1, 2], "e": "back\\\\slash", "f": "line\\nbreak"}',
  '[1,"two",null,{"x":"y"}]',
  "x".repeat(5),
];

describe("columnKind", () => {
  test("maps MySQL types, with or without length and attributes", () => {
    const cases: [string, ColumnKind][] = [
      ["int", "integer"],
      ["INT(11) UNSIGNED", "integer"],
      ["tinyint(1)", "integer"],
      ["smallint", "integer"],
      ["mediumint", "integer"],
      ["bigint unsigned", "integer"],
      ["year", "integer"],
      ["bit(1)", "integer"],
      ["decimal(10,2)", "decimal"],
      ["numeric", "decimal"],
      ["float", "double"],
      ["double", "double"],
      ["real", "double"],
      ["datetime(6)", "datetime"],
      ["timestamp", "datetime"],
      ["date", "date"],
      ["time(3)", "time"],
      ["json", "json"],
      ["binary(16)", "binary"],
      ["varbinary(255)", "binary"],
      ["tinyblob", "binary"],
      ["blob", "binary"],
      ["mediumblob", "binary"],
      ["longblob", "binary"],
      ["char(32)", "string"],
      ["varchar(255)", "string"],
      ["longtext", "string"],
      ["enum('a','b')", "string"],
      ["set('x')", "string"],
      ["geometry", "string"],
      ["", "string"],
    ];
    for (const [type, kind] of cases) expect([type, columnKind(type)]).toEqual([type, kind]);
  });
});

describe("canonicalForm", () => {
  test("backslash, CR and LF become two characters each, in one pass", () => {
    expect(canonicalForm("a\\b")).toBe("a\\\\b");
    expect(canonicalForm("a\r\nb")).toBe("a\\r\\nb");
    expect(canonicalForm("\\n")).toBe("\\\\n");
    expect(canonicalForm('plain, "quoted"')).toBe('plain, "quoted"');
  });
});

describe("encodeRows bytes", () => {
  test("quotes only what needs it, escapes with backslashes, ends rows with CRLF", () => {
    const rows: CellValue[][] = [["plain", "a,b", '"hello"', "back\\slash", "l1\nl2", "", null]];
    const kinds: ColumnKind[] = ["string", "string", "string", "string", "string", "string", "string"];
    expect(encodeRows(rows, kinds)).toBe('plain,"a,b","\\"hello\\"","back\\\\\\\\slash","l1\\\\nl2",,\r\n');
  });

  test("header row", () => {
    expect(encodeHeader(["id", "course_id"])).toBe("id,course_id\r\n");
  });

  test("NULL and the empty string are both an empty field; 'NULL' is text", () => {
    expect(encodeRows([[null, "", "NULL"]], ["string", "string", "string"])).toBe(",,NULL\r\n");
    expect(roundTrip([[null, "", "NULL"]], ["string", "string", "string"])).toEqual([["", "", "NULL"]]);
  });

  test("a row with the wrong number of values is a bug, not a file", () => {
    expect(() => encodeRows([["a"]], ["string", "string"])).toThrow(/row 1 .* 1 values, expected 2/);
  });
});

describe("strings read back as their canonical form", () => {
  test("adversarial values in first, middle and last position", () => {
    const kinds: ColumnKind[] = ["string", "json", "string"];
    const rows: CellValue[][] = [];
    for (const s of ADVERSARIAL) rows.push([s, s, s], [s, "x", null], [null, s, "y"], ["", "z", s]);
    const decoded = roundTrip(rows, kinds);
    expect(decoded.length).toBe(rows.length);
    decoded.forEach((fields, r) => {
      const expected = rows[r]!.map((v) => (v === null ? "" : canonicalForm(String(v))));
      expect({ row: r, fields }).toEqual({ row: r, fields: expected });
    });
  });

  test("a 70 KB text", () => {
    const chunk = 'Lorem ipsum, "dolor" sit\\amet\r\nconsectetur 😀 ñ\t';
    const big = chunk.repeat(Math.ceil(70_000 / chunk.length));
    expect(big.length).toBeGreaterThan(70_000);
    expect(roundTrip([[1, big, 2]], ["integer", "string", "integer"])).toEqual([
      ["1", canonicalForm(big), "2"],
    ]);
  });

  test("randomized strings over a hostile alphabet (seeded)", () => {
    let seed = 20240301;
    const random = (): number => {
      // mulberry32
      seed = (seed + 0x6d2b79f5) | 0;
      let t = seed;
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
    const alphabet = ['"', ",", "\\", "\r", "\n", "a", " ", "\t", "'", "é", "😀", "日", "x", "N", "\u2003"];
    const pick = (): string => alphabet[Math.floor(random() * alphabet.length)]!;
    const kinds: ColumnKind[] = ["string", "json", "string"];
    const rows: CellValue[][] = [];
    for (let i = 0; i < 3000; i++) {
      const row: CellValue[] = [];
      for (let c = 0; c < kinds.length; c++) {
        const len = Math.floor(random() * 12);
        let s = "";
        for (let k = 0; k < len; k++) s += pick();
        row.push(random() < 0.05 ? null : s);
      }
      rows.push(row);
    }
    const decoded = roundTrip(rows, kinds);
    expect(decoded.length).toBe(rows.length);
    for (let r = 0; r < rows.length; r++) {
      const expected = rows[r]!.map((v) => (v === null ? "" : canonicalForm(String(v))));
      if (JSON.stringify(decoded[r]) !== JSON.stringify(expected)) {
        expect({ row: rows[r], decoded: decoded[r] }).toEqual({ row: rows[r], decoded: expected });
      }
    }
  });
});

describe("numbers, dates and bytes", () => {
  test("integers of any size, exactly", () => {
    const values: CellValue[] = [
      "-9223372036854775808",
      "9223372036854775807",
      "18446744073709551615",
      "9007199254740993", // 2^53 + 1
      0,
      -1,
      2147483647,
      -0,
      2n ** 63n - 1n,
      new Uint8Array([0x01]), // BIT(1)
      new Uint8Array([0xff, 0xff]), // BIT(16)
    ];
    const decoded = roundTrip(
      values.map((v) => [v]),
      ["integer"],
    );
    expect(decoded.map((f) => f[0])).toEqual([
      "-9223372036854775808",
      "9223372036854775807",
      "18446744073709551615",
      "9007199254740993",
      "0",
      "-1",
      "2147483647",
      "0",
      "9223372036854775807",
      "1",
      "65535",
    ]);
  });

  test("an integer that arrived as an imprecise JS number is refused", () => {
    expect(() => encodeRows([[2 ** 53 + 2]], ["integer"])).toThrow(/integer column 1 .*bigNumberStrings/);
    expect(() => encodeRows([[1.5]], ["integer"])).toThrow(RangeError);
  });

  test("DATETIME/TIMESTAMP always have 6 fractional digits; DATE, TIME, DECIMAL keep the server text", () => {
    const rows: CellValue[][] = [
      ["2024-03-01 12:34:56.123456", "2024-03-01", "12:34:56", "-12345678901234567890.1234567890"],
      ["2024-03-01 12:34:56", "1000-01-01", "-838:59:59", "0.00000001"],
      ["2024-03-01 12:34:56.5", "9999-12-31", "12:00:00.500000", "0.00"],
      ["2024-03-01 12:34:56.12345", "0000-00-00", "00:00:00", "-0.5"],
      ["0000-00-00 00:00:00", null, null, null],
    ];
    expect(roundTrip(rows, ["datetime", "date", "time", "decimal"])).toEqual([
      ["2024-03-01 12:34:56.123456", "2024-03-01", "12:34:56", "-12345678901234567890.1234567890"],
      ["2024-03-01 12:34:56.000000", "1000-01-01", "-838:59:59", "0.00000001"],
      ["2024-03-01 12:34:56.500000", "9999-12-31", "12:00:00.500000", "0.00"],
      ["2024-03-01 12:34:56.123450", "0000-00-00", "00:00:00", "-0.5"],
      ["0000-00-00 00:00:00.000000", "", "", ""],
    ]);
  });

  test("DOUBLE reads back as the same number", () => {
    const values = [
      Number.MAX_VALUE,
      Number.MIN_VALUE,
      -Number.MAX_VALUE,
      -0,
      0,
      0.1 + 0.2,
      1,
      -2.5,
      1e16,
      1e21,
      1e-7,
      2 ** 53 + 2,
      Math.PI,
    ];
    const decoded = roundTrip(
      values.map((v) => [v]),
      ["double"],
    );
    decoded.forEach((f, i) => {
      expect(Object.is(Number(f[0]), values[i])).toBe(true);
      // Java's Double.parseDouble grammar (Athena's CAST(x AS DOUBLE)) for finite values.
      expect(f[0]).toMatch(/^-?\d+(\.\d+)?(e[+-]\d+)?$/);
    });
  });

  test("DOUBLE text is laid out like Python's repr(), as upstream wrote it", () => {
    // Computed with Python 3.11: repr(float) of the same values.
    const pythonRepr = [
      "1.0",
      "-0.0",
      "0.0",
      "0.30000000000000004",
      "1e+16",
      "1000000000000000.0",
      "1.2345678901234568e+17",
      "1e+21",
      "5e-324",
      "1.7976931348623157e+308",
      "2.2250738585072014e-308",
      "0.0001",
      "1e-05",
      "9.999999999999999e-05",
      "0.00012345",
      "1.5e-07",
      "-2.5",
      "100.0",
      "9007199254740992.0",
      "9999999999999998.0",
      "1e+300",
      "1.2345678901234567e-100",
      "0.6666666666666666",
      "2.5e+20",
      "12345678.9",
      "-1.989032661366619e+244",
      "7.761117632285041e+178",
      "3.980498358697587e-249",
      "-1.5432835417340557e+88",
      "6.294675241195386e-44",
      "6.387016158513563e-12",
      "-3.51527970626667e-203",
      "4.6678633181812096e-36",
      "1.9015657400796622e-144",
    ];
    for (const text of pythonRepr) expect([text, formatDouble(Number(text))]).toEqual([text, text]);
  });

  test("non-finite doubles are spelled the way Java reads them", () => {
    expect([Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY].map(formatDouble)).toEqual([
      "NaN",
      "Infinity",
      "-Infinity",
    ]);
  });

  test("DOUBLE and DECIMAL that arrived as server text are kept", () => {
    expect(roundTrip([["1.5", "3.14"]], ["double", "decimal"])).toEqual([["1.5", "3.14"]]);
  });

  test("binary columns are lowercase hex", () => {
    const rows: CellValue[][] = [
      [new Uint8Array([0x00, 0xff, 0x10, 0xab])],
      [Buffer.from("héllo", "utf8")],
      [new Uint8Array(new ArrayBuffer(8), 2, 3).fill(0xcd)],
      ["text"],
    ];
    expect(roundTrip(rows, ["binary"]).map((f) => f[0])).toEqual([
      "00ff10ab",
      "68c3a96c6c6f",
      "cdcdcd",
      "74657874",
    ]);
  });
});

describe("the opencsv 2.x decoder used by these tests", () => {
  test("agrees with opencsv's own CSVParser test cases", () => {
    expect(readRecord("This, is, a, test.")).toEqual(["This", " is", " a", " test."]);
    expect(readRecord('a,123"4"567,c')).toEqual(["a", '123"4"567', "c"]);
    expect(readRecord('a,"b,b,b",c')).toEqual(["a", "b,b,b", "c"]);
    expect(readRecord(",,")).toEqual(["", "", ""]);
    expect(readRecord('a,"""",c')).toEqual(["a", '"', "c"]);
    expect(readRecord('"test","this,test,is,good","\\"test\\"","\\"quote\\""')).toEqual([
      "test",
      "this,test,is,good",
      '"test"',
      '"quote"',
    ]);
    expect(readRecord('"this", "is","a test"')).toEqual(["this", "is", "a test"]);
    expect(readRecord('"804503689","London",""London"shop","address","116.453182","39.918884"')).toEqual([
      "804503689",
      "London",
      '"London"shop',
      "address",
      "116.453182",
      "39.918884",
    ]);
  });

  test("a lone escape char is dropped; escapes count only in quotes or after a field's first char", () => {
    expect(readRecord("\\a,b")).toEqual(["a", "b"]);
    expect(readRecord("a\\\\b,c")).toEqual(["a\\b", "c"]);
    expect(readRecord("\\\\x")).toEqual(["x"]);
  });

  test("splits records on LF, CR and CRLF like Hadoop's line reader", () => {
    expect(decodeFile("a\r\nb\nc\rd\r\n")).toEqual([["a"], ["b"], ["c"], ["d"]]);
  });
});

describe("why strings are quoted (upstream's unquoted backslash escapes)", () => {
  // Bytes written by upstream's save_rows (csv.writer(doublequote=False, escapechar='\\') on
  // values whose backslashes were doubled first), computed with Python 3.11.
  test("a value beginning with a quote makes OpenCSVSerde lose the whole row", () => {
    const upstream = '\\"hello\\",x\r\n';
    expect(decodeFile(upstream)).toEqual([[]]); // readNext() gives null: every column NULL
    expect(roundTrip([['"hello"', "x"]], ["json", "string"])).toEqual([['"hello"', "x"]]);
  });

  test("a value beginning with a backslash loses its backslashes", () => {
    const upstream = "\\\\\\\\start,y\r\n"; // \\\\start,y
    expect(decodeFile(upstream)).toEqual([["start", "y"]]);
    expect(roundTrip([["\\start", "y"]], ["string", "string"])).toEqual([["\\\\start", "y"]]);
  });
});
