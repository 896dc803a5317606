// verify's report for people (formatReport): a table's differences listed up to FINDINGS_SHOWN,
// then how many more; the JSON report keeps them all.
import { describe, expect, test } from "bun:test";
import { FINDINGS_SHOWN, type Finding, formatReport, type VerifyReport } from "../../src/verify.ts";

function missing(n: number): Finding[] {
  return Array.from({ length: n }, (_, i) => ({
    kind: "missing" as const,
    key: `openedx/t/lms=a/course_id=C${i}/t.csv`,
    mysql_rows: 3,
    datalake_rows: null,
    stored_bytes: null,
    listed_bytes: null,
  }));
}

function report(findings: Record<string, Finding[]>): VerifyReport {
  return {
    time: "2026-12-07T00:00:00.000Z",
    ok: false,
    tables: Object.entries(findings).map(([table, f]) => ({
      table,
      partitions: f.length,
      mysql_rows: 3 * f.length,
      objects: 0,
      findings: f,
      error: null,
      skipped: null,
    })),
    queries: 2,
    listings: 2,
    seconds: 0.1,
    pseudonyms: { on: false, key_file: null, columns: [], log_fields: [] },
    unconfigured: [],
  };
}

describe("verify's report", () => {
  test(`a table's differences past ${FINDINGS_SHOWN} are counted, not listed; a few are all listed`, () => {
    const text = formatReport(report({ big: missing(FINDINGS_SHOWN + 70), small: missing(3) }));
    const lines = text.split("\n");
    const listed = (table: string) => {
      const start = lines.findIndex((l) => l.startsWith(`✗ ${table}:`));
      let end = start + 1;
      while (lines[end]?.startsWith("  ")) end++;
      return lines.slice(start + 1, end);
    };
    expect(lines).toContain(
      `✗ big: ${FINDINGS_SHOWN + 70} missing (of ${FINDINGS_SHOWN + 70} partition(s), 0 object(s))`,
    );
    const big = listed("big");
    expect(big).toHaveLength(FINDINGS_SHOWN + 1);
    expect(big[0]).toBe("  missing\topenedx/t/lms=a/course_id=C0/t.csv\tMySQL 3 rows, no object");
    expect(big.at(-1)).toBe("  … and 70 more (verify --json lists every one)");
    expect(listed("small")).toHaveLength(3);
    expect(text).not.toContain("and 0 more");
  });
});
