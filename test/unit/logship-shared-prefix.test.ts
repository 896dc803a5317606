// DESIGN §8, files told apart by their content, not by their first bytes alone: plain JSON
// tracking events start with long `context` fields, so two different files may share their
// first 1,024 bytes (lines 1 and 75 of the fixture do; seven groups of its 81 events do). A new
// file starting like one already shipped is shipped, once; a real copy of a shipped file
// (copytruncate's copy, a gzip of a rotated file) is still recognised and not shipped again.
import { afterAll, describe, expect, test } from "bun:test";
import {
  appendFileSync,
  copyFileSync,
  readFileSync,
  renameSync,
  rmSync,
  truncateSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { gzipSync } from "node:zlib";
import { setupLogging } from "../../src/log.ts";
import { shipLogs } from "../../src/logship/ship.ts";
import { FINGERPRINT_BYTES } from "../../src/logship/tail.ts";
import {
  asBytes,
  fixtureEvents,
  type LogShipSetup,
  logShipSetup,
  removeLogShipSetups,
  rotateLog,
  shippedLines,
} from "../support/log-writer.ts";

setupLogging({ level: "error" });
afterAll(removeLogShipSetups);

/** Fixture lines `from` to `to` (1-based, as `sed -n from,top` prints them). */
const lines = (from: number, to: number) => fixtureEvents().slice(from - 1, to);
const text = (events: string[]) => events.map((e) => `${e}\n`).join("");

function ship(setup: LogShipSetup) {
  return shipLogs(setup.config, { retryMs: 5, pollMs: 50 });
}

/**
 * The live file last written an hour ago, as between two cron runs on a host: a rotated file
 * that no run shipped is then older than the last run, history that is never read again.
 */
function writtenLongAgo(setup: LogShipSetup): void {
  const past = new Date(Date.now() - 3600_000);
  utimesSync(setup.file, past, past);
}

/** Every line of `written` shipped exactly once, and nothing else: line → times shipped, when not 1. */
function notExactlyOnce(setup: LogShipSetup, written: string[]): Record<string, number> {
  const count = new Map<string, number>(written.map((line) => [asBytes(line), 0]));
  for (const line of shippedLines(setup.datalake)) count.set(line, (count.get(line) ?? 0) + 1);
  const wrong: Record<string, number> = {};
  const all = fixtureEvents().map(asBytes);
  for (const [line, n] of count) if (n !== 1) wrong[`line ${all.indexOf(line) + 1}`] = n;
  return wrong;
}

test("the fixture has lines that share their first bytes (the premise of these tests)", () => {
  const [first, seventyFifth] = [Buffer.from(lines(1, 1)[0]!), Buffer.from(lines(75, 75)[0]!)];
  expect(first.subarray(0, FINGERPRINT_BYTES).equals(seventyFifth.subarray(0, FINGERPRINT_BYTES))).toBe(true);
  expect(first.equals(seventyFifth)).toBe(false);
});

describe("a new file whose first 1,024 bytes equal a shipped file's", () => {
  test("rename-and-create, the old file still there as tracking.log.1: the new file is shipped once, and what is appended to it", async () => {
    const setup = logShipSetup();
    writeFileSync(setup.file, text(lines(1, 10)));
    expect((await ship(setup)).events).toBe(10);
    renameSync(setup.file, `${setup.file}.1`);
    writeFileSync(setup.file, text(lines(75, 81)));
    expect((await ship(setup)).events).toBe(7);
    appendFileSync(setup.file, text(lines(11, 20)));
    expect((await ship(setup)).events).toBe(10);
    rmSync(`${setup.file}.1`);
    expect((await ship(setup)).events).toBe(0);
    expect(notExactlyOnce(setup, [...lines(1, 20), ...lines(75, 81)])).toEqual({});
  });

  test("delaycompress, rotate 7, a run between writes: every file shipped exactly once, none held back as a copy", async () => {
    const setup = logShipSetup();
    // Each file starts like one before it still on disk (plain, or compressed later).
    const files = [
      [...lines(1, 10)],
      [...lines(75, 81), ...lines(11, 14)],
      [...lines(29, 29), ...lines(15, 20)],
      [...lines(30, 30), ...lines(21, 28)],
      [...lines(31, 31), ...lines(37, 47)],
      [...lines(32, 32), ...lines(48, 49)],
      [...lines(33, 33), ...lines(34, 35)],
      [...lines(36, 36), ...lines(50, 65)],
      [...lines(66, 67), ...lines(70, 70)],
      [...lines(68, 68), ...lines(71, 72)],
      [...lines(69, 69), ...lines(73, 74)],
    ];
    expect(files.flat().sort()).toEqual([...fixtureEvents()].sort());
    for (const [i, events] of files.entries()) {
      if (i > 0) expect(rotateLog(setup.file, "delaycompress", 7, i).destroyed).toEqual([]);
      const half = Math.ceil(events.length / 2);
      writeFileSync(setup.file, text(events.slice(0, half)));
      writtenLongAgo(setup);
      expect((await ship(setup)).events).toBe(half);
      appendFileSync(setup.file, text(events.slice(half)));
      writtenLongAgo(setup);
      expect((await ship(setup)).events).toBe(events.length - half);
    }
    expect(notExactlyOnce(setup, fixtureEvents())).toEqual({});
  });
});

describe("a real copy of a shipped file is still recognised", () => {
  test("copytruncate: a copy being made, then made and the file truncated, with a new first line like the old one: each line once", async () => {
    const setup = logShipSetup();
    writeFileSync(setup.file, text(lines(1, 10)));
    await ship(setup);
    appendFileSync(setup.file, text(lines(11, 15)));
    // Copied, not truncated yet: the copy is the live file's content, not a new file.
    copyFileSync(setup.file, `${setup.file}.1`);
    expect((await ship(setup)).events).toBe(5);
    truncateSync(setup.file, 0);
    writeFileSync(setup.file, text(lines(75, 81)));
    expect((await ship(setup)).events).toBe(7);
    // Caught copying the next time: the copy shorter than the file, then the file truncated.
    appendFileSync(setup.file, text(lines(16, 20)));
    renameSync(`${setup.file}.1`, `${setup.file}.2`);
    writeFileSync(`${setup.file}.1`, readFileSync(setup.file).subarray(0, 3000));
    expect((await ship(setup)).events).toBe(5);
    copyFileSync(setup.file, `${setup.file}.1`);
    truncateSync(setup.file, 0);
    appendFileSync(setup.file, text(lines(21, 25)));
    expect((await ship(setup)).events).toBe(5);
    expect(notExactlyOnce(setup, [...lines(1, 25), ...lines(75, 81)])).toEqual({});
  });

  test("a gzip of a rotated file, beside it and then alone, while a new file starts like it: each line once", async () => {
    const setup = logShipSetup();
    writeFileSync(setup.file, text(lines(1, 10)));
    await ship(setup);
    renameSync(setup.file, `${setup.file}.1`);
    writeFileSync(setup.file, text(lines(75, 81)));
    expect((await ship(setup)).events).toBe(7);
    // delaycompress: .1 renamed to .2, gzipped beside it, then removed.
    renameSync(`${setup.file}.1`, `${setup.file}.2`);
    renameSync(setup.file, `${setup.file}.1`);
    writeFileSync(setup.file, text(lines(11, 15)));
    writeFileSync(`${setup.file}.2.gz`, gzipSync(readFileSync(`${setup.file}.2`)));
    expect((await ship(setup)).events).toBe(5);
    rmSync(`${setup.file}.2`);
    appendFileSync(setup.file, text(lines(16, 20)));
    expect((await ship(setup)).events).toBe(5);
    // And the file that started like it, compressed in turn.
    writeFileSync(`${setup.file}.1.gz`, gzipSync(readFileSync(`${setup.file}.1`)));
    rmSync(`${setup.file}.1`);
    expect((await ship(setup)).events).toBe(0);
    expect(notExactlyOnce(setup, [...lines(1, 20), ...lines(75, 81)])).toEqual({});
  });
});
