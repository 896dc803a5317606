// What a killed process leaves in the spool, and what cleanSpool (run under the lock at the start
// of every job) removes: temporary data files, manifests without their file, and the temporary
// files of manifests being written. Complete files and their manifests stay. A manifest that cannot
// be read as one (empty or torn by a power cut: manifests are not fsynced one by one) makes its
// file untrusted: listSpool leaves it out with a warning, cleanSpool removes the pair.
import { afterEach, expect, spyOn, test } from "bun:test";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  cleanSpool,
  listSpool,
  MANIFEST_SUFFIX,
  removeFromSpool,
  SpoolWriter,
  spoolDir,
  spoolPath,
} from "../../src/datalake/spool.ts";
import { log } from "../../src/log.ts";
import { collectStatus } from "../../src/status.ts";
import { tempConfig } from "../support/temp-config.ts";

test("cleanSpool removes what a killed writer left, and only that", async () => {
  const { spool, dir } = damagedSpool({});
  const leftovers = [
    "u.csv.partial-123-abc",
    // a primary-key range read ahead of its turn (pk-ranges.ts)
    "t.csv.partial-123-range-4",
    `v.csv${MANIFEST_SUFFIX}`,
    `.w.csv${MANIFEST_SUFFIX}.4242.k3j9x.tmp`,
  ];
  for (const name of leftovers) writeFileSync(join(dir, name), "x");
  expect(await cleanSpool(spool)).toBe(4);
  expect(readdirSync(dir).sort()).toEqual(["t.csv", `t.csv${MANIFEST_SUFFIX}`]);
  expect((await listSpool(spool)).map((e) => e.key)).toEqual(["openedx/t/lms=x/t.csv"]);
});

test("cleanSpool removes the directories uploads left empty, deepest first; the spool and a directory holding a file stay", async () => {
  const { spool, dir } = damagedSpool({});
  const uploaded = join(spool, "openedx", "sm", "lms=x");
  for (const course of ["course_id=a", "course_id=b"]) mkdirSync(join(uploaded, course), { recursive: true });
  mkdirSync(join(dir, "course_id=c"));
  expect(await cleanSpool(spool)).toBe(0);
  expect(existsSync(join(spool, "openedx", "sm"))).toBe(false);
  expect(existsSync(join(dir, "course_id=c"))).toBe(false);
  expect(readdirSync(dir).sort()).toEqual(["t.csv", `t.csv${MANIFEST_SUFFIX}`]);
  expect((await listSpool(spool)).map((e) => e.key)).toEqual(["openedx/t/lms=x/t.csv"]);
  // Nothing but empty directories: all go, the spool itself stays.
  rmSync(join(spool, "openedx"), { recursive: true });
  mkdirSync(join(uploaded, "course_id=a"), { recursive: true });
  await cleanSpool(spool);
  expect(readdirSync(spool)).toEqual([]);
  rmSync(spool, { recursive: true });
});

const warn = spyOn(log, "warn").mockImplementation(() => {});
afterEach(() => warn.mockClear());
const warnings = () => warn.mock.calls.map(([message]) => message);

/** A spool with a good pair (t.csv) and a data file beside each damaged manifest text given. */
function damagedSpool(
  damaged: Record<string, (entry: object) => string>,
  spool = mkdtempSync(join(tmpdir(), "panorama-spool-")),
) {
  const dir = join(spool, "openedx", "t", "lms=x");
  mkdirSync(dir, { recursive: true });
  const entry = (name: string) => ({
    key: `openedx/t/lms=x/${name}`,
    table: "t",
    partitions: [["lms", "x"]],
    rows: 1,
    bytes: 6,
    hash: "xxh64:0",
    written_at: "2024-03-01T10:00:00.000Z",
  });
  writeFileSync(join(dir, "t.csv"), "a\r\n1\r\n");
  writeFileSync(join(dir, `t.csv${MANIFEST_SUFFIX}`), JSON.stringify(entry("t.csv")));
  for (const [name, text] of Object.entries(damaged)) {
    writeFileSync(join(dir, name), "a\r\n1\r\n");
    writeFileSync(join(dir, `${name}${MANIFEST_SUFFIX}`), text(entry(name)));
  }
  return { spool, dir };
}

const DAMAGED: Record<string, (entry: object) => string> = {
  "empty.csv": () => "",
  "torn.csv": (entry) => JSON.stringify(entry).slice(0, 40),
  "fields.csv": (entry) => JSON.stringify({ ...entry, rows: undefined }),
  "other.csv": (entry) => JSON.stringify({ ...entry, key: "openedx/t/lms=x/t.csv" }),
};

test("a damaged manifest (empty, torn, fields missing, another key): listSpool leaves its file out and says where", async () => {
  const { spool, dir } = damagedSpool(DAMAGED);
  expect((await listSpool(spool)).map((e) => e.key)).toEqual(["openedx/t/lms=x/t.csv"]);
  const said = warnings();
  expect(said).toHaveLength(4);
  for (const name of Object.keys(DAMAGED)) {
    const message = said.find((m) => m.startsWith(join(dir, `${name}${MANIFEST_SUFFIX}`)));
    expect(message).toContain("extracts it again");
  }
  expect(said.join("\n")).toContain("(empty)");
  expect(said.join("\n")).toContain("(not JSON: ");
  expect(said.join("\n")).toContain("(missing or invalid rows)");
  // listSpool only reads: the pairs are still there for cleanSpool
  expect(readdirSync(dir)).toHaveLength(10);
});

test("cleanSpool removes each damaged manifest with its file, keeps the good pair, and says so", async () => {
  const { spool, dir } = damagedSpool(DAMAGED);
  expect(await cleanSpool(spool)).toBe(8);
  expect(readdirSync(dir).sort()).toEqual(["t.csv", `t.csv${MANIFEST_SUFFIX}`]);
  const said = warnings();
  expect(said).toHaveLength(4);
  for (const name of Object.keys(DAMAGED)) {
    const message = said.find((m) => m.startsWith(join(dir, `${name}${MANIFEST_SUFFIX}`)));
    expect(message).toContain(`removing it and openedx/t/lms=x/${name}`);
  }
  warn.mockClear();
  expect((await listSpool(spool)).map((e) => e.key)).toEqual(["openedx/t/lms=x/t.csv"]);
  expect(warnings()).toEqual([]);
});

test("status counts the good file and does not fail on a damaged manifest", async () => {
  const config = tempConfig({ mode: "FREE", tables: '[[tables]]\nname = "t"' });
  damagedSpool({ "empty.csv": () => "" }, spoolDir(config.state_dir));
  const status = await collectStatus(config);
  expect(status.tables.map((t) => [t.table, t.spooled_files, t.spooled_bytes])).toEqual([["t", 1, 6]]);
  expect(warnings()).toEqual([expect.stringContaining(`empty.csv${MANIFEST_SUFFIX} is damaged (empty)`)]);
});

test("a key with a component too long for a file name (a long course id): written, listed and removed under its key", async () => {
  const spool = mkdtempSync(join(tmpdir(), "panorama-spool-long-"));
  try {
    // 250 characters, percent-encoded: 330 bytes, more than a file system takes in one name.
    const value = encodeURIComponent(`course-v1:${"Org+".repeat(60)}X`);
    const key = `openedx/t/lms=x/course_id=${value}/t.csv`;
    const writer = await SpoolWriter.open(spool, key);
    writer.write("id\r\n1\r\n", 1);
    const entry = await writer.commit({ table: "t", partitions: [["course_id", value]] });
    expect(entry.key).toBe(key);
    // On disk, the long component is cut and ended with a hash; the manifest holds the key.
    const path = spoolPath(spool, key);
    expect(path).not.toContain(value);
    expect(readFileSync(path, "utf8")).toBe("id\r\n1\r\n");
    expect(await cleanSpool(spool)).toBe(0);
    expect((await listSpool(spool)).map((e) => [e.key, e.rows])).toEqual([[key, 1]]);
    expect(warnings()).toEqual([]);
    await removeFromSpool(spool, entry);
    expect(existsSync(path)).toBe(false);
    expect(await listSpool(spool)).toEqual([]);
  } finally {
    rmSync(spool, { recursive: true, force: true });
  }
});

test("a symbolic link planted in the spool is not followed: nothing listed or removed through it", async () => {
  const { spool } = damagedSpool({});
  const outside = mkdtempSync(join(tmpdir(), "panorama-outside-"));
  try {
    const entry = {
      key: "evil/t.csv",
      table: "t",
      partitions: [],
      rows: 1,
      bytes: 6,
      hash: "xxh64:0",
      written_at: "2024-03-01T10:00:00.000Z",
    };
    writeFileSync(join(outside, "t.csv"), "a\r\n1\r\n");
    writeFileSync(join(outside, `t.csv${MANIFEST_SUFFIX}`), JSON.stringify(entry));
    writeFileSync(join(outside, "u.csv.partial-123-abc"), "not the spool's");
    symlinkSync(outside, join(spool, "evil"));
    expect((await listSpool(spool)).map((e) => e.key)).toEqual(["openedx/t/lms=x/t.csv"]);
    expect(await cleanSpool(spool)).toBe(0);
    expect(readdirSync(outside).sort()).toEqual([
      "t.csv",
      `t.csv${MANIFEST_SUFFIX}`,
      "u.csv.partial-123-abc",
    ]);
  } finally {
    rmSync(outside, { recursive: true, force: true });
    rmSync(spool, { recursive: true, force: true });
  }
});
