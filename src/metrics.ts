// `[metrics] textfile` (DESIGN §12): Prometheus text exposition for node_exporter's textfile
// collector, written after `run`, `verify` and `log-ship`. Each command gives its own metric
// families; those of the other commands are kept from their last write (state_dir/metrics.json),
// so the one file holds them all. The file is replaced by an atomic rename: the collector never
// reads half of it.
import { chmodSync, closeSync, mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import type { Config } from "./config/types.ts";
import type { TableUploads } from "./datalake/upload.ts";
import { messageOf } from "./errors.ts";
import type { TableSummary } from "./extract/events.ts";
import { log } from "./log.ts";
import type { LogShipFileStatus } from "./logship/checkpoint.ts";
import { atomicWrite, openOwnFile, readJson, writeJsonAtomic } from "./state/atomic.ts";
import { flock, LOCK_EX } from "./state/libc.ts";

type MetricsCommand = "run" | "verify" | "log-ship";

export interface Sample {
  labels?: Record<string, string>;
  value: number;
}

export interface Family {
  /** panorama_… */
  name: string;
  help: string;
  type: "gauge" | "counter";
  samples: Sample[];
}

/** What a command did, for the families every command has. */
export interface CommandFigures {
  exitCode: number;
  seconds: number;
  /** when it ended (default: now) */
  time?: Date;
}

type Stored = Partial<Record<MetricsCommand, Family[]>>;

/** Label values escaped as the exposition format wants: backslash, double quote, line feed. */
function labelValue(value: string): string {
  return value.replaceAll("\\", "\\\\").replaceAll('"', '\\"').replaceAll("\n", "\\n");
}

function formatValue(value: number): string {
  if (Number.isNaN(value)) return "NaN";
  if (value === Number.POSITIVE_INFINITY) return "+Inf";
  if (value === Number.NEGATIVE_INFINITY) return "-Inf";
  return String(value);
}

/** The families in exposition format: HELP and TYPE once per family, its samples together. */
export function renderExposition(families: Family[]): string {
  const merged = new Map<string, Family>();
  for (const family of families) {
    const seen = merged.get(family.name);
    if (seen) seen.samples.push(...family.samples);
    else merged.set(family.name, { ...family, samples: [...family.samples] });
  }
  const lines: string[] = [];
  for (const family of [...merged.values()].sort((a, b) => a.name.localeCompare(b.name))) {
    lines.push(`# HELP ${family.name} ${family.help.replaceAll("\\", "\\\\").replaceAll("\n", "\\n")}`);
    lines.push(`# TYPE ${family.name} ${family.type}`);
    for (const sample of family.samples) {
      const labels = Object.entries(sample.labels ?? {});
      const set =
        labels.length === 0 ? "" : `{${labels.map(([k, v]) => `${k}="${labelValue(v)}"`).join(",")}}`;
      lines.push(`${family.name}${set} ${formatValue(sample.value)}`);
    }
  }
  return `${lines.join("\n")}\n`;
}

const seconds = (time: Date) => Math.round(time.getTime() / 1000);

/** The families every command writes, labelled with the command. */
export function commandFamilies(command: MetricsCommand, figures: CommandFigures): Family[] {
  const labels = { command };
  return [
    {
      name: "panorama_last_exit_code",
      help: "Exit code of the last run of the command (0 ok, 1 failed, 2 configuration, 3 locked).",
      type: "gauge",
      samples: [{ labels, value: figures.exitCode }],
    },
    {
      name: "panorama_last_duration_seconds",
      help: "Duration of the last run of the command.",
      type: "gauge",
      samples: [{ labels, value: figures.seconds }],
    },
    {
      name: "panorama_last_run_timestamp_seconds",
      help: "When the last run of the command ended (Unix time).",
      type: "gauge",
      samples: [{ labels, value: seconds(figures.time ?? new Date()) }],
    },
  ];
}

function gauge(name: string, help: string, samples: Sample[]): Family {
  return { name, help, type: "gauge", samples };
}

/**
 * Per table: the time of the last success (kept from the previous write for a table that failed
 * now), and the rows, bytes, objects, seconds and error flag of this run.
 */
export function tableFamilies(
  summaries: TableSummary[],
  uploads: ReadonlyMap<string, TableUploads>,
  previous: Family[],
  now = new Date(),
): Family[] {
  const lastSuccess = new Map(
    (previous.find((f) => f.name === "panorama_table_last_success_timestamp_seconds")?.samples ?? []).map(
      (s) => [s.labels?.table ?? "", s.value],
    ),
  );
  // A run of some tables (`run --tables`) leaves the other tables' figures as they were.
  const ran = new Set(summaries.map((s) => s.table));
  const kept = (name: string): Sample[] =>
    (previous.find((f) => f.name === name)?.samples ?? []).filter((s) => !ran.has(s.labels?.table ?? ""));
  const byTable = (a: Sample, b: Sample) => (a.labels?.table ?? "").localeCompare(b.labels?.table ?? "");
  const per = (name: string, value: (s: TableSummary) => number): Sample[] =>
    [...kept(name), ...summaries.map((s) => ({ labels: { table: s.table }, value: value(s) }))].sort(byTable);
  const successes = [
    ...kept("panorama_table_last_success_timestamp_seconds"),
    ...summaries.flatMap((s) => {
      const value = s.error === null ? seconds(now) : lastSuccess.get(s.table);
      return value === undefined ? [] : [{ labels: { table: s.table }, value }];
    }),
  ].sort(byTable);
  return [
    gauge(
      "panorama_table_last_success_timestamp_seconds",
      "When the table was last extracted and stored without error (Unix time).",
      successes,
    ),
    gauge(
      "panorama_table_rows",
      "Rows extracted from the table by the last run.",
      per("panorama_table_rows", (s) => s.rows),
    ),
    gauge(
      "panorama_table_bytes",
      "Bytes stored for the table by the last run.",
      per("panorama_table_bytes", (s) => uploads.get(s.table)?.bytes ?? 0),
    ),
    gauge(
      "panorama_table_objects",
      "Objects stored for the table by the last run (unchanged ones not sent again are not counted).",
      per("panorama_table_objects", (s) => uploads.get(s.table)?.objects ?? 0),
    ),
    gauge(
      "panorama_table_seconds",
      "Seconds the last run spent extracting the table.",
      per("panorama_table_seconds", (s) => s.seconds),
    ),
    gauge(
      "panorama_table_error",
      "1 when the last run of the table failed, else 0.",
      per("panorama_table_error", (s) => (s.error === null ? 0 : 1)),
    ),
  ];
}

/** Per tracking-log file: the bytes not shipped yet and the time of its last upload. */
export function logFileFamilies(files: LogShipFileStatus[]): Family[] {
  return [
    gauge(
      "panorama_log_unshipped_bytes",
      "Bytes of the tracking-log file not shipped yet.",
      files.map((f) => ({ labels: { file: f.path }, value: f.unshipped })),
    ),
    gauge(
      "panorama_log_last_upload_timestamp_seconds",
      "When events of the tracking-log file were last uploaded (Unix time).",
      files.flatMap((f) =>
        f.last_upload ? [{ labels: { file: f.path }, value: seconds(new Date(f.last_upload)) }] : [],
      ),
    ),
  ];
}

function storePath(config: Config): string {
  return join(config.state_dir, "metrics.json");
}

/**
 * `dir` and the directories above it that do not exist yet, made 0755 whatever the umask (not
 * private, as atomicWrite makes them for the state): node_exporter must be able to enter them.
 */
function makePublicDirectory(dir: string): void {
  const first = mkdirSync(dir, { recursive: true, mode: 0o755 });
  if (first === undefined) return;
  for (let made = dir; ; made = dirname(made)) {
    chmodSync(made, 0o755);
    if (made === first) return;
  }
}

/**
 * Replace `command`'s families in the textfile, keeping the other commands'. Serialised by a
 * lock in state_dir (run and log-ship may end at the same moment); `families` may be computed
 * from what `command` wrote last time, read under that lock. Does nothing when
 * `[metrics] textfile` is empty; a failure is a warning, never the job's failure.
 */
export function writeMetrics(
  config: Config,
  command: MetricsCommand,
  families: Family[] | ((previous: Family[]) => Family[]),
): void {
  const textfile = config.metrics.textfile;
  if (!textfile) return;
  let fd: number | null = null;
  try {
    fd = openOwnFile(join(config.state_dir, "metrics.lock"), "a+");
    flock(fd, LOCK_EX);
    const stored = readJson<Stored>(storePath(config), {});
    stored[command] = typeof families === "function" ? families(stored[command] ?? []) : families;
    writeJsonAtomic(storePath(config), stored);
    // Read by node_exporter, which runs as another user: figures and table names, no learner data.
    makePublicDirectory(dirname(textfile));
    atomicWrite(textfile, renderExposition(Object.values(stored).flat()), 0o644);
  } catch (error) {
    log.warn(`could not write the metrics to ${textfile}: ${messageOf(error)}`);
  } finally {
    if (fd !== null) closeSync(fd);
  }
}

/** After `run` (or a job like it): the command's figures and, when it got that far, its tables'. */
export function writeRunMetrics(
  config: Config,
  figures: CommandFigures,
  tables?: { summaries: TableSummary[]; uploads: ReadonlyMap<string, TableUploads> },
): void {
  writeMetrics(config, "run", (previous) => [
    ...commandFamilies("run", figures),
    ...(tables
      ? tableFamilies(tables.summaries, tables.uploads, previous, figures.time)
      : previous.filter((f) => f.name.startsWith("panorama_table_"))),
  ]);
}

/** After `verify`: the command's figures and, per table, the differences left and whether it was checked. */
export function writeVerifyMetrics(
  config: Config,
  figures: CommandFigures,
  tables?: { table: string; differences: number; error: boolean }[],
): void {
  const perTable = (previous: Family[]) =>
    tables
      ? [
          gauge(
            "panorama_verify_differences",
            "Differences between MySQL and the datalake that the last verify left (after --repair: what it could not repair).",
            tables.map((t) => ({ labels: { table: t.table }, value: t.differences })),
          ),
          gauge(
            "panorama_verify_error",
            "1 when the last verify could not check the table (MySQL or the datalake failed), else 0.",
            tables.map((t) => ({ labels: { table: t.table }, value: t.error ? 1 : 0 })),
          ),
        ]
      : previous.filter((f) => f.name.startsWith("panorama_verify_"));
  writeMetrics(config, "verify", (previous) => [
    ...commandFamilies("verify", figures),
    ...perTable(previous),
  ]);
}
