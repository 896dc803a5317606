// A state_dir that was open to other users (an operator's `mkdir -m 777`) may hold symbolic links
// they planted under the names panorama writes. panorama never writes through one: a run as root
// would otherwise truncate or append to the file it names (/etc/shadow, a crontab).
import { afterAll, expect, test } from "bun:test";
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { checkWritable } from "../../src/doctor.ts";
import { openOwnFile } from "../../src/state/atomic.ts";
import { acquireLock } from "../../src/state/lock.ts";

const made: string[] = [];
afterAll(() => {
  for (const dir of made) rmSync(dir, { recursive: true, force: true });
});

function plant(): { stateDir: string; victim: string } {
  const dir = mkdtempSync(join(tmpdir(), "panorama-planted-"));
  made.push(dir);
  const victim = join(dir, "victim");
  writeFileSync(victim, "precious\n");
  const stateDir = join(dir, "state");
  mkdirSync(stateDir);
  chmodSync(stateDir, 0o777);
  return { stateDir, victim };
}

test("the run lock planted as a symbolic link: refused, the file it names untouched", () => {
  const { stateDir, victim } = plant();
  symlinkSync(victim, join(stateDir, "panorama.lock"));
  expect(() => acquireLock(stateDir, "run")).toThrow(/panorama\.lock is a symbolic link.*remove it/);
  expect(readFileSync(victim, "utf8")).toBe("precious\n");
});

test("a file opened to be rewritten through a planted link: refused, not truncated", () => {
  const { stateDir, victim } = plant();
  const path = join(stateDir, "metrics.lock");
  symlinkSync(victim, path);
  for (const flags of ["w", "w+", "a", "a+"] as const) {
    expect(() => openOwnFile(path, flags)).toThrow(/symbolic link/);
  }
  // atomicWrite's temporary file: made new, never an existing name.
  expect(() => openOwnFile(path, "wx")).toThrow(/EEXIST/);
  expect(readFileSync(victim, "utf8")).toBe("precious\n");
});

test("doctor's probe of a writable state_dir, its name planted as a link: not truncated through it", () => {
  const { stateDir, victim } = plant();
  symlinkSync(victim, join(stateDir, `.panorama-doctor-${process.pid}`));
  const result = checkWritable("state directory", stateDir, "state_dir", "chown it");
  expect(result.ok).toBe(false);
  expect(result.detail).toContain(`.panorama-doctor-${process.pid} is in the way`);
  expect(readFileSync(victim, "utf8")).toBe("precious\n");
});
