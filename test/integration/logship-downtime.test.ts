// DESIGN §8 "Downtime loses nothing that is still on disk", as it happens on a host: a writer
// appends and rotates the log in each scheme (test/support/log-writer.ts's ROTATIONS), log-ship
// runs as a service that is SIGKILLed, is down across three rotations, runs from cron, is killed
// again, is down again; one last --once. The writer rotates 20 times and every rotation is kept
// (rotate 25), so every line is on disk until a run can read it, however slowly log-ship starts
// on a loaded machine: every line is shipped exactly once,
// but under truncation by hand, where the lines truncated away before a run read them are
// missing (they are counted and reported) and nothing else. The schemes run side by side.
import { afterAll, describe, expect, test } from "bun:test";
import { rmSync, writeFileSync } from "node:fs";
import { cleanEnv, runPanorama } from "../support/cli.ts";
import { spawnFollow, startWriter, waitForLock } from "../support/log-ship-process.ts";
import {
  asBytes,
  type LogShipSetup,
  linesOnDisk,
  logShipSetup,
  ROTATIONS,
  type Rotation,
  removeLogShipSetups,
  shippedLines,
  writerEvent,
} from "../support/log-writer.ts";

const env = cleanEnv();
afterAll(removeLogShipSetups);

/** A running log-ship --follow, SIGKILLed once it has run for a random while. */
async function killedService(setup: LogShipSetup): Promise<void> {
  const service = spawnFollow(setup.configFile, "ignore");
  await waitForLock(setup.stateDir, service.pid);
  await Bun.sleep(150 + Math.random() * 600);
  service.kill("SIGKILL");
  await service.exited;
}

async function scheme(rotation: Rotation) {
  const setup = logShipSetup({ logs: 'max_file_size = "8K"' });
  // The first run, before any rotation: rotated files older than it would be history.
  writeFileSync(setup.file, "");
  await runPanorama(["--config", setup.configFile, "--json", "log-ship", "--once"], { env });
  // 200 lines a second, a rotation every 120 lines (0.6 s), 2,400 lines.
  const writer = await startWriter([
    ...["--file", setup.file, "--rate", "200", "--rotate-every", "120", "--count", "2400"],
    ...["--rotate", rotation, "--keep", "25"],
  ]);
  await killedService(setup);
  await killedService(setup);
  await Bun.sleep(2000); // down across three rotations or so
  await runPanorama(["--config", setup.configFile, "--json", "log-ship", "--once"], { env });
  await killedService(setup);
  await Bun.sleep(1500);
  const { written, destroyed } = await writer.stop();
  const final = await runPanorama(["--config", setup.configFile, "--json", "log-ship", "--once"], { env });
  const status = await runPanorama(["--config", setup.configFile, "status", "--json"], { env });

  const count = new Map<number, number>();
  const wrong: string[] = [];
  for (const line of shippedLines(setup.datalake)) {
    const seq = Number(/"seq": (\d+)/.exec(line)?.[1]);
    // A line that is no writer event at all (no sequence number) is wrong, said as it is.
    if (!Number.isInteger(seq) || line !== asBytes(writerEvent(seq))) wrong.push(line.slice(0, 160));
    count.set(seq, (count.get(seq) ?? 0) + 1);
  }
  const removed = new Set(destroyed);
  const all = Array.from({ length: written }, (_, i) => i + 1);
  const missing = all.filter((seq) => !count.has(seq));
  const lost = JSON.parse(status.stdout).logs_lost as { lines: number }[];
  const onDisk = linesOnDisk(setup.file);
  rmSync(setup.dir, { recursive: true, force: true });
  return {
    rotation,
    finalCode: final.code,
    wrong,
    twice: [...count].filter(([, n]) => n > 1).map(([seq]) => seq),
    onDiskNotOnce: onDisk.filter((seq) => count.get(seq) !== 1),
    missingNotRemoved: missing.filter((seq) => !removed.has(seq)),
    // Only truncation by hand removes lines no run may have read yet.
    missing: rotation === "truncate" ? [] : missing,
    // reported, not asserted: how many depends on when the kills and truncations fell
    report: `${rotation}: ${written} lines, ${Math.floor(written / 120)} rotations, ${missing.length} lines removed before a run read them, ${lost.reduce((n, l) => n + l.lines, 0)} of them counted lost by log-ship`,
    written,
  };
}

/** Every line on disk shipped exactly once, in each of `rotations`, run side by side. */
async function expectExactlyOnce(rotations: readonly (typeof ROTATIONS)[number][]): Promise<void> {
  const results = await Promise.all(rotations.map(scheme));
  for (const result of results) console.info(result.report);
  expect(results.map(({ report, written, ...result }) => result)).toEqual(
    rotations.map((rotation) => ({
      rotation,
      finalCode: 0,
      wrong: [],
      twice: [],
      onDiskNotOnce: [],
      missingNotRemoved: [],
      missing: [],
    })),
  );
  for (const result of results) expect(result.written).toBeGreaterThan(1000);
}

describe("log-ship down across rotations, in each scheme, with SIGKILLs", () => {
  test("every line still on disk (plain or gzip) shipped exactly once; only lines truncated away before a run read them missing", async () => {
    await expectExactlyOnce(ROTATIONS);
  }, 120_000);
});
