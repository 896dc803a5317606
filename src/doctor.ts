// `panorama doctor`: every connection and permission the jobs need, tried for real, one line each
// with a fix when it fails. Checks run in order and never stop each other: an operator fixing a
// new host sees everything that is wrong in one go.
import { accessSync, closeSync, constants, existsSync, openSync, readSync, rmSync, statSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { Athena, AthenaError } from "./aws/athena.ts";
import { AwsClient, AwsError } from "./aws/client.ts";
import { Glue, GlueError } from "./aws/glue.ts";
import { S3Client } from "./aws/s3.ts";
import { compareRawTables } from "./catalog/preflight.ts";
import { loadConfig } from "./config/load.ts";
import { modeAllows, usesAthena } from "./config/modes.ts";
import { FORBIDDEN_FIELDS } from "./config/presets.ts";
import { maskAccessKey, secretsOf } from "./config/secrets.ts";
import { requiredFields } from "./config/tables.ts";
import type { Config } from "./config/types.ts";
import { messageOf, PanoramaError, withoutHint } from "./errors.ts";
import {
  COURSE_INDEX_IN_MONGODB,
  COURSE_INDEX_TABLE,
  USE_MONGODB_COURSE_INDEX,
} from "./extract/course-structure-fields.ts";
import { connectMongo, mongodbError } from "./extract/mongodb.ts";
import {
  close,
  connect,
  describeTarget,
  granteeOf,
  hiddenFromUser,
  ident,
  notTheLmsDatabase,
  query,
  similarTable,
  tableColumns,
  unnamableColumns,
} from "./extract/mysql.ts";
import { addSecrets } from "./log.ts";
import { resolveLogPaths, whyNoMatch } from "./logship/tail.ts";
import { KEY_WARNING } from "./privacy/pseudonym.ts";
import { pseudonymsLine, pseudonymsStatus } from "./privacy/report.ts";
import { CONNECTION_TEST_KEY } from "./setup/iam-policy.ts";
import { openOwnFile } from "./state/atomic.ts";

/** Where a Tutor host keeps the LMS tracking log (the container's /openedx/data/logs). */
const TUTOR_TRACKING_LOG = "$(tutor config printroot)/data/lms/logs/tracking.log";

/** SigV4 refuses requests more than 15 minutes off; warn well before. */
const MAX_CLOCK_SKEW_MS = 5 * 60_000;

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
  /** AWS client options (tests: fewer retries); by default each check is bounded by AWS_BOUND */
  aws?: ConstructorParameters<typeof AwsClient>[1];
  /** told the name of each check as it starts (the command shows it while it runs) */
  onStart?: (check: string) => void;
}

/**
 * Each AWS check gives up after two attempts of 8 s at most: an unreachable endpoint is said in
 * seconds, not after the jobs' patient retries. (MySQL gives up connecting after 15 s, MongoDB's
 * server selection after its own timeout, the clock check after 8 s.)
 */
const AWS_BOUND = { timeoutMs: 8_000, retry: { attempts: 2, baseMs: 200, maxMs: 500 } };

function passed(check: string, detail: string): CheckResult {
  return { check, ok: true, detail };
}

function failed(check: string, error: unknown, hint?: string): CheckResult {
  const ownHint = error instanceof PanoramaError ? error.hint : undefined;
  const fix = ownHint ?? hint;
  return { check, ok: false, detail: withoutHint(messageOf(error), fix), hint: fix };
}

/** The AWS client's failure behind `error`: its own, or the one a Glue or Athena error wraps. */
function awsErrorOf(error: unknown): AwsError | null {
  if (error instanceof AwsError) return error;
  if (error instanceof GlueError || error instanceof AthenaError) return error.aws;
  return null;
}

interface AwsFixes {
  /** the service, for the person reading: "S3", "Glue", "Athena" */
  service: string;
  /** the config key of its endpoint */
  endpointKey: "datalake.endpoint" | "datalake.glue_endpoint" | "datalake.athena_endpoint";
  /** the permission the check needs, said only when AWS refused it */
  denied?: string;
  /** for an error answer that brings no fix of its own */
  otherwise?: string;
}

/**
 * A failed AWS check, with the fix of what actually happened: a permission only when AWS refused
 * one, the network and the endpoint when nothing answered, a later try when AWS answered with
 * an error of its own (5xx).
 */
function failedAws(check: string, error: unknown, fixes: AwsFixes): CheckResult {
  const own = error instanceof PanoramaError ? error.hint : undefined;
  const detail = withoutHint(messageOf(error), own);
  const kind = awsErrorOf(error)?.kind ?? "other";
  const { service, endpointKey } = fixes;
  const fix = {
    denied: fixes.denied ?? own,
    unreachable: `${service} could not be reached: check ${endpointKey} (when empty, the AWS endpoint of datalake.region) and the network path to that address (proxy, firewall, DNS)`,
    server: `${service} answered with an error of its own, not a refusal: run doctor again later; if it lasts, check ${endpointKey} (when set) and the service's health`,
    other: own ?? fixes.otherwise,
  }[kind];
  return { check, ok: false, detail, hint: fix };
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
  // Registered before any check can quote an error holding one (the command redacts each line).
  addSecrets(secretsOf(config));
  yield passed(
    "configuration",
    `${config.mode} mode, ${config.tables.length} table(s), lms ${config.lms_host}`,
  );

  // The key file's permissions are the pseudonyms check's.
  const permissions = warnings.filter(
    (w) => w.includes("readable by group or others") && !w.includes(config.privacy.key_file),
  );
  yield permissions.length === 0
    ? passed("file permissions", "no secret readable by group or others")
    : {
        check: "file permissions",
        ok: false,
        detail: permissions.join("; "),
        hint: "chmod 600 the file(s) named",
      };

  const start = (check: string) => options.onStart?.(check);
  start("pseudonyms");
  yield checkPseudonyms(config, warnings);
  start("state directory");
  yield checkWritable(
    "state directory",
    config.state_dir,
    "state_dir",
    "make state_dir writable by the user cron runs as",
  );
  if (config.mode === "DEMO") {
    // Passing would tell a new user all is well while nothing will ever be extracted.
    yield {
      check: "mode",
      ok: false,
      detail: "DEMO: nothing is extracted or shipped until mode is set; MySQL, MongoDB and S3 were not tried",
      hint: `set mode = "FREE", "SAAS" or "CUSTOM" in ${config.file ?? "the configuration"} (or PANORAMA_MODE), then run doctor again`,
    };
    return;
  }
  if (config.datalake.target === "local") {
    start("local datalake");
    yield checkWritable(
      "local datalake",
      config.datalake.path,
      "datalake.path",
      'make datalake.path writable, or use target = "s3"',
    );
  }
  start("MySQL");
  yield* checkMysql(config);
  if (modeAllows(config.mode, "log-ship").allowed) {
    start("tracking logs");
    yield checkLogs(config);
  }
  if (
    config.tables.some((t) => t.source === "course_structures") &&
    modeAllows(config.mode, "course-structures").allowed
  ) {
    start("MongoDB");
    yield* checkMongodb(config);
  }
  if (config.datalake.target === "s3") yield* checkAws(config, options);
}

/**
 * Pseudonyms on or off; when on, the key file (a missing or short key already failed the
 * configuration check, with how to make one) must be readable by its owner only.
 */
function checkPseudonyms(config: Config, warnings: string[]): CheckResult {
  const status = pseudonymsStatus(config);
  if (!status.on) return passed("pseudonyms", pseudonymsLine(status).replace("pseudonyms: ", ""));
  const exposed = warnings.find((w) => w.includes(config.privacy.key_file));
  if (exposed) {
    return {
      check: "pseudonyms",
      ok: false,
      detail: exposed,
      hint: `chmod 600 ${config.privacy.key_file}; ${KEY_WARNING}`,
    };
  }
  const bytes = config.privacy.key?.length ?? 0;
  return passed(
    "pseudonyms",
    `${pseudonymsLine(status).replace("pseudonyms: ", "")}; the key holds ${bytes} bytes, readable by its owner only`,
  );
}

async function* checkMongodb(config: Config): AsyncGenerator<CheckResult> {
  let connection: Awaited<ReturnType<typeof connectMongo>>;
  try {
    connection = await connectMongo(config.mongodb);
  } catch (error) {
    yield failed("MongoDB", error);
    return;
  }
  try {
    const collections = ["modulestore.structures", "modulestore.definitions"];
    if (!config.mongodb.use_split_mongo) collections.push("modulestore.active_versions");
    let anyStructure = false;
    for (const name of collections) {
      const found = await connection.db.collection(name).findOne({}, { projection: { _id: 1 } });
      if (name === "modulestore.structures" && found !== null) anyStructure = true;
    }
    const readable = `${connection.target.description}: ${collections.join(", ")} readable`;
    if (anyStructure) {
      yield passed("MongoDB", readable);
      return;
    }
    // Not one structure: an LMS without a course yet, or a database that is not the modulestore's
    // (every run would then fail course_structures). The course index in MySQL tells them apart.
    const published = await publishedCourses(config);
    const database = connection.db.databaseName;
    if (published !== null && published > 0) {
      yield {
        check: "MongoDB",
        ok: false,
        detail: `${connection.target.description}: modulestore.structures is empty, but MySQL ${COURSE_INDEX_TABLE} lists ${published} published course(s)`,
        hint: `check [mongodb] database (or the database of uri; "${database}" now): the modulestore's, "openedx" on Tutor, "edxapp" by default`,
      };
      return;
    }
    yield passed(
      "MongoDB",
      `${readable}; no course structure in "${database}" yet (if the LMS has courses, [mongodb] database is not the modulestore's: Tutor's is "openedx")`,
    );
  } catch (error) {
    // mongodbError gives the read role as the fix of a refusal only (Unauthorized), the network's
    // of a connection lost, none of other errors.
    yield failed("MongoDB", mongodbError(error, config.mongodb, "cannot read the modulestore"));
  } finally {
    await connection.client.close().catch(() => {});
  }
}

/**
 * The published courses of the MySQL course index (use_split_mongo); null when there is no such
 * index or it cannot be read (the MySQL check says why).
 */
async function publishedCourses(config: Config): Promise<number | null> {
  if (!config.mongodb.use_split_mongo) return null;
  let connection: Awaited<ReturnType<typeof connect>> | null = null;
  try {
    connection = await connect(config.mysql);
    const rows = await query<{ n: number | string }>(
      connection,
      `SELECT COUNT(*) AS n FROM ${COURSE_INDEX_TABLE} WHERE course_id LIKE 'course-v1:%' AND published_version <> ''`,
    );
    return Number(rows[0]?.n ?? 0);
  } catch {
    return null;
  } finally {
    if (connection) await close(connection);
  }
}

const S3_FIXES = { service: "S3", endpointKey: "datalake.endpoint" } as const;
const GLUE_FIXES = { service: "Glue", endpointKey: "datalake.glue_endpoint" } as const;

async function* checkAws(config: Config, options: DoctorOptions): AsyncGenerator<CheckResult> {
  const client = new AwsClient(config, options.aws ?? AWS_BOUND);
  const s3 = new S3Client(client, config);
  const start = (check: string) => options.onStart?.(check);
  start("clock");
  yield await checkClock(s3.url(config.datalake.bucket, ""));
  start("AWS credentials");
  try {
    const credentials = await client.credentials.get();
    yield passed(
      "AWS credentials",
      `${client.credentials.source}, key ${maskAccessKey(credentials.accessKeyId)}`,
    );
  } catch (error) {
    yield failed("AWS credentials", error);
    return;
  }
  const bucket = config.datalake.bucket;
  start("S3 write");
  try {
    await s3.putObject(
      bucket,
      CONNECTION_TEST_KEY,
      new TextEncoder().encode(`panorama doctor ${new Date().toISOString()}\n`),
    );
    await s3.deleteObject(bucket, CONNECTION_TEST_KEY);
    yield passed("S3 write", `put and delete s3://${bucket}/${CONNECTION_TEST_KEY}`);
  } catch (error) {
    yield failedAws("S3 write", error, {
      ...S3_FIXES,
      denied: "grant s3:PutObject and s3:DeleteObject on the bucket's objects (see `panorama iam-policy`)",
    });
  }
  // verify and the deletions of full reads list the base prefix (s3:ListBucket, DESIGN §7a).
  const prefix = `${config.datalake.base_prefix}/`;
  try {
    await s3.listObjects(bucket, prefix, 1);
    yield passed("S3 list", `list s3://${bucket}/${prefix} (verify, deletions)`);
  } catch (error) {
    yield failedAws("S3 list", error, {
      ...S3_FIXES,
      denied: "grant s3:ListBucket on the bucket with the s3:prefix condition of `panorama iam-policy`",
    });
  }
  if (!modeAllows(config.mode, "catalog-partitions").allowed) return;
  const glue = new Glue(client, config.datalake.database);
  start("Glue database");
  try {
    await glue.getDatabase();
    yield passed("Glue database", `${config.datalake.database} exists`);
    yield await checkRawTables(config, glue);
  } catch (error) {
    yield failedAws("Glue database", error, GLUE_FIXES);
  }
  if (!usesAthena(config.mode)) return;
  const athena = new Athena(client, config.datalake.workgroup, config.datalake.database, {
    timeoutMs: 60_000,
  });
  start("Athena workgroup");
  try {
    const id = await athena.run("SELECT 1", "doctor's test query");
    yield passed("Athena workgroup", `${config.datalake.workgroup} ran SELECT 1 (query ${id})`);
  } catch (error) {
    yield failedAws("Athena workgroup", error, {
      service: "Athena",
      endpointKey: "datalake.athena_endpoint",
      otherwise: "check datalake.workgroup and that its query result location is set",
    });
  }
}

/** Existing raw tables against the layout, as run compares them before writing (DESIGN §6). */
async function checkRawTables(config: Config, glue: Glue): Promise<CheckResult> {
  const check = "raw tables";
  try {
    const result = await compareRawTables(config, config.tables, glue);
    const toCreate =
      result.missing.length === 0
        ? ""
        : modeAllows(config.mode, "catalog-create").allowed
          ? " (`panorama catalog` creates them)"
          : " (the datalake's provider creates them)";
    const counts = `${result.aligned.length} line up with the layout, ${result.missing.length} not created yet${toCreate}`;
    const unknown = [...result.unknown].map(([table, why]) => `${table} (layout unknown: ${why})`);
    if (result.misaligned.size === 0) {
      return unknown.length === 0
        ? passed(check, counts)
        : {
            check,
            ok: false,
            detail: `${counts}; not compared: ${unknown.join("; ")}`,
            hint: "make MySQL reachable, or list the table's fields in [[tables]]",
          };
    }
    const errors = [...result.misaligned.values()];
    return {
      check,
      ok: false,
      detail: `${errors.length} of ${config.tables.length} would be read into the wrong columns: ${errors.map((e) => e.message).join(" | ")}`,
      hint: errors.map((e) => e.hint).join(" | "),
    };
  } catch (error) {
    return failedAws(check, error, {
      ...GLUE_FIXES,
      denied: "compare the role's policy with `panorama iam-policy` (glue:GetTable)",
    });
  }
}

/** The S3 endpoint's Date header against the local clock: SigV4 fails beyond 15 minutes of skew. */
async function checkClock(url: string): Promise<CheckResult> {
  let serverDate: string | null;
  const before = Date.now();
  try {
    const res = await fetch(url, { method: "HEAD", signal: AbortSignal.timeout(8_000) });
    serverDate = res.headers.get("date");
  } catch (error) {
    return failed(
      "clock",
      new PanoramaError(`cannot reach ${new URL(url).origin}: ${messageOf(error)}`),
      "check the network path to S3 (proxy, firewall, DNS)",
    );
  }
  const local = (before + Date.now()) / 2;
  const server = serverDate ? Date.parse(serverDate) : Number.NaN;
  if (Number.isNaN(server))
    return failed("clock", new PanoramaError(`${new URL(url).origin} sent no Date header`));
  const skew = Math.round((local - server) / 1000);
  const detail = `local clock ${Math.abs(skew)} s ${skew >= 0 ? "ahead of" : "behind"} ${new URL(url).host}`;
  if (Math.abs(skew) * 1000 <= MAX_CLOCK_SKEW_MS) return passed("clock", detail);
  return {
    check: "clock",
    ok: false,
    detail,
    hint: "AWS refuses signatures more than 15 minutes off: synchronise the clock (timedatectl set-ntp true, or chrony)",
  };
}

/**
 * `dir` (the value of config key `key`) can take a file; `permission` is the fix of a refusal.
 * The probe is a new file, never opened through a link: its name is foreseeable, and a link
 * planted under it would make doctor, often run as root, truncate the file it names.
 */
export function checkWritable(check: string, dir: string, key: string, permission: string): CheckResult {
  const probe = join(dir, `.panorama-doctor-${process.pid}`);
  try {
    // A check makes nothing: a directory still to be made is judged by the one it goes in.
    const parent = existingParent(dir);
    if (parent !== null) {
      if (!statSync(parent).isDirectory())
        throw Object.assign(new Error("not a directory"), { code: "ENOTDIR" });
      accessSync(parent, constants.W_OK | constants.X_OK);
      return passed(check, `${dir} does not exist yet: the first run makes it in ${parent}`);
    }
    closeSync(openOwnFile(probe, "wx"));
    rmSync(probe);
    return passed(check, `${dir} is writable`);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "EEXIST" && (error as NodeJS.ErrnoException).path === probe) {
      const detail = `${probe} is in the way: doctor did not make it (another user may have planted it as a link)`;
      return failed(check, new PanoramaError(detail), `remove it, and see who could write ${dir}`);
    }
    // A full disk or a file in the way is not fixed by permissions.
    const hint =
      code === "ENOSPC" || code === "EDQUOT"
        ? `its filesystem is full: free space there, or set ${key} to another one`
        : code === "ENOTDIR" || code === "EEXIST"
          ? `a file stands where a directory of that path should be: set ${key} to a directory`
          : code === "EROFS"
            ? `it is on a read-only filesystem: mount it writable, or set ${key} to a directory on a writable one`
            : permission;
    return failed(check, new PanoramaError(`${dir}: ${code ?? messageOf(error)}`), hint);
  }
}

/** The nearest existing ancestor of `dir` when `dir` does not exist; null when it does. */
function existingParent(dir: string): string | null {
  if (existsSync(dir)) return null;
  let parent = dirname(resolve(dir));
  while (!existsSync(parent) && parent !== dirname(parent)) parent = dirname(parent);
  return parent;
}

/**
 * Connects, then reads zero rows of every field of every MySQL table that the table has: grants
 * and columns both. A preset table or column this release lacks is said, not failed (DESIGN §10);
 * a column that is never read (auth_user.password) is not selected.
 */
async function* checkMysql(config: Config): AsyncGenerator<CheckResult> {
  const tables = config.tables
    .filter((t) => t.source === "mysql")
    .map((t) => ({
      name: t.name,
      fields: t.fields?.map((f) => f.name) ?? null,
      preset: t.preset === true,
      required: requiredFields(t),
    }));
  const courseIndex =
    config.tables.some((t) => t.source === "course_structures") && config.mongodb.use_split_mongo;
  if (courseIndex)
    tables.push({
      name: COURSE_INDEX_TABLE,
      fields: ["course_id", "published_version"],
      preset: false,
      required: [],
    });
  // A host that only ships logs never connects: a MySQL it cannot reach is no failure.
  if (tables.length === 0) {
    yield passed("MySQL connection", "not used: no table is read from MySQL");
    return;
  }
  let connection: Awaited<ReturnType<typeof connect>>;
  try {
    connection = await connect(config.mysql);
  } catch (error) {
    yield failed("MySQL connection", error);
    return;
  }
  try {
    const version = await query<{ v: string }>(connection, "SELECT VERSION() AS v");
    yield passed("MySQL connection", `${describeTarget(config.mysql)}, server ${version[0]?.v ?? "?"}`);
    const denied: string[] = [];
    const absent: string[] = [];
    const filled: string[] = [];
    /** a table or column not there: in a preset table, or in one [[tables]] configures */
    const missing = { preset: false, configured: false };
    let refused = false;
    let indexInMongodb = false;
    for (const table of tables) {
      const kind = table.preset ? "preset" : "configured";
      try {
        const existing = await tableColumns(connection, config.mysql.database, table.name);
        // information_schema hides what the user may not SELECT: that is no release's absence.
        const hidden = (columns: string[] | null) =>
          table.preset ? hiddenFromUser(connection, table.name, columns) : Promise.resolve(null);
        if (!existing && table.preset) {
          const refusal = await hidden(null);
          if (refusal) throw refusal;
          absent.push(table.name);
          continue;
        }
        const names = new Set(existing?.map((c) => c.name));
        const forbidden = FORBIDDEN_FIELDS[table.name] ?? [];
        const unnamable = table.fields || !existing ? null : unnamableColumns(table.name, existing);
        if (unnamable) {
          missing[kind] = true;
          denied.push(`${table.name} (${unnamable.message.slice(table.name.length + 2)})`);
          continue;
        }
        const wanted = (table.fields ?? existing?.map((c) => c.name) ?? []).filter(
          (f) => !forbidden.includes(f),
        );
        // Without its partition or timestamp column a table cannot be read at all, as run says.
        const required = existing ? table.required.find(([f]) => !names.has(f)) : undefined;
        if (required) {
          missing[kind] = true;
          denied.push(`${table.name} (column "${required[0]}", its ${required[1]}, not found)`);
          continue;
        }
        const lacking = existing ? wanted.filter((f) => !names.has(f)) : [];
        if (lacking.length > 0 && table.preset) {
          const refusal = await hidden(lacking);
          if (refusal) throw refusal;
          filled.push(`${table.name} (${lacking.join(", ")})`);
        }
        // A strict table's missing column (or table) makes the SELECT fail and is reported with it.
        const read = table.preset ? wanted.filter((f) => names.has(f)) : wanted;
        const columns = read.length > 0 ? read.map(ident).join(", ") : "1";
        await query(connection, `SELECT ${columns} FROM ${ident(table.name)} LIMIT 0`);
      } catch (error) {
        const e = error as { code?: string; sqlMessage?: string };
        // No course index: a release before Maple, not a name to fix in [[tables]].
        if (e.code === "ER_NO_SUCH_TABLE" && table.name === COURSE_INDEX_TABLE && courseIndex) {
          indexInMongodb = true;
          denied.push(`${table.name} (does not exist, ${COURSE_INDEX_IN_MONGODB})`);
          continue;
        }
        if (e.code === "ER_NO_SUCH_TABLE" || e.code === "ER_BAD_FIELD_ERROR") {
          missing[kind] = true;
        } else refused = true;
        // A [[tables]] name with a typo: the name the database has.
        const similar =
          e.code === "ER_NO_SUCH_TABLE"
            ? await similarTable(connection, config.mysql.database, table.name).catch(() => undefined)
            : undefined;
        denied.push(
          `${table.name} (${e.code ?? "error"}: ${e.sqlMessage ?? messageOf(error)}${similar ? `; it has a table ${similar}` : ""})`,
        );
      }
    }
    const notes = [
      ...(absent.length > 0 ? [`preset tables this release lacks (skipped): ${absent.join(", ")}`] : []),
      ...(filled.length > 0 ? [`preset columns it lacks (written empty): ${filled.join("; ")}`] : []),
    ];
    const read = tables.length - absent.length;
    const wrong = notTheLmsDatabase(config.mysql, tables, absent);
    if (wrong) {
      yield { check: "MySQL SELECT", ok: false, detail: wrong.message, hint: wrong.hint ?? "" };
      return;
    }
    // The fix for what actually failed first: a table or column that is not there needs no GRANT.
    const fixes = [
      ...(indexInMongodb ? [USE_MONGODB_COURSE_INDEX] : []),
      ...(missing.configured
        ? [
            "a missing table or column: fix the name in [[tables]] or its fields (`panorama schema pull` shows the real ones), or leave the entry out",
          ]
        : []),
      ...(missing.preset
        ? [
            "a preset table without a column it needs: leave the table out with [extract] exclude, or configure it in [[tables]] with fields it has (`panorama schema pull` shows them)",
          ]
        : []),
      ...(refused
        ? [`GRANT SELECT ON ${config.mysql.database}.* TO ${await granteeOf(connection, config.mysql)}`]
        : []),
    ];
    yield denied.length === 0
      ? passed("MySQL SELECT", [`allowed on all ${read} table(s)`, ...notes].join("; "))
      : {
          check: "MySQL SELECT",
          ok: false,
          detail: `${denied.length} of ${read} table(s) cannot be read: ${denied.join("; ")}`,
          hint: fixes.join("; "),
        };
  } finally {
    await close(connection);
  }
}

function checkLogs(config: Config): CheckResult {
  const files = resolveLogPaths(config.logs);
  if (files.length === 0) {
    // A directory this user cannot list looks empty to a glob: say so, or the path gets "fixed".
    const hidden = config.logs.paths.flatMap((pattern) => {
      const why = whyNoMatch(pattern);
      return why ? [{ ...why, text: `${pattern}: ${why.reason}` }] : [];
    });
    const denied = hidden.some((why) => !why.missing);
    return {
      check: "tracking logs",
      ok: false,
      detail: `no file matches logs.paths (${config.logs.paths.join(", ")})${hidden.map((why) => `; ${why.text}`).join("")}`,
      hint: denied
        ? "run panorama as a user that can list those directories and read the logs (e.g. add it to the group owning them)"
        : "set logs.paths to the LMS tracking log (Tutor: /openedx/data/logs/tracking.log in the lms container's volume)",
    };
  }
  const unreadable: string[] = [];
  let missing = false;
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
      const code = (error as NodeJS.ErrnoException).code;
      if (code === "ENOENT" || code === "ENOTDIR" || code === "EISDIR") missing = true;
      unreadable.push(`${file} (${code ?? messageOf(error)})`);
    }
  }
  if (unreadable.length === 0) return passed("tracking logs", `${files.length} file(s) readable`);
  return {
    check: "tracking logs",
    ok: false,
    detail: `cannot read ${unreadable.join(", ")}`,
    // A file that is not there is a wrong path, which no permission fixes.
    hint: missing
      ? `set logs.paths to the LMS tracking log on this host (Tutor: ${TUTOR_TRACKING_LOG})`
      : "run panorama as a user that can read the logs (e.g. add it to the group owning them)",
  };
}

/** One line per check for people: ✓/✗, then the hint indented below a failure. */
export function formatCheck(result: CheckResult): string {
  const line = `${result.ok ? "✓" : "✗"} ${result.check}: ${result.detail}\n`;
  return result.ok || !result.hint ? line : `${line}    → ${result.hint}\n`;
}
