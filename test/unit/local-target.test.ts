// The local datalake on another filesystem than state_dir (a mounted volume): a spool file cannot
// be renamed into it, so it is copied beside its key and renamed. A copy that a killed run left
// there is removed by the next put of that key; the result is the spool file, private.
import { afterAll, expect, test } from "bun:test";
import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { LocalTarget } from "../../src/datalake/targets.ts";

// /dev/shm is a tmpfs on Debian (and in CI), the temporary directory is on the root filesystem.
const otherFs = "/dev/shm";
const crossesFilesystems = (() => {
  try {
    return statSync(otherFs).dev !== statSync(tmpdir()).dev;
  } catch {
    return false;
  }
})();
const made: string[] = [];
afterAll(() => {
  for (const dir of made) rmSync(dir, { recursive: true, force: true });
});

test.skipIf(!crossesFilesystems)(
  "a put across filesystems: copied, renamed, a killed run's copy removed",
  async () => {
    const spool = mkdtempSync(join(tmpdir(), "panorama-spool-"));
    const root = mkdtempSync(join(otherFs, "panorama-datalake-"));
    made.push(spool, root);
    const key = "openedx/auth_user/lms=lms.example.com/auth_user.csv";
    const dir = join(root, "openedx/auth_user/lms=lms.example.com");
    mkdirSync(dir, { recursive: true });
    // What a run killed during its copy left: another process's partial file of this key, and an
    // unrelated file of the operator's.
    writeFileSync(join(dir, "auth_user.csv.partial-4242-170000"), "id,user\n1,ha");
    writeFileSync(join(dir, "auth_user.csv.notes"), "keep");
    const file = join(spool, "auth_user.csv");
    writeFileSync(file, "id,username\n1,alice\n");

    await new LocalTarget(root).put(key, file);

    expect(readdirSync(dir).sort()).toEqual(["auth_user.csv", "auth_user.csv.notes"]);
    expect(readFileSync(join(root, key), "utf8")).toBe("id,username\n1,alice\n");
    expect(statSync(join(root, key)).mode & 0o777).toBe(0o600);
    expect(await new LocalTarget(root).list("openedx/")).toEqual([
      { key, size: 20 },
      { key: "openedx/auth_user/lms=lms.example.com/auth_user.csv.notes", size: 4 },
    ]);
  },
);

test("a symbolic link planted in the tree: not listed, and no put or delete reaches through it", async () => {
  const dir = mkdtempSync(join(tmpdir(), "panorama-planted-"));
  made.push(dir);
  const root = join(dir, "lake");
  const outside = join(dir, "outside");
  mkdirSync(join(root, "openedx/t1/lms=a"), { recursive: true });
  mkdirSync(outside);
  writeFileSync(join(outside, "t1.csv"), "not the datalake's\n");
  symlinkSync(outside, join(root, "openedx/t1/lms=a/course_id=zzz"));
  symlinkSync(outside, join(root, "openedx/t1/planted"));
  const target = new LocalTarget(root);

  expect(await target.list("openedx/t1/")).toEqual([]);
  const key = "openedx/t1/lms=a/course_id=zzz/t1.csv";
  await expect(target.delete(key)).rejects.toThrow(/leads out of it, to .*outside, through a symbolic link/);
  const spool = join(dir, "spool.csv");
  writeFileSync(spool, "learner data\n");
  await expect(target.put(key, spool)).rejects.toThrow(/symbolic link/);
  expect(readFileSync(join(outside, "t1.csv"), "utf8")).toBe("not the datalake's\n");
  expect(readdirSync(outside)).toEqual(["t1.csv"]);
});
