// The SQL of the content checksum (content-checksum.ts): what each row's hash covers, and when the
// signature is not trusted. The server side is tested in test/integration/unchanged-probe.test.ts.
import { describe, expect, test } from "bun:test";
import { checksumMeasures, checksumSignature, rowHash } from "../../src/extract/content-checksum.ts";

describe("rowHash", () => {
  test("each column as bytes, NUL-joined, then which are NULL, in the order given", () => {
    expect(rowHash(["a", "b"])).toBe(
      "CRC32(CONCAT_WS(X'00', CAST(`a` AS BINARY), CAST(`b` AS BINARY), CONCAT(ISNULL(`a`), ISNULL(`b`))))",
    );
  });

  test("a name that is not an identifier never reaches the SQL", () => {
    expect(() => rowHash(["a`; DROP TABLE x; --"])).toThrow("not a valid identifier");
  });
});

describe("checksumMeasures", () => {
  test("one CRC32 per row, summed with a sentinel for a row that could not be hashed", () => {
    const sql = checksumMeasures(["id", "name"]);
    expect(sql.match(/CRC32\(/g)?.length).toBe(1);
    expect(sql).toStartWith("CAST(COUNT(*) AS CHAR) AS n, CAST(SUM(COALESCE(CRC32(CONCAT_WS(");
    expect(sql).toEndWith(`)), 1${"0".repeat(30)})) AS CHAR) AS s`);
  });
});

describe("checksumSignature", () => {
  test("count and sum; an empty table's NULL sum is 0", () => {
    expect(checksumSignature("3", "55340232221128654845")).toBe("crc32:3/55340232221128654845");
    expect(checksumSignature("0", null)).toBe("crc32:0/0");
  });

  test("a sum that holds the sentinel (a row not hashed) is not trusted", () => {
    expect(checksumSignature("2", `1${"0".repeat(29)}`)).toBe(`crc32:2/1${"0".repeat(29)}`);
    expect(checksumSignature("2", `1${"0".repeat(30)}`)).toBeNull();
    expect(checksumSignature("2", `1${"0".repeat(29)}18446744073709551615`)).toBeNull();
  });
});
