// `panorama status`: partitions uploaded but not registered in Glue are shown per table, and
// only where there is a catalog to register them in.
import { describe, expect, test } from "bun:test";
import { PartitionState } from "../../src/catalog/partitions.ts";
import { saveRuns } from "../../src/state/runs.ts";
import { collectStatus, formatStatus } from "../../src/status.ts";
import { tempConfig } from "../support/temp-config.ts";

function config(target: "s3" | "local", mode = "FREE") {
  return tempConfig({
    mode,
    datalake: `target = "${target}"\nbucket = "acme-panorama"`,
    tables: `[[tables]]\nname = "grades"\npartition_fields = ["course_id"]\n[[tables]]\nname = "users"`,
  });
}

const ref = (course: string) => ({
  values: ["lms.example.com", course],
  bucket: "acme-panorama",
  prefix: `openedx/grades/lms=lms.example.com/course_id=${course}/`,
});

describe("status: partitions not registered", () => {
  test("counted per table from the catalog state, shown in text and JSON", async () => {
    const cfg = config("s3");
    const state = new PartitionState(cfg.state_dir, cfg.datalake.database);
    const grades = cfg.tables.find((t) => t.name === "grades")!.datalake_table;
    expect(state.add(grades, [ref("a"), ref("b"), ref("c")])).toBe(3);
    const status = await collectStatus(cfg);
    expect(status.tables.map((t) => [t.table, t.pending_partitions])).toEqual([
      ["grades", 3],
      ["users", 0],
    ]);
    expect(formatStatus(status)).toMatch(/^grades .* 3 partition\(s\)$/m);
  });

  test("tracking-log day partitions waiting for Glue are counted and said, in a mode that ships logs", async () => {
    const cfg = config("s3", "SAAS");
    const day = (d: string) => ({
      values: ["lms.example.com", "2026", "11", d],
      bucket: "acme-panorama",
      prefix: `openedx/tracking_logs/lms=lms.example.com/year=2026/month=11/day=${d}/`,
    });
    new PartitionState(cfg.state_dir, cfg.datalake.database).add("openedx_raw_tracking_logs", [
      day("28"),
      day("29"),
    ]);
    const status = await collectStatus(cfg);
    expect(status.logs_pending_partitions).toBe(2);
    expect(formatStatus(status)).toContain("2 tracking-log day partition(s) not registered in Glue yet");
    // FREE ships no logs: nothing to count.
    expect((await collectStatus(config("s3"))).logs_pending_partitions).toBeNull();
  });

  test("a local datalake has no catalog: null, and no column value", async () => {
    const cfg = config("local");
    new PartitionState(cfg.state_dir, cfg.datalake.database).add("openedx_raw_grades", [ref("a")]);
    const status = await collectStatus(cfg);
    expect(status.tables.map((t) => t.pending_partitions)).toEqual([null, null]);
    expect(formatStatus(status)).not.toContain("partition(s)");
  });
});

describe("status: absent preset tables", () => {
  test("a table the last run found absent says so, with no figures and no error", async () => {
    const cfg = config("local");
    const run = { time: "2026-12-04T10:00:00.000Z", command: "run" as const, skipped: 0, watermark: null };
    saveRuns(cfg.state_dir, {
      grades: { ...run, rows: 0, objects: 0, bytes: 0, seconds: 0, error: null, absent: true },
      users: { ...run, rows: 12, objects: 1, bytes: 345, seconds: 0.1, error: null },
    });
    const status = await collectStatus(cfg);
    expect(status.tables.map((t) => [t.table, t.last_run?.absent ?? false])).toEqual([
      ["grades", true],
      ["users", false],
    ]);
    const text = formatStatus(status);
    expect(text).toMatch(/^grades +2026-12-04 10:00:00 +absent$/m);
    expect(text).toMatch(/^users +2026-12-04 10:00:00 +12 +1 +345 +0 +0\.1$/m);
  });
});
