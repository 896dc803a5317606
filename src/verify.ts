// `panorama verify` (DESIGN §7a): MySQL's row counts per table and per partition against the
// objects of the datalake. Cheap by design: one GROUP BY COUNT(*) per partitioned table (COUNT(*)
// for an unpartitioned one), one listing of the table's prefix (S3 or the local tree), and the
// rows and bytes the upload state recorded when each object was stored; no data is read.
// `--repair` re-extracts and stores what differs, deletes what is stale, then verifies again.
import { dirname } from "node:path";
import type { Connection } from "mysql2";
import { AwsError } from "./aws/client.ts";
import { type Glue, GlueError } from "./aws/glue.ts";
import { type PartitionRef, PartitionState } from "./catalog/partitions.ts";
import { registerAfterUpload, registersPartitions } from "./catalog/register.ts";
import type { Config, TableConfig } from "./config/types.ts";
import { otherVariantKey } from "./datalake/layout.ts";
import { hostTablePrefix, listTableObjects, partitionValuesOf, removeStale } from "./datalake/prune.ts";
import { cleanSpool, listSpool, spoolDir } from "./datalake/spool.ts";
import type { StoredObject, Target } from "./datalake/targets.ts";
import { Uploader } from "./datalake/upload.ts";
import { messageWithHint } from "./errors.ts";
import { planTable } from "./extract/extract.ts";
import {
  type Cell,
  close,
  connect,
  ident,
  isConnectionLost,
  isServerAway,
  mysqlError,
  notTheLmsDatabase,
  query,
  refuseHidden,
  tableColumns,
} from "./extract/mysql.ts";
import { groupByPartition, partitionKey } from "./extract/partition.ts";
import { extractOverConnections } from "./extract/partition-pool.ts";
import { ServerWait, sayDoneAgain } from "./extract/server-wait.ts";
import { log } from "./log.ts";
import type { PseudonymsStatus } from "./privacy/report.ts";
import { pseudonymsLine, pseudonymsStatus } from "./privacy/report.ts";
import { formatBytes } from "./progress.ts";
import { type FindingKind, saveVerifyRecord } from "./state/verify-record.ts";
import { saveWrittenCompression } from "./state/written-compression.ts";

/** One difference; its kinds are described with FindingKind. */
export interface Finding {
  kind: FindingKind;
  key: string;
  /** MySQL's rows of the partition (0 for a stale object, but for one of the other variant) */
  mysql_rows: number;
  /** rows recorded when the object was stored; null when unknown or absent */
  datalake_rows: number | null;
  /** bytes recorded when the object was stored (compressed bytes with gzip); null when unknown */
  stored_bytes: number | null;
  /** bytes of the object as the datalake lists it; null when absent */
  listed_bytes: number | null;
}

export interface TableCheck {
  table: string;
  partitions: number;
  mysql_rows: number;
  objects: number;
  findings: Finding[];
  /** the table could not be checked (MySQL or the datalake failed) */
  error: string | null;
  /** why the table is not checked (course structures come from MongoDB) */
  skipped: string | null;
  /** a preset table MySQL no longer has (dropped by an upgrade) whose objects the datalake keeps */
  dropped?: true;
}

export interface VerifyReport {
  time: string;
  ok: boolean;
  tables: TableCheck[];
  /** SQL statements sent to MySQL and listings of the datalake */
  queries: number;
  listings: number;
  seconds: number;
  /** whether personal values are pseudonymized (DESIGN §11): the datalake holds pseudonyms then */
  pseudonyms: PseudonymsStatus;
  /** tables this host wrote that the configuration no longer names (looked for without --tables) */
  unconfigured: UnconfiguredTable[];
}

/** A table of this host's in the datalake that the configuration does not name. */
export interface UnconfiguredTable {
  table: string;
  objects: number;
  bytes: number;
  /** the prefix holding this host's objects of it */
  location: string;
}

/** One partition MySQL has: its values and its rows. */
interface Expected {
  values: Cell[];
  rows: number;
}

/** Per key, what MySQL has for `table`: one GROUP BY COUNT(*), or a COUNT(*) without partitions. */
async function mysqlCounts(
  connection: Connection,
  config: Config,
  table: TableConfig,
): Promise<Map<string, Expected>> {
  const from = `FROM ${ident(table.name)}`;
  const keyOf = (values: Cell[]) => partitionKey(config, table, values);
  const out = new Map<string, Expected>();
  const send = (sql: string) => {
    log.debug("verify: counting rows", { table: table.name, sql });
    return query<Cell[]>(connection, sql, [], true);
  };
  if (table.partition_fields.length === 0) {
    const [row] = await send(`SELECT COUNT(*) ${from}`);
    out.set(keyOf([]), { values: [], rows: Number(row?.[0] ?? 0) });
    return out;
  }
  log.debug("verify: counting rows", { table: table.name });
  const rows = await groupByPartition(connection, table.partition_fields, "COUNT(*)", from, []);
  for (const row of rows) {
    const values = row.slice(0, -1);
    out.set(keyOf(values), { values, rows: Number(row[row.length - 1]) });
  }
  return out;
}

/** The table compared: MySQL's counts, the datalake's listing and the upload state's records. */
async function checkTable(
  connection: Connection,
  config: Config,
  target: Target,
  uploader: Uploader,
  table: TableConfig,
): Promise<{ check: TableCheck; expected: Map<string, Expected>; listed: Map<string, number> }> {
  const check: TableCheck = {
    table: table.name,
    partitions: 0,
    mysql_rows: 0,
    objects: 0,
    findings: [],
    error: null,
    skipped: null,
  };
  const expected = await mysqlCounts(connection, config, table).catch((error) => {
    throw mysqlError(error, config.mysql, `counting the rows of ${table.name}`);
  });
  log.debug("verify: listing the datalake", {
    table: table.name,
    prefix: hostTablePrefix(config, table.name),
  });
  const listed = new Map((await listTableObjects(config, target, table.name)).map((o) => [o.key, o.size]));
  check.partitions = expected.size;
  check.objects = listed.size;
  for (const [key, { rows }] of expected) {
    check.mysql_rows += rows;
    const size = listed.get(key);
    const stored = uploader.storedAt(key);
    const finding = (kind: FindingKind): Finding => ({
      kind,
      key,
      mysql_rows: rows,
      datalake_rows: stored?.rows ?? null,
      stored_bytes: stored?.bytes ?? null,
      listed_bytes: size ?? null,
    });
    if (size === undefined) check.findings.push(finding("missing"));
    else if (stored?.rows !== rows) check.findings.push(finding("rows"));
    else if (stored.bytes !== size) check.findings.push(finding("size"));
  }
  for (const [key, size] of listed) {
    if (expected.has(key)) continue;
    const stored = uploader.storedAt(key);
    check.findings.push({
      kind: "stale",
      key,
      // The other compression variant of a partition MySQL has: that partition's rows.
      mysql_rows: expected.get(otherVariantKey(key))?.rows ?? 0,
      datalake_rows: stored?.rows ?? null,
      stored_bytes: stored?.bytes ?? null,
      listed_bytes: size,
    });
  }
  return { check, expected, listed };
}

/** Whether the table's objects are in partitions that Glue registers (base or field ones). */
function hasPartitions(config: Config, table: TableConfig): boolean {
  return config.datalake.base_partitions.length + table.partition_fields.length > 0;
}

/** The catalog partitions of these objects of `table`. */
function partitionRefs(config: Config, table: TableConfig, keys: string[]): PartitionRef[] {
  return keys.map((key) => ({
    values: partitionValuesOf(config, table.name, key),
    bucket: config.datalake.bucket,
    prefix: `${dirname(key)}/`,
  }));
}

/**
 * The objects whose partition Glue does not have, of those not stale: Athena reads none of their
 * rows. Partitions pending since Glue failed are among them; a table Glue does not have at all
 * (no `catalog` yet) is said by `run`, not here.
 */
async function checkCatalog(
  config: Config,
  glue: Glue,
  table: TableConfig,
  check: TableCheck,
  listed: Map<string, number>,
  uploader: Uploader,
): Promise<void> {
  let inGlue: Set<string>;
  try {
    inGlue = new Set((await glue.partitionValues(table.datalake_table)).map((v) => JSON.stringify(v)));
  } catch (error) {
    if (error instanceof GlueError && error.missing === "entity") return;
    throw error;
  }
  const stale = new Set(check.findings.filter((f) => f.kind === "stale").map((f) => f.key));
  const outside = [...listed].filter(
    ([key]) => !stale.has(key) && !inGlue.has(JSON.stringify(partitionValuesOf(config, table.name, key))),
  );
  // A table with partition projection (a provider's, in SAAS) is read without registered partitions.
  if (
    outside.length > 0 &&
    (await glue.getTable(table.datalake_table))?.Parameters?.["projection.enabled"] === "true"
  ) {
    return;
  }
  for (const [key, size] of outside) {
    const stored = uploader.storedAt(key);
    check.findings.push({
      kind: "catalog",
      key,
      mysql_rows: stored?.rows ?? 0,
      datalake_rows: stored?.rows ?? null,
      stored_bytes: stored?.bytes ?? null,
      listed_bytes: size,
    });
  }
}

export interface VerifyOptions {
  repair: boolean;
  glue?: Glue | undefined;
  /** every configured table is verified: look for tables the configuration no longer names too */
  allTables?: boolean;
}

/** A table verify did not compare: skipped (and why), or failed (with the error). */
function notChecked(table: string, why: { skipped: string } | { error: string }): TableCheck {
  return {
    table,
    partitions: 0,
    mysql_rows: 0,
    objects: 0,
    findings: [],
    error: "error" in why ? why.error : null,
    skipped: "skipped" in why ? why.skipped : null,
  };
}

/** Verify `tables`; with `repair`, make them agree and verify again. */
export async function verifyTables(
  config: Config,
  tables: TableConfig[],
  target: Target,
  options: VerifyOptions,
): Promise<{ before: VerifyReport; after: VerifyReport | null; repaired: boolean }> {
  const check = () =>
    withMysql(config, (session) =>
      verifyOnce(session, config, tables, target, new Uploader(config, target), options),
    );
  const first = await check();
  if (!options.repair || first.report.ok) return { before: first.report, after: null, repaired: true };
  // A connection of its own to each step: a failure in one leaves the next a sound one.
  const repaired = await withMysql(config, (session) =>
    repair(session.connection, config, target, first.plans, options.glue),
  );
  const second = await check();
  return { before: first.report, after: second.report, repaired };
}

/**
 * A step's MySQL connection; `reopen` replaces it with a new one when the server went away (a
 * restart, a failover), waiting for the server within SERVER_WAIT_MS.
 */
interface MysqlSession {
  connection: Connection;
  reopen(): Promise<void>;
}

async function withMysql<T>(config: Config, work: (session: MysqlSession) => Promise<T>): Promise<T> {
  const wait = new ServerWait();
  const session: MysqlSession = {
    // connect() says which server and why, with the hint, already.
    connection: await connect(config.mysql),
    async reopen() {
      session.connection.destroy();
      session.connection = await wait.whenBack(() => connect(config.mysql), isServerAway);
    },
  };
  try {
    return await work(session);
  } finally {
    await close(session.connection).catch(() => {});
  }
}

interface RepairPlan {
  table: TableConfig;
  check: TableCheck;
  expected: Map<string, Expected>;
}

async function verifyOnce(
  session: MysqlSession,
  config: Config,
  tables: TableConfig[],
  target: Target,
  uploader: Uploader,
  { allTables, glue }: VerifyOptions,
): Promise<{ report: VerifyReport; plans: RepairPlan[] }> {
  const started = performance.now();
  const report: VerifyReport = {
    time: new Date().toISOString(),
    ok: true,
    tables: [],
    queries: 0,
    listings: 0,
    seconds: 0,
    pseudonyms: pseudonymsStatus(config),
    unconfigured: [],
  };
  const plans: RepairPlan[] = [];
  /** preset tables MySQL lacks whose objects this host wrote before: stale, unless the database is wrong */
  const gone: { table: TableConfig; check: TableCheck; listed: StoredObject[] }[] = [];
  /** The datalake gave no answer (DNS, refused, timeouts): said once, the other tables not tried. */
  let unreachable: string | null = null;
  /** Glue failed: said once, no other table's partitions asked for */
  let catalogUnread: string | null = null;
  /** The table compared, its report entry pushed; a failure thrown. */
  const checkOne = async (table: TableConfig): Promise<void> => {
    const connection = session.connection;
    // A preset table this Open edX release lacks is absent, not a difference (DESIGN §10).
    if (table.preset && !(await tableColumns(connection, config.mysql.database, table.name))) {
      report.queries++;
      await refuseHidden(connection, config.mysql, table.name, null);
      const check = notChecked(table.name, {
        skipped: `absent: ${config.mysql.database} has no such table (this Open edX release)`,
      });
      report.tables.push(check);
      // Written before an upgrade dropped the table: what the LMS no longer has (DESIGN §7a).
      report.listings++;
      const listed = await listTableObjects(config, target, table.name);
      if (listed.length > 0) gone.push({ table, check, listed });
      return;
    }
    report.queries++;
    report.listings++;
    const { check, expected, listed } = await checkTable(connection, config, target, uploader, table);
    if (glue && catalogUnread === null && registersPartitions(config) && hasPartitions(config, table)) {
      report.listings++;
      try {
        await checkCatalog(config, glue, table, check, listed, uploader);
      } catch (error) {
        // The data is verified all the same; the catalog is not compared for any table.
        catalogUnread = messageWithHint(error);
        log.warn(
          `verify: Glue's partitions could not be read, so the catalog is not compared: ${catalogUnread}`,
        );
      }
    }
    report.tables.push(check);
    plans.push({ table, check, expected });
  };
  /** MySQL did not come back after it went away: said for the table it happened to, the others not tried. */
  let mysqlGone: string | null = null;
  for (const table of tables) {
    if (table.source === "course_structures") {
      report.tables.push(
        notChecked(table.name, { skipped: "its rows come from MongoDB, which verify does not count" }),
      );
      continue;
    }
    const notTried = unreachable ?? mysqlGone;
    if (notTried !== null) {
      report.tables.push(notChecked(table.name, { error: notTried }));
      continue;
    }
    /** the table's failure, or null once checked */
    const attempt = () =>
      checkOne(table).then(
        (): unknown => null,
        (error: unknown) => error ?? "failed",
      );
    let failure = await attempt();
    // The connection lost under the count (a restart, a failover): counted again, once, when
    // the server answers.
    if (failure !== null && isConnectionLost(failure)) {
      sayDoneAgain(failure, table.name, "counted");
      failure = await session.reopen().then(attempt, (away: unknown) => {
        mysqlGone = `not checked: MySQL did not answer again (said for ${table.name})`;
        return away;
      });
    }
    if (failure === null) continue;
    report.tables.push(notChecked(table.name, { error: messageWithHint(failure) }));
    if (failure instanceof AwsError && failure.unreachable) {
      unreachable = `the datalake could not be reached (said for ${table.name})`;
    }
  }
  const mysqlTables = tables.filter((t) => t.source !== "course_structures");
  const absent = report.tables.filter((t) => t.skipped?.startsWith("absent:"));
  const wrong = notTheLmsDatabase(
    config.mysql,
    mysqlTables,
    absent.map((t) => t.table),
  );
  if (wrong) {
    const error = messageWithHint(wrong);
    for (const t of absent) Object.assign(t, { error, skipped: null });
  } else if (gone.length > 0 && (await isLmsDatabase(session.connection, config))) {
    for (const { table, check, listed } of gone) {
      Object.assign(check, { skipped: null, dropped: true, objects: listed.length });
      check.findings = listed.map((o) => {
        const stored = uploader.storedAt(o.key);
        return {
          kind: "stale",
          key: o.key,
          mysql_rows: 0,
          datalake_rows: stored?.rows ?? null,
          stored_bytes: stored?.bytes ?? null,
          listed_bytes: o.size,
        };
      });
      plans.push({ table, check, expected: new Map() });
    }
  }
  if (allTables && unreachable === null) {
    try {
      report.unconfigured = await unconfiguredTables(config, target, report);
    } catch (error) {
      log.warn(`verify: the datalake's tables could not be listed: ${messageWithHint(error)}`);
    }
  }
  report.ok = report.tables.every((t) => t.error === null && t.findings.length === 0);
  report.seconds = Math.round((performance.now() - started) / 10) / 100;
  return { report, plans };
}

/**
 * This host's objects of tables the configuration does not name: a table taken out of
 * `[[tables]]` or the preset keeps what it had, no longer updated. Said, never deleted: the
 * daily `verify --repair` must not delete a table the operator left out for a while, and its
 * data is not stale in MySQL's sense (the LMS still has it).
 */
async function unconfiguredTables(
  config: Config,
  target: Target,
  report: VerifyReport,
): Promise<UnconfiguredTable[]> {
  const configured = new Set(config.tables.map((t) => t.name));
  const base = config.datalake.base_prefix;
  report.listings++;
  const names = await target.listDirectories(base ? `${base}/` : "");
  const out: UnconfiguredTable[] = [];
  for (const name of names) {
    if (configured.has(name) || name === "tracking_logs") continue;
    report.listings++;
    const objects = await listTableObjects(config, target, name);
    if (objects.length === 0) continue;
    out.push({
      table: name,
      objects: objects.length,
      bytes: objects.reduce((sum, o) => sum + o.size, 0),
      location: hostTablePrefix(config, name),
    });
  }
  return out;
}

/**
 * Whether the configured database has auth_user, Django's own table in every release: only then
 * is a preset table it lacks one an upgrade dropped, whose objects may go. `verify --tables`
 * naming a few tables of a wrong database must not delete what the datalake holds of them.
 */
async function isLmsDatabase(connection: Connection, config: Config): Promise<boolean> {
  return (await tableColumns(connection, config.mysql.database, "auth_user")) !== null;
}

/**
 * Re-extracts and stores the partitions that differ (forgotten by the upload state first, so
 * that a file equal to what was stored is sent again over the object that changed), deletes the
 * stale objects with their catalog partitions. Watermarks are left alone. A table that fails is
 * said and the others still repaired; false when anything failed.
 */
async function repair(
  connection: Connection,
  config: Config,
  target: Target,
  plans: RepairPlan[],
  glue: Glue | undefined,
): Promise<boolean> {
  const uploader = new Uploader(config, target);
  const partitionState = new PartitionState(config.state_dir, config.datalake.database);
  const spool = spoolDir(config.state_dir);
  await cleanSpool(spool);
  let ok = true;
  const failed = (what: string, error: unknown) => {
    ok = false;
    log.error(`${what}: ${messageWithHint(error)}`);
  };
  try {
    // Leftovers of a failed run first: re-extraction may write the same keys.
    for (const entry of await listSpool(spool)) await uploader.enqueue(entry);
    await drained(uploader);
  } catch (error) {
    failed("repair: storing the spool's leftovers", uploader.failure?.error ?? error);
    return false;
  }
  for (const { table, check, expected } of plans) {
    if (check.findings.length === 0) continue;
    const keysOf = (...kinds: FindingKind[]) =>
      check.findings.filter((f) => kinds.includes(f.kind)).map((f) => f.key);
    const differ = keysOf("missing", "rows", "size");
    const stale = keysOf("stale");
    const unregistered = keysOf("catalog");
    log.info(
      `${table.name}: repairing ${differ.length} partition(s), deleting ${stale.length} stale object(s)${unregistered.length > 0 ? `, registering ${unregistered.length} partition(s)` : ""}`,
      {
        table: table.name,
      },
    );
    try {
      // Pending again: registerAfterUpload below sends them with the repaired ones.
      if (unregistered.length > 0) {
        partitionState.markPending(table.datalake_table, partitionRefs(config, table, unregistered));
      }
      uploader.forget(differ);
      if (differ.length > 0) {
        const plan = await planTable(connection, config, table, true);
        if (!plan) continue; // dropped since it was verified
        const job = { table, columns: plan.columns };
        const values = differ.map((key) => expected.get(key)!.values);
        await extractOverConnections(connection, config, job, values, config.mysql.connections, (entry) =>
          uploader.enqueue(entry),
        );
        await drained(uploader);
        // Written in the configured compression: a run after a switch back reads the table whole.
        saveWrittenCompression(config, table.name);
      }
      const removed = await removeStale(config, target, uploader, table, stale, expected.keys(), glue);
      ok &&= removed.catalogued;
    } catch (error) {
      failed(`${table.name}: repair failed`, uploader.failure?.error ?? error);
      if (uploader.failure) break; // the uploader takes no more files
    }
  }
  await uploader.drain();
  return (await registerAfterUpload(config, uploader.done, glue)) && ok;
}

/** Every queued upload done; throws the first upload's failure. */
async function drained(uploader: Uploader): Promise<void> {
  await uploader.drain();
  if (uploader.failure) throw uploader.failure.error;
}

function count(report: VerifyReport): Record<FindingKind, number> {
  const out: Record<FindingKind, number> = { missing: 0, stale: 0, rows: 0, size: 0, catalog: 0 };
  for (const t of report.tables) for (const f of t.findings) out[f.kind]++;
  return out;
}

/**
 * What `status` keeps of this verify. `repaired`: false when a repair failed in a way the second
 * verification may not show.
 */
export function recordVerify(
  config: Config,
  before: VerifyReport,
  after: VerifyReport | null,
  repair: boolean,
  repaired = true,
): void {
  const last = after ?? before;
  saveVerifyRecord(config.state_dir, {
    time: before.time,
    ok: last.ok && repaired,
    repair,
    found: count(before),
    left: count(last),
    errors: last.tables.filter((t) => t.error !== null).length,
    seconds: Math.round((before.seconds + (after?.seconds ?? 0)) * 100) / 100,
  });
}

const DESCRIBE: Record<FindingKind, (f: Finding) => string> = {
  missing: (f) => `missing\t${f.key}\tMySQL ${f.mysql_rows} rows, no object`,
  stale: (f) =>
    `stale\t${f.key}\t${f.mysql_rows > 0 ? "the other compression variant" : "no rows in MySQL"}, ${f.listed_bytes} bytes`,
  rows: (f) =>
    `rows\t${f.key}\tMySQL ${f.mysql_rows} rows, datalake ${f.datalake_rows === null ? "not recorded" : `${f.datalake_rows} rows`}`,
  size: (f) => `size\t${f.key}\tstored ${f.stored_bytes} bytes, datalake ${f.listed_bytes} bytes`,
  catalog: (f) => `catalog\t${f.key}\tits partition is not in the Glue table: Athena does not read it`,
};

/** The differences listed per table in the report for people; `--json` has them all. */
export const FINDINGS_SHOWN = 50;

/** The report for people: one line per table, one per difference (up to FINDINGS_SHOWN). */
export function formatReport(report: VerifyReport): string {
  const lines: string[] = [];
  for (const t of report.tables) {
    if (t.skipped) {
      lines.push(`- ${t.table}: not verified: ${t.skipped}`);
    } else if (t.error) {
      // Errors made for the run's log name their table first: said once here.
      const error = t.error.startsWith(`${t.table}: `) ? t.error.slice(t.table.length + 2) : t.error;
      lines.push(`✗ ${t.table}: not verified: ${error}`);
    } else if (t.findings.length === 0) {
      lines.push(
        `✓ ${t.table}: ${t.partitions} partition(s), ${t.mysql_rows} rows, ${t.objects} object(s) agree`,
      );
    } else {
      const c: Record<FindingKind, number> = { missing: 0, stale: 0, rows: 0, size: 0, catalog: 0 };
      for (const f of t.findings) c[f.kind]++;
      const parts = (Object.keys(c) as FindingKind[]).filter((k) => c[k] > 0).map((k) => `${c[k]} ${k}`);
      lines.push(
        t.dropped
          ? `✗ ${t.table}: ${parts.join(", ")}: ${t.objects} object(s) of a table MySQL no longer has (dropped by an upgrade?); --repair deletes them`
          : `✗ ${t.table}: ${parts.join(", ")} (of ${t.partitions} partition(s), ${t.objects} object(s))`,
      );
      // A cron log of 30,000 lines says less than one that ends with how many more there are.
      for (const f of t.findings.slice(0, FINDINGS_SHOWN)) lines.push(`  ${DESCRIBE[f.kind](f)}`);
      const more = t.findings.length - FINDINGS_SHOWN;
      if (more > 0) lines.push(`  … and ${more} more (verify --json lists every one)`);
    }
  }
  for (const u of report.unconfigured) {
    lines.push(
      `- ${u.table}: not in the configuration, yet ${u.objects} object(s) (${formatBytes(u.bytes)}) of this host's are in the datalake, kept and no longer updated: add it back to [[tables]], or delete ${u.location} and its catalog table if it should go`,
    );
  }
  const work = `(${report.queries} queries, ${report.listings} listings, ${report.seconds} s)`;
  const unverified = report.tables.filter((t) => t.error !== null).length;
  const differ = report.tables.some((t) => t.findings.length > 0);
  // A table that could not be read was not found to differ: the line says which it was.
  const notVerified = `${unverified} table(s) could not be verified (said above)`;
  lines.push(
    report.ok
      ? `the datalake agrees with MySQL ${work}`
      : differ
        ? `the datalake differs from MySQL${unverified > 0 ? `; ${notVerified}` : ""} ${work}`
        : unverified === report.tables.length
          ? `${notVerified} ${work}`
          : `${notVerified}; the others agree with MySQL ${work}`,
  );
  lines.push(pseudonymsLine(report.pseudonyms));
  return `${lines.join("\n")}\n`;
}
