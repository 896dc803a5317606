// A full disk, the way an operator meets it: state_dir (and its spool) or the local datalake on a
// filesystem with no space left. Real filesystems: each is a tmpfs of a few hundred KiB mounted
// for the test (root only; elsewhere the tests say why they are skipped), against the real
// MariaDB. A run that meets ENOSPC exits 1 with a message naming what filled and how to fix it,
// records nothing it did not store, and the run after space is freed leaves the datalake equal
// to a clean extraction's.
import { afterAll, afterEach, beforeAll, describe, expect, setDefaultTimeout, spyOn, test } from "bun:test";
import { appendFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type mysql from "mysql2/promise";
import { log } from "../../src/log.ts";
import { readCheckpoints } from "../../src/logship/checkpoint.ts";
import { shipLogs } from "../../src/logship/ship.ts";
import { LocalLogSink } from "../../src/logship/upload.ts";
import { runPanorama } from "../support/cli.ts";
import { skipWithoutTestEnv, testEnv } from "../support/env.ts";
import { fileTree } from "../support/file-tree.ts";
import {
  logShipSetup,
  removeLogShipSetups,
  shippedLines,
  shippedObjects,
  writerEvent,
} from "../support/log-writer.ts";
import { testConnection, writeTestConfig } from "../support/mysql.ts";

/** tmpfs needs root (CAP_SYS_ADMIN); a machine that refuses the mount skips with its reason. */
function mountRefused(): string | null {
  if (process.getuid?.() !== 0) return "not root: a tmpfs cannot be mounted";
  const probe = join(tmpdir(), `panorama-mount-probe-${process.pid}`);
  mkdirSync(probe, { recursive: true });
  try {
    const mount = Bun.spawnSync(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", probe]);
    if (mount.exitCode !== 0) return `mount refused: ${mount.stderr.toString().trim()}`;
    Bun.spawnSync(["umount", probe]);
    return null;
  } finally {
    rmSync(probe, { recursive: true, force: true });
  }
}

const skip = skipWithoutTestEnv();
const refused = skip ? null : mountRefused();
if (refused) console.error(`disk-full tests skipped: ${refused}`);
setDefaultTimeout(60_000);
let db: mysql.Connection;
const dirs: string[] = [];
const mounts: string[] = [];

const TABLES = `[extract]
preset = "none"

[[tables]]
name = "full_small"

[[tables]]
name = "full_big"
partition_fields = ["course_id"]
incremental = { timestamp_field = "modified", overlap = "1 hour" }
`;

function mountTmpfs(dir: string, size: string): void {
  mkdirSync(dir, { recursive: true });
  const mount = Bun.spawnSync(["mount", "-t", "tmpfs", "-o", `size=${size},mode=0700`, "tmpfs", dir]);
  if (mount.exitCode !== 0) throw new Error(`mount ${dir}: ${mount.stderr}`);
  mounts.push(dir);
}

function resize(dir: string, size: string): void {
  const mount = Bun.spawnSync(["mount", "-o", `remount,size=${size}`, dir]);
  if (mount.exitCode !== 0) throw new Error(`remount ${dir}: ${mount.stderr}`);
}

function config() {
  const cfg = writeTestConfig(TABLES);
  dirs.push(cfg.dir);
  return cfg;
}

function run(cfg: { file: string }, ...args: string[]) {
  return runPanorama(["--config", cfg.file, "run", ...args], { timeoutMs: 50_000 });
}

beforeAll(async () => {
  if (skip || refused) return;
  db = await testConnection(testEnv().mysql.scratchDatabase);
  // full_big: about 1.2 MB of CSV in 4 partitions, far more than the filesystems below hold.
  await db.query(`DROP TABLE IF EXISTS full_small; DROP TABLE IF EXISTS full_big;
    CREATE TABLE full_small (id INT PRIMARY KEY, name VARCHAR(20));
    INSERT INTO full_small SELECT seq, CONCAT('name', seq) FROM seq_1_to_20;
    CREATE TABLE full_big (id INT AUTO_INCREMENT PRIMARY KEY, course_id VARCHAR(100), body VARCHAR(400),
      modified DATETIME(6), KEY (course_id), KEY (modified));
    INSERT INTO full_big (course_id, body, modified) SELECT CONCAT('course-v1:Org+D', seq % 4, '+2024'),
      REPEAT(CHAR(97 + seq % 26), 380), '2024-01-01' + INTERVAL seq MINUTE FROM seq_1_to_3000`);
});

afterEach(() => {
  for (const dir of mounts.splice(0)) Bun.spawnSync(["umount", dir]);
});

afterAll(async () => {
  removeLogShipSetups();
  if (skip || refused) return;
  await db.query("DROP TABLE IF EXISTS full_small; DROP TABLE IF EXISTS full_big");
  await db.end();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

describe.skipIf(skip || refused !== null)("a full disk", () => {
  test("state_dir's filesystem full while the spool is written: exit 1 naming it, nothing recorded; the run after space is freed completes", async () => {
    const cfg = config();
    mountTmpfs(cfg.stateDir, "256k");
    const full = await run(cfg);
    expect(full.code).toBe(1);
    expect(full.stderr).toContain(
      `full_big: writing the spool failed: ENOSPC: no space left on device, write (free space on the filesystem of state_dir (${cfg.stateDir}); what was extracted before stays)`,
    );
    expect(full.stderr).toContain("1 of 2 tables failed (full_big)");
    // The other table is stored; the full one left no file, no watermark, nothing in the spool.
    expect([...fileTree(cfg.datalake).keys()]).toEqual([
      "openedx/full_small/lms=lms.example.com/full_small.csv",
    ]);
    const watermarks = join(cfg.stateDir, "watermarks.json");
    expect(existsSync(watermarks) ? Object.keys(JSON.parse(readFileSync(watermarks, "utf8"))) : []).toEqual(
      [],
    );
    expect(fileTree(join(cfg.stateDir, "spool")).size).toBe(0);

    resize(cfg.stateDir, "16m");
    const after = await run(cfg);
    expect(after.code).toBe(0);
    const clean = config();
    expect((await run(clean)).code).toBe(0);
    expect(fileTree(cfg.datalake)).toEqual(fileTree(clean.datalake));
  });

  test("the local datalake's filesystem full (another filesystem than state_dir): exit 1 naming it; the files wait in the spool and are stored once space is freed", async () => {
    const cfg = config();
    mountTmpfs(cfg.datalake, "256k");
    const full = await run(cfg);
    expect(full.code).toBe(1);
    // One line: the key, the code, the datalake and the fix; no temporary path of the copy.
    expect(full.stderr).toMatch(
      new RegExp(
        `upload of openedx/full_big/[^ ]+ failed: ENOSPC: no space left on device, writing into the local datalake ${cfg.datalake} \\(free space on its filesystem \\(df -h shows how much is left\\); the files wait in the spool until then\\)"`,
      ),
    );
    expect(full.stderr).not.toContain(".partial-");
    expect(full.stderr).toContain("file(s) kept in the spool; the next run uploads them");
    // Nothing half-copied stays beside the keys.
    expect([...fileTree(cfg.datalake).keys()].filter((k) => k.includes(".partial-"))).toEqual([]);
    expect(fileTree(join(cfg.stateDir, "spool")).size).toBeGreaterThan(0);

    resize(cfg.datalake, "16m");
    const after = await run(cfg);
    expect(after.code).toBe(0);
    expect(after.stderr).toContain("file(s) left in the spool by an earlier run");
    const clean = config();
    expect((await run(clean)).code).toBe(0);
    expect(fileTree(cfg.datalake)).toEqual(fileTree(clean.datalake));
  });

  test("doctor on a read-only state_dir: the fix is a writable filesystem, not the user's permissions", async () => {
    const cfg = config();
    mountTmpfs(cfg.stateDir, "64k");
    const remount = Bun.spawnSync(["mount", "-o", "remount,ro", cfg.stateDir]);
    expect(remount.exitCode).toBe(0);
    const doctor = await runPanorama(["--config", cfg.file, "doctor"], { timeoutMs: 30_000 });
    expect(doctor.code).toBe(1);
    expect(doctor.stdout).toContain(`✗ state directory: ${cfg.stateDir}: EROFS`);
    expect(doctor.stdout).toContain(
      "→ it is on a read-only filesystem: mount it writable, or set state_dir to a directory on a writable one",
    );
  });

  test("log-ship with state_dir full: exit 1 naming it; once space is freed every event is shipped once", async () => {
    const setup = logShipSetup();
    mountTmpfs(setup.stateDir, "64k");
    writeFileSync(setup.file, `${Array.from({ length: 40 }, (_, i) => writerEvent(i + 1)).join("\n")}\n`);
    const ship = () =>
      runPanorama(["--config", setup.configFile, "log-ship", "--once"], { timeoutMs: 30_000 });
    expect((await ship()).code).toBe(0);
    appendFileSync(setup.file, `${Array.from({ length: 40 }, (_, i) => writerEvent(i + 41)).join("\n")}\n`);
    Bun.spawnSync(["dd", "if=/dev/zero", `of=${join(setup.stateDir, "filler")}`, "bs=4k"]);
    const full = await ship();
    expect(full.code).toBe(1);
    expect(full.stderr).toContain(`cannot use state_dir ${setup.stateDir}: ENOSPC: no space left on device`);
    expect(full.stderr).toContain(
      "hint: free space on state_dir's filesystem (df -h shows how much is left)",
    );
    rmSync(join(setup.stateDir, "filler"));
    expect((await ship()).code).toBe(0);
    const seqs = shippedLines(setup.datalake).map((l) => (JSON.parse(l) as { seq: number }).seq);
    expect(seqs.toSorted((a, b) => a - b)).toEqual(Array.from({ length: 80 }, (_, i) => i + 1));
  });

  test("log-ship --follow with state_dir filling up: says so and keeps going, never more than one batch stored past the saved checkpoint; all once when space is back", async () => {
    const setup = logShipSetup({ logs: 'max_file_size = "2K"' });
    mountTmpfs(setup.stateDir, "64k");
    const lines = (from: number, to: number) =>
      Array.from({ length: to - from + 1 }, (_, i) => `${writerEvent(from + i)}\n`).join("");
    writeFileSync(setup.file, lines(1, 20));
    // Uploads succeed (the datalake is not on the full filesystem): only the checkpoint cannot be saved.
    const sink = new LocalLogSink(setup.datalake);
    const stop = new AbortController();
    const warn = spyOn(log, "warn").mockImplementation(() => {});
    const error = spyOn(log, "error").mockImplementation(() => {});
    const savedOffset = () => readCheckpoints(setup.stateDir)[0]?.offset ?? 0;
    const size = () => readFileSync(setup.file).length;
    const until = async (done: () => boolean) => {
      for (let i = 0; i < 500 && !done(); i++) await Bun.sleep(20);
    };
    try {
      let settled = false;
      const running = shipLogs(setup.config, {
        follow: true,
        sink,
        signal: stop.signal,
        pollMs: 50,
        retryMs: 5,
      });
      running.finally(() => {
        settled = true;
      });
      await until(() => savedOffset() === size());
      Bun.spawnSync(["dd", "if=/dev/zero", `of=${join(setup.stateDir, "filler")}`, "bs=4k"]);
      appendFileSync(setup.file, lines(21, 80));
      const told = () =>
        [...warn.mock.calls, ...error.mock.calls].some(([m]) =>
          m.includes(`cannot use state_dir ${setup.stateDir}: ENOSPC`),
        );
      await until(told);
      await Bun.sleep(300); // a few more passes, each free to upload more
      expect(told()).toBe(true);
      expect(settled).toBe(false);
      // A crash now re-reads from the saved offset: it must find at most the one batch it rewrites.
      const past = shippedObjects(setup.datalake).filter((o) => o.offset >= savedOffset());
      expect(past.length).toBeLessThanOrEqual(1);
      rmSync(join(setup.stateDir, "filler"));
      await until(() => savedOffset() === size());
      stop.abort();
      const result = await running;
      expect(result.ok).toBe(true);
    } finally {
      warn.mockRestore();
      error.mockRestore();
    }
    const seqs = shippedLines(setup.datalake).map((l) => (JSON.parse(l) as { seq: number }).seq);
    expect(seqs.toSorted((a, b) => a - b)).toEqual(Array.from({ length: 80 }, (_, i) => i + 1));
  });
});
