// A writer is told apart by its pid and its start time: a pid that a later process got (pid 1 in
// every pod of a CronJob) is not the writer that recorded it.
import { afterAll, expect, test } from "bun:test";
import { chmodSync, copyFileSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { OWN_START, OWN_WRITER, processAlive, processStart } from "../../src/state/process-identity.ts";

const sleeper = Bun.spawn(["sleep", "30"]);
afterAll(() => sleeper.kill());

test("this process: its start time, in every name it writes", () => {
  expect(OWN_START).toBeNumber();
  expect(OWN_WRITER).toBe(`${process.pid}-${OWN_START}`);
  expect(processAlive(process.pid, OWN_START)).toBe(true);
  // What an earlier process with this pid wrote: it died, this one has its pid.
  expect(processAlive(process.pid, (OWN_START ?? 0) - 1)).toBe(false);
  // Recorded by an earlier version, without a start time: the pid is all there is.
  expect(processAlive(process.pid)).toBe(true);
});

test("another process: alive with its own start time, dead with another or once it exited", async () => {
  const start = processStart(sleeper.pid);
  expect(start).toBeNumber();
  expect(start).toBeGreaterThanOrEqual(OWN_START ?? 0);
  expect(processAlive(sleeper.pid, start)).toBe(true);
  expect(processAlive(sleeper.pid)).toBe(true);
  expect(processAlive(sleeper.pid, (start ?? 0) + 1)).toBe(false);
  const gone = Bun.spawn(["true"]);
  await gone.exited;
  expect(processAlive(gone.pid)).toBe(false);
  expect(processStart(gone.pid)).toBeUndefined();
});

test("a command name with spaces and parentheses does not shift the fields", async () => {
  // /proc/<pid>/stat's second field is the executable's name in parentheses, whatever it holds.
  const dir = mkdtempSync(join(tmpdir(), "panorama-identity-"));
  const odd = join(dir, "a) (b c");
  copyFileSync(Bun.which("sleep")!, odd);
  chmodSync(odd, 0o700);
  const child = Bun.spawn([odd, "30"]);
  try {
    await Bun.sleep(50);
    expect(readFileSync(`/proc/${child.pid}/stat`, "latin1")).toContain("(a) (b c)");
    const ticksPerSecond = Number(Bun.spawnSync(["getconf", "CLK_TCK"]).stdout.toString());
    const now = Number(readFileSync("/proc/uptime", "latin1").split(" ")[0]) * ticksPerSecond;
    const start = processStart(child.pid) ?? -1;
    expect(start).toBeGreaterThanOrEqual(processStart(sleeper.pid) ?? 0);
    expect(start).toBeLessThanOrEqual(now + 1);
    expect(processAlive(child.pid, start)).toBe(true);
  } finally {
    child.kill();
    await child.exited;
    rmSync(dir, { recursive: true, force: true });
  }
});
