// Argument sets shared by the commands, and the set-up every command does first.
import { type Job, modeAllows } from "../config/modes.ts";
import { closest, type Raw } from "../config/reader.ts";
import { secretsOf } from "../config/secrets.ts";
import type { Config } from "../config/types.ts";
import { ConfigError, UsageError } from "../errors.ts";
import { addSecrets, LEVELS, type Level, log, setupLogging } from "../log.ts";
import { setLoadedStateDir } from "../state/state-dir.ts";

export const globalArgs = {
  config: {
    type: "string",
    description:
      "configuration file (default: $PANORAMA_CONFIG, ./panorama.toml, /etc/panorama/panorama.toml)",
    valueHint: "FILE",
  },
  "log-level": { type: "string", description: "debug, info, warn or error", valueHint: "LEVEL" },
  json: {
    type: "boolean",
    description: "one JSON object per log line on stderr (default when stderr is not a TTY)",
  },
} as const;

export const tablesArgs = {
  tables: { type: "string", description: "only these tables (comma-separated)", valueHint: "a,b" },
} as const;

export const dryRunArgs = {
  "dry-run": { type: "boolean", description: "do every read, print what would be written, write nothing" },
} as const;

export interface GlobalOptions {
  config?: string | undefined;
  "log-level"?: string | undefined;
  json?: boolean | undefined;
}

/** Global options given before the command name (`panorama --json run`); the command's own win. */
let early: GlobalOptions = {};
export function setEarlyGlobals(options: GlobalOptions): void {
  early = options;
}

/** The global options in effect, wherever they were given on the command line. */
export function globalsOf(args: GlobalOptions): GlobalOptions {
  return {
    config: args.config ?? early.config,
    "log-level": args["log-level"] ?? early["log-level"],
    json: args.json || early.json,
  };
}

export function startLogging(args: GlobalOptions): void {
  const { "log-level": level, json } = globalsOf(args);
  if (level !== undefined && !(LEVELS as readonly string[]).includes(level)) {
    throw new UsageError(`--log-level: expected one of ${LEVELS.join(", ")}, got "${level}"`);
  }
  setupLogging({ level: level as Level | undefined, json });
}

/**
 * Logging set up, configuration loaded and validated, its warnings said, its secrets registered.
 * A bad [schedule] entry is an error only where it is `strictSchedule` (crontab): elsewhere a
 * warning, so that a typo there never stops the jobs already installed (DESIGN §3).
 */
export async function prepare(
  args: GlobalOptions,
  options: { strictSchedule?: boolean } = {},
): Promise<Config> {
  return (await prepareLoaded(args, options)).config;
}

/** prepare(), with the file as parsed (environment overrides applied) beside the configuration. */
export async function prepareLoaded(
  args: GlobalOptions,
  options: { strictSchedule?: boolean } = {},
): Promise<{ config: Config; raw: Raw }> {
  startLogging(args);
  // Loaded when a command runs: `--help` and the usage errors never build the schema.
  const { loadConfig } = await import("../config/load.ts");
  const { config, warnings, raw } = await loadConfig({ configPath: globalsOf(args).config });
  addSecrets(secretsOf(config));
  setLoadedStateDir(config.state_dir);
  const problems = config.schedule.problems;
  if (options.strictSchedule && problems.length > 0) {
    throw new ConfigError(
      problems.join("\n"),
      "fix [schedule] in the configuration, then run `panorama crontab` again",
    );
  }
  for (const warning of warnings) log.warn(warning);
  for (const problem of problems) {
    log.warn(`${problem}; its default is used here, and \`panorama crontab\` refuses it until it is fixed`);
  }
  return { config, raw };
}

/** The names of a comma-separated list such as --tables, blanks left out. */
export function splitNames(list: string | undefined): string[] {
  return (list ?? "")
    .split(",")
    .map((n) => n.trim())
    .filter(Boolean);
}

/** The configured tables, or those named by --tables (each must be configured). */
export function selectTables(config: Config, list: string | undefined): Config["tables"] {
  if (list === undefined || list.trim() === "") return config.tables;
  return selectNamedTables(config, splitNames(list));
}

/** The configured tables named in `names`; a name that is not configured is a usage error. */
export function selectNamedTables(config: Config, names: string[]): Config["tables"] {
  const known = config.tables.map((t) => t.name);
  for (const name of names) {
    if (known.includes(name)) continue;
    const suggestion = closest(name, known);
    throw new UsageError(
      `--tables: "${name}" is not a configured table${suggestion ? ` (did you mean "${suggestion}"?)` : ""}`,
      "the configured tables are the preset's, filtered by [extract] include/exclude, plus [[tables]]",
    );
  }
  return config.tables.filter((t) => names.includes(t.name));
}

/**
 * prepare(), then ask the mode whether `job` may run: the configuration when it may, null (after
 * saying why) when the mode forbids it — the command then exits 0, as DESIGN §1 wants.
 */
export async function prepareFor(args: GlobalOptions, job: Job): Promise<Config | null> {
  const config = await prepare(args);
  const gate = modeAllows(config.mode, job);
  if (gate.allowed) return config;
  log.info(gate.reason);
  return null;
}
