// What deletions may touch (DESIGN §7a): this host's data objects of a table, their partition
// values read back from the key, and the local target's listing and deletion.
import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { objectKey } from "../../src/datalake/layout.ts";
import { hostTablePrefix, isDataObject, partitionValuesOf } from "../../src/datalake/prune.ts";
import { LocalTarget } from "../../src/datalake/targets.ts";
import { NULL_PARTITION } from "../../src/extract/partition.ts";
import { tempConfig } from "../support/temp-config.ts";

const dirs: string[] = [];
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

describe("keys", () => {
  const config = tempConfig();
  dirs.push(dirname(config.state_dir));

  test("this host's prefix: the table's location, then the base partitions", () => {
    expect(hostTablePrefix(config, "grades")).toBe("openedx/grades/lms=lms.example.com/");
  });

  test("data objects are <table>.csv and <table>.csv.gz only", () => {
    expect(isDataObject("grades", "openedx/grades/lms=a/grades.csv")).toBe(true);
    expect(isDataObject("grades", "openedx/grades/lms=a/grades.csv.gz")).toBe(true);
    expect(isDataObject("grades", "openedx/grades/lms=a/notes.txt")).toBe(false);
    expect(isDataObject("grades", "openedx/grades/lms=a/grades.csv.partial-1")).toBe(false);
    expect(isDataObject("grades", "openedx/grades/lms=a/other_grades.csv")).toBe(false);
  });

  test("partition values come back from the key as they were (percent-encoding undone)", () => {
    for (const values of [
      ["lms.example.com", "course-v1:MITx+6.00x+2024"],
      ["lms.example.com", "b c%d,é\"'+&=?#"],
      ["lms.example.com", NULL_PARTITION],
      ["lms.example.com", "MITx/6.00x/2012_Fall"],
      ["lms.example.com", "a/../../../escape"],
      ["lms.example.com", "a//b/"],
      ["lms.example.com"],
    ]) {
      const pairs = values.map((v, i): [string, string] => [i === 0 ? "lms" : "course_id", v]);
      const key = objectKey({
        basePrefix: "openedx",
        table: "grades",
        partitions: pairs,
        compression: "gzip",
      });
      expect(partitionValuesOf(config, "grades", key)).toEqual(values);
    }
  });
});

describe("the local target", () => {
  test("lists the objects under a prefix with their sizes; a missing directory holds none", async () => {
    const root = mkdtempSync(join(tmpdir(), "panorama-prune-"));
    dirs.push(root);
    await Bun.write(join(root, "openedx/t/lms=a/course_id=1/t.csv"), "abc");
    await Bun.write(join(root, "openedx/t/lms=a/course_id=2/t.csv.gz"), "abcdef");
    await Bun.write(join(root, "openedx/t/lms=b/course_id=1/t.csv"), "x");
    const target = new LocalTarget(root);
    expect(await target.list("openedx/t/lms=a/")).toEqual([
      { key: "openedx/t/lms=a/course_id=1/t.csv", size: 3 },
      { key: "openedx/t/lms=a/course_id=2/t.csv.gz", size: 6 },
    ]);
    expect(await target.list("openedx/nothing/")).toEqual([]);
  });

  test("a deletion removes the directories it leaves empty, up to the root, and no further", async () => {
    const root = mkdtempSync(join(tmpdir(), "panorama-prune-"));
    dirs.push(root);
    await Bun.write(join(root, "openedx/t/lms=a/course_id=1/t.csv"), "abc");
    await Bun.write(join(root, "openedx/t/lms=a/course_id=2/t.csv"), "abc");
    const target = new LocalTarget(root);
    await target.delete("openedx/t/lms=a/course_id=1/t.csv");
    expect(existsSync(join(root, "openedx/t/lms=a/course_id=1"))).toBe(false);
    expect(existsSync(join(root, "openedx/t/lms=a/course_id=2/t.csv"))).toBe(true);
    await target.delete("openedx/t/lms=a/course_id=2/t.csv");
    expect(existsSync(join(root, "openedx"))).toBe(false);
    expect(existsSync(root)).toBe(true);
    await target.delete("openedx/t/lms=a/course_id=3/t.csv");
  });
});
