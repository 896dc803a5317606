// What the benchmark scripts share: a timed run of one command with its own peak RSS, and medians.

import { spawn } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { CellValue, ColumnKind } from "../src/extract/csv.ts";
import type { Certificate } from "../test/support/certificate.ts";
import { testEnv } from "../test/support/env.ts";
import { rootConnection, testConnection } from "../test/support/mysql.ts";
import { generateOpenedxData } from "./gen-openedx-data.ts";

export interface Measure {
  /** wall time */
  seconds: number;
  /** peak RSS of the command alone */
  maxRssMiB: number;
  /** CPU time of the command and its children, user and system */
  cpuSeconds: number;
  code: number;
  /** the command's standard output, when asked for (else it goes nowhere) */
  stdout?: string;
  stderr: string;
}

let runs = 0;

/**
 * Runs `cmd` under GNU time (`%M`: the command's own peak RSS in KiB; `%U %S`: its CPU time). Bun's resourceUsage() of
 * a child reports the largest child ever waited for, so a case would show an earlier case's peak.
 * time's report goes to a file: Bun makes the stderr pipe it shares with its child non-blocking,
 * and time's own write to it can then fail. Throws when the command fails, unless allowFailure.
 */
export async function measure(
  cmd: string[],
  env: Record<string, string> = {},
  options: { stdout?: boolean; allowFailure?: boolean } = {},
): Promise<Measure> {
  const report = join(tmpdir(), `panorama-bench-time-${process.pid}-${++runs}`);
  const started = performance.now();
  const child = Bun.spawn(["/usr/bin/time", "-f", "%U %S %M", "-o", report, ...cmd], {
    stdout: options.stdout ? "pipe" : "ignore",
    stderr: "pipe",
    env: { ...process.env, ...env },
  });
  const [code, stdout, stderr] = await Promise.all([
    child.exited,
    options.stdout ? new Response(child.stdout as ReadableStream).text() : undefined,
    new Response(child.stderr).text(),
  ]);
  const seconds = (performance.now() - started) / 1000;
  if (code !== 0 && !options.allowFailure) {
    rmSync(report, { force: true });
    throw new Error(`${cmd.join(" ")} exited ${code}: ${stderr.slice(-2000)}`);
  }
  // A failed command's report starts with "Command exited with non-zero status N".
  const text = readFileSync(report, "utf8");
  rmSync(report, { force: true });
  const figures = /([\d.]+) ([\d.]+) (\d+)\s*$/.exec(text);
  if (!figures) throw new Error(`no CPU time and peak RSS in time's report: ${text}`);
  const [, user, system, kib] = figures;
  return {
    seconds,
    maxRssMiB: Number(kib) / 1024,
    cpuSeconds: Number(user) + Number(system),
    code,
    stdout,
    stderr,
  };
}

export const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/**
 * The test MariaDB's CPU time so far, in seconds (its /proc stat, found through @@pid_file); NaN
 * when it cannot be read (a server on another host).
 */
export async function serverCpuReader(): Promise<() => number> {
  const root = await rootConnection();
  const [rows] = await root.query({ sql: "SELECT @@pid_file", rowsAsArray: true });
  await root.end();
  const pidFile = String((rows as [string][])[0]![0]);
  const pid = existsSync(pidFile) ? readFileSync(pidFile, "utf8").trim() : "";
  const stat = pid && existsSync(`/proc/${pid}/stat`) ? `/proc/${pid}/stat` : null;
  const TICKS_PER_SECOND = 100; // USER_HZ on Linux
  return () => {
    if (!stat) return Number.NaN;
    // The fields after the command's name (which may hold spaces): utime and stime are the 12th and 13th.
    const fields = readFileSync(stat, "utf8").split(") ")[1]!.split(" ");
    return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
  };
}

/**
 * Wait until the server (`cpu`: serverCpuReader's) used under `idle` seconds of CPU over one
 * `sliceMs`, at most `slices` of them. After the data is generated, InnoDB goes on for a while
 * (purge, flushing), and a run measured then measured that too (0.51 s for the steady
 * benchmark's run that reads nothing, 0.23 s after).
 */
export async function serverIdle(
  cpu: () => number,
  { sliceMs = 1000, slices = 60, idle = 0.02 } = {},
): Promise<void> {
  if (Number.isNaN(cpu())) return;
  for (let waited = 0; waited < slices; waited++) {
    const before = cpu();
    await Bun.sleep(sliceMs);
    if (cpu() - before < idle) return;
  }
}

/**
 * The benchmarks' table: `rows` rows of courseware_studentmodule in 200 courses in the test
 * MariaDB's scratch database (generated once, kept while the count matches), on a warm and idle
 * server.
 */
export async function generateStudentmodule(rows: number): Promise<void> {
  const env = testEnv().mysql;
  const database = env.scratchDatabase;
  // Both sides read a warm server: the test environment's small buffer pool would make the
  // per-partition index look-ups measure the disk, not the extraction.
  const root = await rootConnection();
  await root.query("SET GLOBAL innodb_buffer_pool_size = 2147483648");
  await root.end();
  const db = await testConnection(database);
  const [existing] = await db.query(
    "SELECT TABLE_ROWS AS n FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = 'courseware_studentmodule'",
    [database],
  );
  const [count] = (existing as { n: number }[]).length
    ? ((await db.query("SELECT COUNT(*) AS n FROM courseware_studentmodule"))[0] as { n: number }[])
    : [{ n: 0 }];
  if (Number(count?.n) === rows) {
    await db.end();
    await serverIdle(await serverCpuReader());
    return;
  }
  await db.end();
  console.error(`generating ${rows} rows...`);
  // The realistic Open edX data of scripts/gen-openedx-data.ts: ~20 modules per enrolment, 200
  // courses of unequal sizes (so partitions differ as they do in production).
  await generateOpenedxData({
    users: Math.max(1, Math.ceil(rows / 200)),
    courses: 200,
    enrollments: Math.max(1, Math.ceil(rows / 20)),
    studentmodule: rows,
    seed: 1,
    connection: { host: env.host, port: env.port, user: env.user, password: env.password, database },
    log: (m) => console.error(m),
  });
  await serverIdle(await serverCpuReader());
}

/**
 * The column kinds of the CSV benchmarks' courseware_studentmodule rows (id, module_type,
 * module_id, course_id, state, grade, max_grade, done, created, modified, student_id).
 */
export const STUDENTMODULE_KINDS: ColumnKind[] = [
  "integer",
  "string",
  "string",
  "string",
  "json",
  "double",
  "double",
  "string",
  "datetime",
  "datetime",
  "integer",
];

/** A deterministic PRNG (mulberry32), so that runs are comparable. */
export function rng(seed: number): () => number {
  let s = seed;
  return () => {
    s = (s + 0x6d2b79f5) | 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Row `i` of the CSV benchmarks' courseware_studentmodule, as mysql2 parses it (rowsAsArray,
 * dateStrings, bigNumberStrings), in the order of STUDENTMODULE_KINDS.
 */
export function studentmoduleRow(i: number, random: () => number): CellValue[] {
  const hexId = (len: number) => {
    let s = "";
    while (s.length < len) s += Math.floor(random() * 16).toString(16);
    return s;
  };
  const timestamp = () => {
    const ms = Date.UTC(2024, 0, 1) + Math.floor(random() * 365 * 86_400_000);
    const micros = String(Math.floor(random() * 1_000_000)).padStart(6, "0");
    return `${new Date(ms).toISOString().slice(0, 19).replace("T", " ")}.${micros}`;
  };
  const course = `course-v1:Org${i % 7}+CS${i % 50}x+2024_T${(i % 3) + 1}`;
  const block = hexId(32);
  const state = JSON.stringify({
    seed: 1 + (i % 20),
    input_state: { [`${block}_2_1`]: {} },
    correct_map: {
      [`${block}_2_1`]: { correctness: "correct", npoints: null, msg: "", hint: "", queuestate: null },
    },
    student_answers: { [`${block}_2_1`]: `choice_${i % 4}` },
    has_saved_answers: false,
    done: true,
    attempts: 1 + (i % 3),
    last_submission_time: "2024-03-01T12:34:56Z",
  });
  const graded = i % 4 !== 0;
  return [
    i + 1,
    "problem",
    `block-v1:Org${i % 7}+CS${i % 50}x+2024_T${(i % 3) + 1}+type@problem+block@${block}`,
    course,
    state,
    graded ? Math.floor(random() * 3) : null,
    graded ? 2 + (i % 2) * 0.5 : null,
    "na",
    timestamp(),
    timestamp(),
    String(100_000 + Math.floor(random() * 900_000)),
  ];
}

/**
 * The executable cron runs (scripts/build.sh), built into `dir`: benchmarks time it, not
 * `bun src/cli.ts`, whose start compiles the sources.
 */
export function buildExecutable(dir: string): string {
  const path = join(dir, "panorama");
  const build = Bun.spawnSync(["bash", join(import.meta.dir, "build.sh"), "--out", path], { stderr: "pipe" });
  if (build.exitCode !== 0)
    throw new Error(`scripts/build.sh failed: ${build.stderr.toString().slice(-2000)}`);
  return path;
}

/**
 * s3rver on a free port of 127.0.0.1, keeping `bucket` in `dataDir`: over HTTPS with `tls` (as S3
 * is reached), else plain HTTP. `stop` ends it.
 */
export function startS3rver(
  dataDir: string,
  bucket: string,
  tls: Certificate | null,
): Promise<{ port: number; stop: () => void }> {
  mkdirSync(dataDir, { recursive: true });
  const child = spawn(
    join(import.meta.dir, "..", "node_modules/.bin/s3rver"),
    [
      ...(tls ? ["--key", tls.keyFile, "--cert", tls.certFile] : []),
      ...["-d", dataDir, "-a", "127.0.0.1", "-p", "0", "--silent", "--no-vhost-buckets"],
      ...["--configure-bucket", bucket],
    ],
    // Its continuation tokens are DES, in OpenSSL 3's legacy provider: listings past a page need it.
    {
      stdio: ["ignore", "pipe", "inherit"],
      env: {
        ...process.env,
        NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ""} --openssl-legacy-provider`.trim(),
      },
    },
  );
  return new Promise((resolve, reject) => {
    let out = "";
    child.stdout.on("data", (chunk: Buffer) => {
      out += chunk.toString();
      const port = /listening on .*:(\d+)/.exec(out)?.[1];
      if (port) resolve({ port: Number(port), stop: () => child.kill() });
    });
    child.on("exit", (code) => reject(new Error(`s3rver exited (${code})`)));
  });
}

/** courseware_studentmodule's columns, as the extraction benchmarks read them */
export const STUDENTMODULE_COLUMNS =
  "id, module_type, module_id, student_id, state, grade, created, modified, max_grade, done, course_id";

/**
 * The [extract] and [[tables]] of the extraction benchmarks: courseware_studentmodule alone, as
 * text, with the openedx preset's changed_field (its unchanged probe is then COUNT/MAX, not the
 * content checksum of a table without one), by course_id when `partitioned`.
 */
export function studentmoduleTable(partitioned: boolean): string {
  const fields = STUDENTMODULE_COLUMNS.split(", ").map((n) => `{ name = "${n}", type = "varchar" }`);
  return `[extract]
preset = "none"
[[tables]]
name = "courseware_studentmodule"
changed_field = "modified"
${partitioned ? 'partition_fields = ["course_id"]' : ""}
fields = [${fields.join(", ")}]
`;
}
