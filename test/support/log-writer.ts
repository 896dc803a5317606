// A tracking-log writer for the log-ship tests: appends numbered events (real Open edX events
// from test/fixtures/tracking, wrapped with a sequence number and a time) at a steady rate, and
// rotates its file like logrotate (see ROTATIONS) at set line counts or on a signal (SIGUSR1:
// rename, SIGUSR2: copytruncate), keeping --keep rotated files. On SIGTERM, or after --count
// lines, it prints {"written": N, "destroyed": [seq, ...]} (the lines in the files it removed or
// truncated away) and exits. Also what the log-ship tests share: a configuration on a temporary
// directory, the events found in the local datalake in source order, the lines of a log and its
// rotated files (gzip ones too).
//
//   bun test/support/log-writer.ts --file /tmp/x/tracking.log [--format json|prefixed|docker|cri]
//     [--rate 200] [--count 0] [--rotate-every 0] [--rotate rename,copytruncate] [--keep 100]
import {
  closeSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  truncateSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { basename, dirname, join } from "node:path";
import { parseArgs } from "node:util";
import { gunzipSync, gzipSync } from "node:zlib";
import { parseConfig } from "../../src/config/load.ts";
import type { Config } from "../../src/config/types.ts";

/** Real Open edX events (a copy of the shared fixture, kept in the repo for CI; see its SOURCES.md). */
export const FIXTURE = join(import.meta.dir, "..", "fixtures", "tracking", "events.jsonl");

let fixtureLines: string[] | null = null;
/** The fixture's events, one JSON text each, exactly as in the file. */
export function fixtureEvents(): string[] {
  fixtureLines ??= readFileSync(FIXTURE, "utf8").split("\n").filter(Boolean);
  return fixtureLines;
}

export type WriterFormat = "json" | "prefixed" | "docker" | "cri";

/**
 * The rotation schemes, as logrotate (and savelog, and scripts) do them:
 * - rename: rename-and-create (logrotate's default); `compress` gzips the new `.1` at once,
 *   `delaycompress` the `.2` (the file rotated the time before)
 * - copytruncate: copy to `.1`, truncate; `copytruncate-oldest-first` removes the oldest copy
 *   before copying (savelog, scripts), so the copy may get the removed file's inode
 * - dateext: rename to `tracking.log-YYYYMMDD`-like names, the oldest removed beyond `keep`
 * - truncate: truncation by hand, no copy
 * logrotate removes the file past `keep` after the new rotation is made.
 */
export const ROTATIONS = [
  "rename",
  "compress",
  "delaycompress",
  "copytruncate",
  "copytruncate-oldest-first",
  "dateext",
  "truncate",
] as const;
export type Rotation = (typeof ROTATIONS)[number];

const START = Date.UTC(2024, 2, 1, 10, 0, 0);

/** Open edX's time format: 2024-03-01T10:00:00.123456+00:00 */
export function openEdxTime(ms: number, micros = 0): string {
  return `${new Date(ms).toISOString().slice(0, 19)}.${String((ms % 1000) * 1000 + micros).padStart(6, "0")}+00:00`;
}

/** Event number `seq`: a real event nested under a sequence number, one per second from 2024-03-01 10:00. */
export function writerEvent(seq: number): string {
  const events = fixtureEvents();
  const inner = events[seq % events.length]!;
  return `{"name": "panorama.test", "seq": ${seq}, "time": "${openEdxTime(START + seq * 1000, seq % 1000)}", "event": ${inner}}`;
}

/** Tutor's logging prefix in front of the event. */
export function prefixed(event: string, seq = 1): string {
  return `2024-03-01 10:00:00,${String(seq % 1000).padStart(3, "0")} INFO 7 [tracking] [user 3] [ip 172.18.0.1] logger.py:43 - ${event}`;
}

/** The Docker json-file wrapper of one output line. */
export function dockerWrapped(line: string): string {
  return JSON.stringify({ log: `${line}\n`, stream: "stdout", time: "2024-03-01T10:00:00.123456789Z" });
}

/** A small seeded generator (mulberry32): the same records for the same seed. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type CriStream = "stdout" | "stderr";

/** One CRI record, as containerd writes it (no newline). */
export function criRecord(stream: CriStream, partial: boolean, text: Buffer): Buffer {
  const time = new Date(Date.UTC(2024, 2, 1, 10)).toISOString().replace(".000Z", ".123456789Z");
  return Buffer.concat([Buffer.from(`${time} ${stream} ${partial ? "P" : "F"} `), text]);
}

/** `text` cut at `parts - 1` random byte positions from `from` on (UTF-8 sequences may be cut). */
export function randomCuts(text: Buffer, parts: number, random: () => number, from = 0): Buffer[] {
  const cuts = new Set<number>();
  while (cuts.size < Math.min(parts - 1, text.length - from - 1)) {
    cuts.add(from + 1 + Math.floor(random() * (text.length - from - 1)));
  }
  const sorted = [...cuts].sort((a, b) => a - b);
  return [0, ...sorted].map((at, i) => text.subarray(at, sorted[i] ?? text.length));
}

/**
 * A line as containerd writes it: split into `P` records ended by an `F` (here at random byte
 * positions, as if its 16 KiB limit were smaller), while the container's other stream writes a
 * line of its own, also split, whose records interleave with these and may end after them.
 */
export function criRecords(line: string, stream: CriStream, random: () => number, from = 0): Buffer[] {
  const other: CriStream = stream === "stdout" ? "stderr" : "stdout";
  const noise = Buffer.from(
    `2024-03-01 10:00:00,000 INFO 7 [django.request] GET /heartbeat {"status": ${Math.floor(random() * 600)}}`,
  );
  const own = randomCuts(Buffer.from(line), 1 + Math.floor(random() * 5), random, from).map((part, i, all) =>
    criRecord(stream, i < all.length - 1, part),
  );
  const theirs = randomCuts(noise, 1 + Math.floor(random() * 3), random).map((part, i, all) =>
    criRecord(other, i < all.length - 1, part),
  );
  const records: Buffer[] = [];
  while (own.length > 0 || theirs.length > 0) {
    const fromOwn = theirs.length === 0 || (own.length > 0 && random() < 0.5);
    records.push((fromOwn ? own : theirs).shift()!);
  }
  return records;
}

/** Records separated by newlines, the last one with its newline. */
export function recordLines(records: Buffer[]): Buffer {
  return Buffer.concat(records.flatMap((r) => [r, Buffer.from("\n")]));
}

/** Where the record after the first `P` record of `stream` in CRI lines `bytes` begins (their end if none). */
export function afterFirstPartial(bytes: Buffer, stream: CriStream): number {
  const partial = new RegExp(`^\\S+ ${stream} P `);
  for (let at = 0; at < bytes.length; ) {
    const end = bytes.indexOf(10, at) + 1 || bytes.length;
    if (partial.test(bytes.toString("latin1", at, Math.min(end, at + 48)))) return end;
    at = end;
  }
  return bytes.length;
}

/** The bytes the writer appends for event `seq` (its line and newline; CRI: several records). */
export function formatLine(event: string, format: WriterFormat, seq = 1): Buffer {
  if (format === "cri") {
    // Events on both streams; the cuts come after the sequence number, so that seqsOf() finds it.
    const line = prefixed(event, seq);
    const stream = seq % 2 === 0 ? "stdout" : "stderr";
    return recordLines(criRecords(line, stream, seededRandom(seq), line.indexOf('"seq"') + 20));
  }
  return Buffer.from(`${formatText(event, format, seq)}\n`);
}

function formatText(event: string, format: Exclude<WriterFormat, "cri">, seq: number): string {
  if (format === "json") return event;
  if (format === "prefixed") return prefixed(event, seq);
  return dockerWrapped(prefixed(event, seq));
}

export interface LogShipSetup {
  dir: string;
  logs: string;
  /** the tracking log path */
  file: string;
  datalake: string;
  stateDir: string;
  configFile: string;
  toml: string;
  config: Config;
}

const setupDirs: string[] = [];

/** Removes every directory logShipSetup() made so far (a test file's afterAll). */
export function removeLogShipSetups(): void {
  for (const dir of setupDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
}

export function logShipSetup(
  options: { logs?: string; datalake?: string; top?: string; mode?: string } = {},
): LogShipSetup {
  const dir = mkdtempSync(join(tmpdir(), "panorama-logship-"));
  setupDirs.push(dir);
  const logs = join(dir, "logs");
  mkdirSync(logs);
  const file = join(logs, "tracking.log");
  const datalake = join(dir, "datalake");
  const stateDir = join(dir, "state");
  const toml = `mode = "${options.mode ?? "CUSTOM"}"
lms_host = "lms.example.com"
state_dir = "${stateDir}"
${options.top ?? ""}
[datalake]
target = "local"
path = "${datalake}"
${options.datalake ?? ""}

[logs]
paths = ["${file}"]
${options.logs?.includes("upload_timeout") ? "" : 'upload_timeout = "1s"'}
${options.logs ?? ""}
`;
  const configFile = join(dir, "panorama.toml");
  writeFileSync(configFile, toml);
  const config = parseConfig(toml, configFile, {}).config;
  return { dir, logs, file, datalake, stateDir, configFile, toml, config };
}

export interface ShippedObject {
  key: string;
  day: string;
  fileId: string;
  offset: number;
  /** the object's lines, as bytes (latin1 strings: one character per byte) */
  lines: string[];
}

const KEY = /tracking\.log-(\d{8})-\d{6}-([0-9a-f]+)-(\d+)\.gz$/;

function walk(dir: string, prefix = ""): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  const out: string[] = [];
  for (const name of names) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...walk(path, `${prefix}${name}/`));
    else out.push(`${prefix}${name}`);
  }
  return out;
}

/** Every object under `datalake`, by source file then start offset. Dot files fail the test. */
export function shippedObjects(datalake: string): ShippedObject[] {
  const objects: ShippedObject[] = [];
  for (const key of walk(datalake)) {
    const m = KEY.exec(key);
    if (!m) throw new Error(`unexpected file in the datalake: ${key}`);
    const text = gunzipSync(readFileSync(join(datalake, key))).toString("latin1");
    if (!text.endsWith("\n")) throw new Error(`${key} does not end with a newline`);
    objects.push({
      key,
      day: m[1]!,
      fileId: m[2]!,
      offset: Number(m[3]),
      lines: text.slice(0, -1).split("\n"),
    });
  }
  return objects.sort((a, b) => (a.fileId === b.fileId ? a.offset - b.offset : a.fileId < b.fileId ? -1 : 1));
}

/** All shipped lines, in source order within each file. */
export function shippedLines(datalake: string): string[] {
  return shippedObjects(datalake).flatMap((o) => o.lines);
}

/** The latin1 view of UTF-8 text: what shippedLines() holds for it. */
export function asBytes(text: string): string {
  return Buffer.from(text, "utf8").toString("latin1");
}

/** The text of a log file, plain or gzip; "" when it is not there. */
export function logText(path: string): string {
  if (!existsSync(path)) return "";
  const bytes = readFileSync(path);
  return (path.endsWith(".gz") ? gunzipSync(bytes) : bytes).toString("latin1");
}

/** The sequence numbers of the complete writer lines of a text. */
export function seqsOf(text: string): number[] {
  return text
    .split("\n")
    .slice(0, -1)
    .map((line) => Number(/"seq": (\d+)/.exec(line)?.[1]))
    .filter((seq) => !Number.isNaN(seq));
}

/** Every complete line now in `file` and its rotated files (names starting with its own, gzip ones too). */
export function linesOnDisk(file: string): number[] {
  return readdirSync(dirname(file))
    .filter((name) => name.startsWith(basename(file)))
    .flatMap((name) => seqsOf(logText(join(dirname(file), name))));
}

function gzipFile(path: string): void {
  writeFileSync(`${path}.gz`, gzipSync(readFileSync(path)));
  rmSync(path);
}

/**
 * Rotates `file` by `kind`, keeping `keep` rotated files (`serial`: the rotation's number, for
 * dated names). Returns the sequence numbers of the lines it removed (or truncated away), and
 * whether the writer must open the file again (it was renamed).
 */
export function rotateLog(
  file: string,
  kind: Rotation,
  keep: number,
  serial: number,
): { destroyed: number[]; reopen: boolean } {
  const destroyed: number[] = [];
  const remove = (path: string) => {
    destroyed.push(...seqsOf(logText(path)));
    rmSync(path);
  };
  const numbered = (k: number) => [`${file}.${k}`, `${file}.${k}.gz`].filter((p) => existsSync(p));
  if (kind === "truncate") {
    destroyed.push(...seqsOf(logText(file)));
    truncateSync(file, 0);
    return { destroyed, reopen: false };
  }
  if (kind === "dateext") {
    renameSync(file, `${file}-2024${String(serial).padStart(4, "0")}`);
    const dated = readdirSync(dirname(file))
      .filter((name) => name.startsWith(`${basename(file)}-`))
      .sort();
    for (const name of dated.slice(0, -keep)) remove(join(dirname(file), name));
    return { destroyed, reopen: true };
  }
  const oldestFirst = kind === "copytruncate-oldest-first";
  if (oldestFirst) for (const path of numbered(keep)) remove(path);
  for (let k = oldestFirst ? keep - 1 : keep; k >= 1; k--) {
    for (const path of numbered(k)) {
      renameSync(path, `${file}.${k + 1}${path.slice(`${file}.${k}`.length)}`);
    }
  }
  if (kind === "copytruncate" || oldestFirst) {
    copyFileSync(file, `${file}.1`);
    truncateSync(file, 0);
  } else {
    renameSync(file, `${file}.1`);
  }
  if (kind === "compress") gzipFile(`${file}.1`);
  if (kind === "delaycompress" && existsSync(`${file}.2`)) gzipFile(`${file}.2`);
  for (const path of numbered(keep + 1)) remove(path);
  return { destroyed, reopen: !(kind === "copytruncate" || oldestFirst) };
}

class Writer {
  private fd: number;
  written = 0;
  rotations = 0;
  readonly destroyed: number[] = [];

  constructor(
    private readonly file: string,
    private readonly keep: number,
  ) {
    this.fd = openSync(file, "a");
  }

  append(text: Uint8Array): void {
    writeSync(this.fd, text);
  }

  rotate(kind: Rotation): void {
    const { destroyed, reopen } = rotateLog(this.file, kind, this.keep, ++this.rotations);
    this.destroyed.push(...destroyed);
    if (!reopen) return;
    closeSync(this.fd);
    this.fd = openSync(this.file, "a");
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      file: { type: "string" },
      format: { type: "string", default: "json" },
      rate: { type: "string", default: "200" },
      count: { type: "string", default: "0" },
      "rotate-every": { type: "string", default: "0" },
      rotate: { type: "string", default: "rename,copytruncate" },
      keep: { type: "string", default: "100" },
    },
  });
  if (!values.file) throw new Error("--file is required");
  const format = values.format as WriterFormat;
  const rate = Number(values.rate);
  const count = Number(values.count);
  const every = Number(values["rotate-every"]);
  const kinds = values.rotate.split(",") as Rotation[];
  const writer = new Writer(values.file, Number(values.keep));
  let stop = false;
  process.on("SIGTERM", () => {
    stop = true;
  });
  process.on("SIGUSR1", () => writer.rotate("rename"));
  process.on("SIGUSR2", () => writer.rotate("copytruncate"));
  for (const kind of kinds)
    if (!ROTATIONS.includes(kind)) throw new Error(`--rotate: unknown scheme ${kind}`);
  process.stdout.write("ready\n");
  const started = performance.now();
  while (!stop && (count === 0 || writer.written < count)) {
    // Lines due by now at the steady rate, written in one burst every few milliseconds.
    const due = Math.floor(((performance.now() - started) / 1000) * rate);
    while (writer.written < due && !stop && (count === 0 || writer.written < count)) {
      const seq = writer.written + 1;
      const line = formatLine(writerEvent(seq), format, seq);
      const kind = every > 0 && seq % every === 0 ? kinds[writer.rotations % kinds.length]! : null;
      // containerd writes the rest of a line cut by a kubelet rotation (a rename) into the new file.
      const cut =
        format === "cri" && kind === "rename"
          ? afterFirstPartial(line, seq % 2 === 0 ? "stdout" : "stderr")
          : line.length;
      writer.append(line.subarray(0, cut));
      writer.written = seq;
      if (kind) writer.rotate(kind);
      if (cut < line.length) writer.append(line.subarray(cut));
    }
    await Bun.sleep(5);
  }
  process.stdout.write(`${JSON.stringify({ written: writer.written, destroyed: writer.destroyed })}\n`);
}

if (import.meta.main) await main();
