// `panorama status`: partitions uploaded but not registered in Glue are shown per table, and
// only where there is a catalog to register them in.
import { describe, expect, test } from "bun:test";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PartitionState } from "../../src/catalog/partitions.ts";
import { parseConfig } from "../../src/config/load.ts";
import { collectStatus, formatStatus } from "../../src/status.ts";

function config(target: "s3" | "local") {
  const dir = mkdtempSync(join(tmpdir(), "panorama-status-"));
  const text = `mode = "FREE"
lms_host = "lms.example.com"
state_dir = "${join(dir, "state")}"
[datalake]
target = "${target}"
path = "${join(dir, "datalake")}"
bucket = "acme-panorama"
[extract]
preset = "none"
[[tables]]
name = "grades"
partition_fields = ["course_id"]
[[tables]]
name = "users"
`;
  return parseConfig(text, join(dir, "panorama.toml"), {}).config;
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

  test("a local datalake has no catalog: null, and no column value", async () => {
    const cfg = config("local");
    new PartitionState(cfg.state_dir, cfg.datalake.database).add("openedx_raw_grades", [ref("a")]);
    const status = await collectStatus(cfg);
    expect(status.tables.map((t) => t.pending_partitions)).toEqual([null, null]);
    expect(formatStatus(status)).not.toContain("partition(s)");
  });
});
