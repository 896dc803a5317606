// Log-shipping benchmark (run by hand, never by the test suite):
//   node_modules/.bin/bun scripts/bench-logship.ts [--size 1G] [--runs 3] [--dir DIR] [--binary PATH]
//     [--format prefixed|cri] [--pseudonyms]
// (--dir keeps the generated log there for the next run; --binary times a compiled panorama
// instead of `bun src/cli.ts`; --format cri writes each line as containerd does on a Kubernetes
// node: CRI records of at most 16 KiB of text, `P` for all but the last, with a line of the
// other stream, itself split in two, written in the middle of every eighth line; --pseudonyms
// also times log-ship with [privacy] pseudonymize = true in the same runs, and reports it against
// gzip and against log-ship without pseudonyms.)
// Builds a tracking log of about --size bytes from the real events of test/fixtures/tracking,
// each behind Tutor's logging prefix (the `prefixed` format) with times rising by 0.3 s a line
// (a few UTC days, so batches split at day boundaries as in production), then times, side by
// side in one run on the same warm file, `gzip -6 -c FILE > /dev/null` and `panorama log-ship
// --once` into a local datalake with a fresh state directory. Reports medians, the throughput
// ratio (target: panorama ≥ 50% of gzip) and panorama's peak RSS (target ≤ 100 MB), measured by
// /usr/bin/time. Each panorama run must ship every line once: the event count is checked.

import { randomBytes } from "node:crypto";
import {
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { parseSize } from "../src/config/units.ts";
import { type Measure, measure, median } from "./bench-support.ts";

const ROOT = join(import.meta.dir, "..");
const FIXTURE = join(ROOT, "test", "fixtures", "tracking", "events.jsonl");

const { values } = parseArgs({
  options: {
    size: { type: "string", default: "1G" },
    runs: { type: "string", default: "3" },
    dir: { type: "string" },
    binary: { type: "string" },
    pseudonyms: { type: "boolean", default: false },
    format: { type: "string", default: "prefixed" },
  },
});
const FORMAT = values.format;
if (FORMAT !== "prefixed" && FORMAT !== "cri") throw new Error(`--format: prefixed or cri, not ${FORMAT}`);
const parsedSize = parseSize(values.size);
if (typeof parsedSize !== "number") throw new Error(`--size: ${parsedSize}`);
const SIZE = parsedSize;
const RUNS = Number(values.runs);
const dir = values.dir ?? mkdtempSync(join(tmpdir(), "panorama-bench-logship-"));
mkdirSync(dir, { recursive: true });
const panorama = values.binary ? [values.binary] : [process.execPath, join(ROOT, "src", "cli.ts")];

/**
 * Each fixture event cut at every occurrence of its own time (top-level `time` or `timestamp`):
 * joined with another time, it is the same event at that time, the rest of its text unchanged.
 */
function templates(): string[][] {
  return readFileSync(FIXTURE, "utf8")
    .split("\n")
    .filter(Boolean)
    .map((line) => {
      const event = JSON.parse(line) as Record<string, unknown>;
      const time = [event.time, event.timestamp].find((t) => typeof t === "string") as string | undefined;
      if (!time) throw new Error(`a fixture event without a time: ${line.slice(0, 80)}`);
      return line.split(`"${time}"`);
    });
}

/** containerd's limit on a record's text: longer lines are split into `P` records. */
const CRI_RECORD_TEXT = 16 * 1024;

/** A Tutor line as CRI records on a Kubernetes node (see the header). */
function criLines(line: string, n: number, iso: string): string {
  const head = `${iso.slice(0, 19)}.${String(n % 1e9).padStart(9, "0")}Z`;
  const parts: string[] = [];
  for (let at = 0; at < line.length; ) {
    let end = Math.min(at + CRI_RECORD_TEXT, line.length);
    // not inside a surrogate pair
    if (end < line.length && /[\uDC00-\uDFFF]/.test(line[end]!)) end--;
    parts.push(line.slice(at, end));
    at = end;
  }
  const records = parts.map((part, i) => `${head} stdout ${i < parts.length - 1 ? "P" : "F"} ${part}\n`);
  if (n % 8 === 0) {
    const other = `${iso.slice(0, 10)} ${iso.slice(11, 19)},000 INFO 7 [django.request] GET /heartbeat 200`;
    records.splice(1, 0, `${head} stderr P ${other.slice(0, 30)}\n`);
    records.push(`${head} stderr F ${other.slice(30)}\n`);
  }
  return records.join("");
}

/** Writes the log (or reuses the one a previous run with --dir left); returns its line count. */
function buildLog(path: string): number {
  const count = `${path}.lines`;
  if (existsSync(count) && existsSync(path) && statSync(path).size >= SIZE)
    return Number(readFileSync(count, "utf8"));
  const parts = templates();
  const start = Date.UTC(2024, 2, 1, 10, 0, 0);
  const fd = openSync(path, "w");
  let size = 0;
  let lines = 0;
  let chunk: string[] = [];
  let chunkBytes = 0;
  while (size < SIZE) {
    const ms = start + lines * 300;
    const iso = new Date(ms).toISOString();
    const time = `${iso.slice(0, 23)}${String(lines % 1000).padStart(3, "0")}+00:00`;
    const prefix = `${iso.slice(0, 10)} ${iso.slice(11, 19)},${iso.slice(20, 23)} INFO 7 [tracking] [user ${lines % 5000}] [ip 172.18.0.1] logger.py:43 - `;
    const text = `${prefix}${parts[lines % parts.length]!.join(`"${time}"`)}`;
    const line = FORMAT === "cri" ? criLines(text, lines, iso) : `${text}\n`;
    chunk.push(line);
    chunkBytes += line.length;
    lines++;
    if (chunkBytes >= 8 << 20) {
      size += writeSync(fd, chunk.join(""));
      chunk = [];
      chunkBytes = 0;
    }
  }
  if (chunk.length > 0) writeSync(fd, chunk.join(""));
  closeSync(fd);
  writeFileSync(count, String(lines));
  return lines;
}

async function runGzip(file: string): Promise<Measure> {
  return measure(["sh", "-c", 'gzip -6 -c "$0" > /dev/null', file]);
}

/** A fresh 32-byte key for the runs with pseudonyms (DESIGN §11). */
function keyFile(): string {
  const path = join(dir, "pseudonym.key");
  writeFileSync(path, randomBytes(32), { mode: 0o600 });
  return path;
}

async function runPanorama(file: string, lines: number, run: number, pseudonyms: boolean): Promise<Measure> {
  const base = join(dir, `run-${run}`);
  rmSync(base, { recursive: true, force: true });
  const config = join(dir, `panorama-${run}.toml`);
  writeFileSync(
    config,
    `mode = "CUSTOM"
lms_host = "lms.example.com"
state_dir = "${join(base, "state")}"

[datalake]
target = "local"
path = "${join(base, "datalake")}"

[logs]
paths = ["${file}"]
format = "${FORMAT}"
${pseudonyms ? `\n[privacy]\npseudonymize = true\nkey_file = "${keyFile()}"\n` : ""}`,
  );
  const result = await measure([...panorama, "--config", config, "--json", "log-ship", "--once"]);
  const summary = result.stderr
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l) as { message: string; events?: number; objects?: number })
    .find((l) => l.message.startsWith("log-ship:"));
  if (summary?.events !== lines) {
    throw new Error(`panorama shipped ${summary?.events} events, the log has ${lines}`);
  }
  rmSync(base, { recursive: true, force: true });
  return result;
}

const mb = (bytes: number) => bytes / 2 ** 20;

const file = join(dir, FORMAT === "cri" ? "tracking-cri.log" : "tracking.log");
console.error(`building ${values.size} tracking log at ${file}...`);
const lines = buildLog(file);
const bytes = statSync(file).size;
console.error(`${lines} lines, ${(mb(bytes) / 1024).toFixed(2)} GiB`);

const gzip: Measure[] = [];
const ship: Measure[] = [];
const shipPseudonyms: Measure[] = [];
for (let run = 0; run < RUNS; run++) {
  // Alternate which goes first, so neither always gets the warmer cache.
  const order = ["gzip", "panorama", ...(values.pseudonyms ? ["panorama with pseudonyms"] : [])];
  if (run % 2 === 1) order.reverse();
  for (const which of order) {
    const t =
      which === "gzip"
        ? await runGzip(file)
        : await runPanorama(file, lines, run, which === "panorama with pseudonyms");
    (which === "gzip" ? gzip : which === "panorama" ? ship : shipPseudonyms).push(t);
    console.error(
      `run ${run + 1} ${which}: ${t.seconds.toFixed(2)} s, peak RSS ${t.maxRssMiB.toFixed(1)} MB`,
    );
  }
}

const gzipSeconds = median(gzip.map((t) => t.seconds));
const shipSeconds = median(ship.map((t) => t.seconds));
const peak = Math.max(...ship.map((t) => t.maxRssMiB));
const ratio = gzipSeconds / shipSeconds;
console.log(`file: ${(mb(bytes) / 1024).toFixed(2)} GiB, ${lines} ${FORMAT} lines (median of ${RUNS} runs)`);
console.log(
  `gzip -6 -c FILE > /dev/null : ${gzipSeconds.toFixed(2)} s, ${(mb(bytes) / gzipSeconds).toFixed(0)} MB/s`,
);
console.log(
  `panorama log-ship --once    : ${shipSeconds.toFixed(2)} s, ${(mb(bytes) / shipSeconds).toFixed(0)} MB/s`,
);
console.log(
  `throughput ratio panorama/gzip: ${(ratio * 100).toFixed(0)}% (target ≥ 50%) ${ratio >= 0.5 ? "ok" : "MISSED"}`,
);
console.log(`panorama peak RSS: ${peak.toFixed(1)} MB (target ≤ 100 MB) ${peak <= 100 ? "ok" : "MISSED"}`);
if (values.pseudonyms) {
  const seconds = median(shipPseudonyms.map((t) => t.seconds));
  const peakOn = Math.max(...shipPseudonyms.map((t) => t.maxRssMiB));
  const ratioOn = gzipSeconds / seconds;
  console.log(
    `panorama log-ship --once, pseudonyms on: ${seconds.toFixed(2)} s, ${(mb(bytes) / seconds).toFixed(0)} MB/s, ${((shipSeconds / seconds) * 100).toFixed(0)}% of the throughput without`,
  );
  console.log(
    `throughput ratio panorama with pseudonyms/gzip: ${(ratioOn * 100).toFixed(0)}% (target ≥ 50%) ${ratioOn >= 0.5 ? "ok" : "MISSED"}`,
  );
  console.log(
    `panorama with pseudonyms peak RSS: ${peakOn.toFixed(1)} MB (target ≤ 100 MB) ${peakOn <= 100 ? "ok" : "MISSED"}`,
  );
}
// With --dir the log stays, for the next run.
if (!values.dir) rmSync(dir, { recursive: true, force: true });
