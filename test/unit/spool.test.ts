// What a killed process leaves in the spool, and what cleanSpool (run under the lock at the start
// of every job) removes: temporary data files, manifests without their file, and the temporary
// files of manifests being written. Complete files and their manifests stay.
import { expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, readdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { cleanSpool, listSpool, MANIFEST_SUFFIX } from "../../src/datalake/spool.ts";

test("cleanSpool removes what a killed writer left, and only that", async () => {
  const spool = mkdtempSync(join(tmpdir(), "panorama-spool-"));
  const dir = join(spool, "openedx", "t", "lms=x");
  mkdirSync(dir, { recursive: true });
  const manifest = {
    key: "openedx/t/lms=x/t.csv",
    table: "t",
    partitions: [["lms", "x"]],
    rows: 1,
    bytes: 4,
    hash: "xxh64:0",
  };
  writeFileSync(join(dir, "t.csv"), "a\r\n1\r\n");
  writeFileSync(join(dir, `t.csv${MANIFEST_SUFFIX}`), JSON.stringify(manifest));
  const leftovers = [
    "u.csv.partial-123-abc",
    `v.csv${MANIFEST_SUFFIX}`,
    `.w.csv${MANIFEST_SUFFIX}.4242.k3j9x.tmp`,
  ];
  for (const name of leftovers) writeFileSync(join(dir, name), "x");
  expect(await cleanSpool(spool)).toBe(3);
  expect(readdirSync(dir).sort()).toEqual(["t.csv", `t.csv${MANIFEST_SUFFIX}`]);
  expect((await listSpool(spool)).map((e) => e.key)).toEqual(["openedx/t/lms=x/t.csv"]);
});
