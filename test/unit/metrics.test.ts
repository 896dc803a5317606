// The exposition text of [metrics] textfile: what node_exporter's textfile collector accepts.
import { describe, expect, test } from "bun:test";
import { commandFamilies, type Family, renderExposition, tableFamilies } from "../../src/metrics.ts";
import { parseExposition, seriesValue } from "../support/prometheus.ts";

describe("renderExposition", () => {
  test("label values with quotes, backslashes and line feeds are escaped and read back", () => {
    const file = 'C:\\logs\\"tracking"\nlog';
    const text = renderExposition([
      {
        name: "panorama_log_unshipped_bytes",
        help: "Bytes\\not shipped.",
        type: "gauge",
        samples: [{ labels: { file }, value: 12 }],
      },
    ]);
    const samples = parseExposition(text);
    expect(samples).toEqual([{ name: "panorama_log_unshipped_bytes", labels: { file }, value: 12 }]);
  });

  test("the same family from two commands is written once, its samples together", () => {
    const families: Family[] = [
      ...commandFamilies("run", { exitCode: 1, seconds: 2.5, time: new Date(1_700_000_000_000) }),
      ...commandFamilies("log-ship", { exitCode: 0, seconds: 0.25 }),
    ];
    const text = renderExposition(families);
    expect(text.match(/^# TYPE panorama_last_exit_code gauge$/gm)).toHaveLength(1);
    const samples = parseExposition(text);
    expect(seriesValue(samples, "panorama_last_exit_code", { command: "run" })).toBe(1);
    expect(seriesValue(samples, "panorama_last_exit_code", { command: "log-ship" })).toBe(0);
    expect(seriesValue(samples, "panorama_last_run_timestamp_seconds", { command: "run" })).toBe(
      1_700_000_000,
    );
  });

  test("a failed table keeps the time of its last success; its error flag is set", () => {
    const summary = (table: string, error: string | null) => ({
      table,
      rows: 5,
      files: 1,
      bytes: 10,
      seconds: 0.5,
      partitions: 1,
      watermark: null,
      error,
    });
    const uploads = new Map([["a", { objects: 1, bytes: 10, skipped: 0 }]]);
    const first = tableFamilies([summary("a", null), summary("b", null)], uploads, [], new Date(1_000_000));
    const second = tableFamilies(
      [summary("a", null), summary("b", "no")],
      uploads,
      first,
      new Date(2_000_000),
    );
    const samples = parseExposition(renderExposition(second));
    expect(seriesValue(samples, "panorama_table_last_success_timestamp_seconds", { table: "a" })).toBe(2000);
    expect(seriesValue(samples, "panorama_table_last_success_timestamp_seconds", { table: "b" })).toBe(1000);
    expect(seriesValue(samples, "panorama_table_error", { table: "b" })).toBe(1);
    expect(seriesValue(samples, "panorama_table_objects", { table: "b" })).toBe(0);
  });

  test("the reader used here rejects what the format forbids", () => {
    expect(() => parseExposition("a 1")).toThrow("line feed");
    expect(() => parseExposition('a{b="x} 1\n')).toThrow();
    expect(() => parseExposition("a 1\nb 2\na 3\n")).toThrow("not together");
    expect(() => parseExposition("# TYPE a gauge\n# TYPE a gauge\na 1\n")).toThrow("second TYPE");
    expect(() => parseExposition("a-b 1\n")).toThrow("bad metric name");
    expect(() => parseExposition("a one\n")).toThrow("bad value");
  });
});
