// `panorama doctor`: every connection and permission the jobs need, tried for real, one line each
// with a fix when it fails. Checks run in order and never stop each other: an operator fixing a
// new host sees everything that is wrong in one go.
import { closeSync, mkdirSync, openSync, readSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { loadConfig } from "./config/load.ts";
import { modeAllows } from "./config/modes.ts";
import type { Config } from "./config/types.ts";
import { messageOf, PanoramaError } from "./errors.ts";
import { close, connect, ident, query } from "./extract/mysql.ts";
import { resolveLogPaths } from "./logship/tail.ts";

export interface CheckResult {
  check: string;
  ok: boolean;
  /** what was found (ok) or what went wrong (not ok) */
  detail: string;
  /** how to fix it; only when not ok */
  hint?: string | undefined;
}

export interface DoctorOptions {
  configPath?: string | undefined;
  env?: Record<string, string | undefined>;
  /** extra checks that need services (AWS, MongoDB); given by the command, replaced in tests */
  serviceChecks?: (config: Config) => AsyncIterable<CheckResult>;
}

function passed(check: string, detail: string): CheckResult {
  return { check, ok: true, detail };
}

export function failed(check: string, error: unknown, hint?: string): CheckResult {
  const ownHint = error instanceof PanoramaError ? error.hint : undefined;
  return { check, ok: false, detail: messageOf(error), hint: ownHint ?? hint };
}

/** Runs every check; the configuration first, since every other check needs it. */
export async function* runChecks(options: DoctorOptions = {}): AsyncGenerator<CheckResult> {
  let config: Config;
  let warnings: string[];
  try {
    ({ config, warnings } = await loadConfig({ configPath: options.configPath, env: options.env }));
  } catch (error) {
    yield failed("configuration", error, "fix the configuration; nothing else can be checked before");
    return;
  }
  yield passed(
    "configuration",
    `${config.mode} mode, ${config.tables.length} table(s), lms ${config.lms_host}`,
  );

  const permissions = warnings.filter((w) => w.includes("readable by group or others"));
  yield permissions.length === 0
    ? passed("file permissions", "no secret readable by group or others")
    : {
        check: "file permissions",
        ok: false,
        detail: permissions.join("; "),
        hint: "chmod 600 the file(s) named",
      };

  yield checkWritable(
    "state directory",
    config.state_dir,
    "make state_dir writable by the user cron runs as",
  );
  if (config.mode === "DEMO") return;
  if (config.datalake.target === "local") {
    yield checkWritable(
      "local datalake",
      config.datalake.path,
      'make datalake.path writable, or use target = "s3"',
    );
  }
  yield* checkMysql(config);
  if (modeAllows(config.mode, "log-ship").allowed) yield checkLogs(config);
  if (options.serviceChecks) yield* options.serviceChecks(config);
}

function checkWritable(check: string, dir: string, hint: string): CheckResult {
  const probe = join(dir, `.panorama-doctor-${process.pid}`);
  try {
    mkdirSync(dir, { recursive: true });
    writeFileSync(probe, "");
    rmSync(probe);
    return passed(check, `${dir} is writable`);
  } catch (error) {
    return failed(
      check,
      new PanoramaError(`${dir}: ${(error as NodeJS.ErrnoException).code ?? messageOf(error)}`),
      hint,
    );
  }
}

/** Connects, then reads zero rows of every configured field of every MySQL table: grants and columns both. */
async function* checkMysql(config: Config): AsyncGenerator<CheckResult> {
  let connection: Awaited<ReturnType<typeof connect>>;
  try {
    connection = await connect(config.mysql);
  } catch (error) {
    yield failed("MySQL connection", error);
    return;
  }
  try {
    const version = await query<{ v: string }>(connection, "SELECT VERSION() AS v");
    yield passed(
      "MySQL connection",
      `${config.mysql.user}@${config.mysql.socket || `${config.mysql.host}:${config.mysql.port}`}/${config.mysql.database}, server ${version[0]?.v ?? "?"}`,
    );
    const tables = config.tables
      .filter((t) => t.source === "mysql")
      .map((t) => ({
        name: t.name,
        fields: t.fields?.map((f) => f.name) ?? null,
      }));
    const courseIndex =
      config.tables.some((t) => t.source === "course_structures") && config.mongodb.use_split_mongo;
    if (courseIndex)
      tables.push({
        name: "split_modulestore_django_splitmodulestorecourseindex",
        fields: ["course_id", "published_version"],
      });
    const denied: string[] = [];
    for (const table of tables) {
      const columns = table.fields ? table.fields.map(ident).join(", ") : "*";
      try {
        await query(connection, `SELECT ${columns} FROM ${ident(table.name)} LIMIT 0`);
      } catch (error) {
        const e = error as { code?: string; sqlMessage?: string };
        denied.push(`${table.name} (${e.code ?? "error"}: ${e.sqlMessage ?? messageOf(error)})`);
      }
    }
    yield denied.length === 0
      ? passed("MySQL SELECT", `allowed on all ${tables.length} table(s)`)
      : {
          check: "MySQL SELECT",
          ok: false,
          detail: `${denied.length} of ${tables.length} table(s) cannot be read: ${denied.join("; ")}`,
          hint: `GRANT SELECT ON ${config.mysql.database}.* TO '${config.mysql.user}'; a missing table or column: \`panorama schema pull\` shows the real ones, [extract] exclude leaves a table out`,
        };
  } finally {
    await close(connection);
  }
}

function checkLogs(config: Config): CheckResult {
  const files = resolveLogPaths(config.logs);
  if (files.length === 0) {
    return {
      check: "tracking logs",
      ok: false,
      detail: `no file matches logs.paths (${config.logs.paths.join(", ")})`,
      hint: "set logs.paths to the LMS tracking log (Tutor: /openedx/data/logs/tracking.log in the lms container's volume)",
    };
  }
  const unreadable: string[] = [];
  for (const file of files) {
    try {
      // Opened and read, not access(2): that is what log-ship does, and root passes access(2) anyway.
      const fd = openSync(file, "r");
      try {
        readSync(fd, new Uint8Array(1), 0, 1, 0);
      } finally {
        closeSync(fd);
      }
    } catch (error) {
      unreadable.push(`${file} (${(error as NodeJS.ErrnoException).code ?? messageOf(error)})`);
    }
  }
  return unreadable.length === 0
    ? passed("tracking logs", `${files.length} file(s) readable`)
    : {
        check: "tracking logs",
        ok: false,
        detail: `cannot read ${unreadable.join(", ")}`,
        hint: "run panorama as a user that can read the logs (e.g. add it to the group owning them)",
      };
}

/** One line per check for people: ✓/✗, then the hint indented below a failure. */
export function formatCheck(result: CheckResult): string {
  const line = `${result.ok ? "✓" : "✗"} ${result.check}: ${result.detail}\n`;
  return result.ok || !result.hint ? line : `${line}    → ${result.hint}\n`;
}
