// What deletions may touch (DESIGN §7a): this host's data objects of a table, their partition
// values read back from the key, and the local target's listing and deletion.
import { afterAll, describe, expect, spyOn, test } from "bun:test";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { objectKey } from "../../src/datalake/layout.ts";
import { hostTablePrefix, isDataObject, partitionValuesOf } from "../../src/datalake/prune.ts";
import { LocalTarget } from "../../src/datalake/targets.ts";
import { NULL_PARTITION } from "../../src/extract/partition.ts";
import * as atomic from "../../src/state/atomic.ts";
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

  // /dev/shm is a tmpfs on Linux: a spool there and a datalake under the temporary directory are
  // on two filesystems, so the file is copied, not linked.
  const twoFilesystems = existsSync("/dev/shm") && statSync("/dev/shm").dev !== statSync(tmpdir()).dev;
  test.skipIf(!twoFilesystems)(
    "on another filesystem than the spool: a private copy renamed over the key, both on disk before it returns, nothing else left",
    async () => {
      const root = mkdtempSync(join(tmpdir(), "panorama-prune-"));
      const spool = mkdtempSync(join("/dev/shm", "panorama-prune-"));
      dirs.push(root, spool);
      const file = join(spool, "t.csv");
      writeFileSync(file, "a,b\n1,2\n");
      const key = "openedx/t/lms=a/t.csv";
      const synced = spyOn(atomic, "syncPath");
      try {
        await new LocalTarget(root).put(key, file);
        const copied = synced.mock.calls.map((c) => String(c[0]));
        expect(copied).toHaveLength(2);
        expect(copied[0]).toStartWith(join(root, `${key}.`));
        expect(copied[1]).toBe(join(root, dirname(key)));
      } finally {
        synced.mockRestore();
      }
      expect(readFileSync(join(root, key), "utf8")).toBe("a,b\n1,2\n");
      expect(statSync(join(root, key)).mode & 0o777).toBe(0o600);
      expect(readdirSync(join(root, dirname(key)))).toEqual(["t.csv"]);
      expect(existsSync(file)).toBe(true);
    },
  );

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
