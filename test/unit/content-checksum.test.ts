// The SQL of the content checksum (content-checksum.ts): what each row's hash covers, and when the
// signature is not trusted. The server side is tested in test/integration/unchanged-probe.test.ts.
import { describe, expect, test } from "bun:test";
import { checksumMeasures, checksumSignature, rowHash } from "../../src/extract/content-checksum.ts";

describe("rowHash", () => {
  test("each column NUL-joined (a binary string: the values' bytes), then which nullable ones are NULL", () => {
    expect(rowHash([{ name: "a" }, { name: "b", notNull: true }, { name: "c" }])).toBe(
      "CRC32(CONCAT_WS(X'00', `a`, `b`, `c`, CONCAT(ISNULL(`a`), ISNULL(`c`))))",
    );
  });

  test("no NULL marks when every column is NOT NULL", () => {
    expect(
      rowHash([
        { name: "id", notNull: true },
        { name: "name", notNull: true },
      ]),
    ).toBe("CRC32(CONCAT_WS(X'00', `id`, `name`))");
  });

  test("a name that is not an identifier never reaches the SQL", () => {
    expect(() => rowHash([{ name: "a`; DROP TABLE x; --" }])).toThrow("not a valid identifier");
  });
});

describe("checksumMeasures", () => {
  test("one CRC32 per row, summed with a sentinel for a row that could not be hashed", () => {
    const sql = checksumMeasures([{ name: "id", notNull: true }, { name: "name" }]);
    expect(sql.match(/CRC32\(/g)?.length).toBe(1);
    expect(sql).toStartWith("CAST(COUNT(*) AS CHAR) AS n, CAST(SUM(COALESCE(CRC32(CONCAT_WS(");
    expect(sql).toEndWith(`)), 1${"0".repeat(30)})) AS CHAR) AS s`);
  });
});

describe("checksumSignature", () => {
  test("count and sum; an empty table's NULL sum is 0", () => {
    expect(checksumSignature("3", "55340232221128654845")).toBe("crc32b:3/55340232221128654845");
    expect(checksumSignature("0", null)).toBe("crc32b:0/0");
  });

  test("a sum that holds the sentinel (a row not hashed) is not trusted", () => {
    expect(checksumSignature("2", `1${"0".repeat(29)}`)).toBe(`crc32b:2/1${"0".repeat(29)}`);
    expect(checksumSignature("2", `1${"0".repeat(30)}`)).toBeNull();
    expect(checksumSignature("2", `1${"0".repeat(29)}18446744073709551615`)).toBeNull();
  });
});
