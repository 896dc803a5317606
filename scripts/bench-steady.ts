// Steady-state benchmark (run by hand, never by the test suite):
//   scripts/test-env.sh node_modules/.bin/bun scripts/bench-steady.ts [--rows 1000000] [--runs 3] [--s3]
// Generates an Open edX database with scripts/gen-openedx-data.ts (every preset table; ROWS rows
// of courseware_studentmodule in 200 courses) in the test MariaDB's scratch database, then runs
// `panorama run` with the openedx preset into a local datalake, as the hourly job would: the first
// run (everything read; RUNS times, each from an empty state and datalake), a run with nothing
// changed (RUNS times: the unchanged probe, DESIGN §7, skips what cannot have changed), and a run
// after 1% of the courses had activity in the last hour (RUNS times, new activity before each).
// Reports, per case, the rows read (from runs.json), the median time, the ratios to the first
// run's, and peak RSS (GNU time), with the tables that were read. Medians: a run that reads
// nothing takes 0.2 s here, and one run in four or five takes half as long again (the VM's
// scheduling), which a single run would report as the figure. Each run starts with the writes of
// the one before on disk (sync), as in bench-extract. It runs the executable cron runs
// (scripts/build.sh, built into the config's directory first), not `bun src/cli.ts`, whose start
// compiles the sources: a run that finds nothing changed is mostly its start. --s3: the datalake is
// s3rver over HTTPS (as S3 is reached: over TLS, what a client holds of a body it sends differs),
// with a certificate made for the run that panorama trusts through NODE_EXTRA_CA_CERTS, and the
// Glue and Athena stand-in of test/support (`panorama catalog` makes the tables first), so that
// the runs upload and register their partitions as on AWS.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { startAwsJsonServer } from "../test/support/aws-json-server.ts";
import { makeCertificate } from "../test/support/certificate.ts";
import { testEnv } from "../test/support/env.ts";
import { testConnection, writeTestConfig } from "../test/support/mysql.ts";
import { writeS3Config } from "../test/support/s3-config.ts";
import { buildExecutable, generateStudentmodule, measure, startS3rver } from "./bench-support.ts";

const { values } = parseArgs({
  options: {
    rows: { type: "string", default: "1000000" },
    runs: { type: "string", default: "3" },
    s3: { type: "boolean", default: false },
  },
});
const ROWS = Number(values.rows);
const RUNS = Number(values.runs);
const database = testEnv().mysql.scratchDatabase;

await generateStudentmodule(ROWS);
// The preset's tables; course structures come from MongoDB, which this benchmark does not run.
const EXTRACT = `[extract]\nexclude = ["course_structures"]\n`;
const BUCKET = "bench-steady";
const s3 = values.s3 ? await startS3() : null;
const cfg = s3?.cfg ?? writeTestConfig(EXTRACT);
const executable = buildExecutable(cfg.dir);
/** the environment of every panorama run */
const runEnv: Record<string, string> = s3 ? { NODE_EXTRA_CA_CERTS: s3.certFile } : {};
if (s3) await measure([executable, "--config", cfg.file, "catalog"], runEnv);

/** s3rver over HTTPS and the Glue and Athena stand-in, and a config that writes to them. */
async function startS3() {
  const work = mkdtempSync(join(tmpdir(), "panorama-bench-steady-"));
  const tls = makeCertificate(work, "s3.bench");
  const server = await startS3rver(join(work, "s3rver"), BUCKET, tls);
  const credentials = { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" };
  const catalog = await startAwsJsonServer({
    ...credentials,
    databases: ["panorama"],
    workgroups: { panorama: "s3://athena-results/" },
  });
  const config = writeS3Config({
    ...credentials,
    endpoint: `https://127.0.0.1:${server.port}`,
    bucket: BUCKET,
    datalake: `workgroup = "panorama"\nglue_endpoint = "${catalog.url}"\nathena_endpoint = "${catalog.url}"`,
    body: EXTRACT,
  });
  return {
    // The bucket is not emptied between first runs: without its upload state, a run sends all.
    cfg: { ...config, datalake: null },
    certFile: tls.certFile,
    stop: () => {
      server.stop();
      catalog.stop();
      rmSync(work, { recursive: true, force: true });
    },
  };
}

interface TableRun {
  rows: number;
  unread?: number;
  error: string | null;
  absent?: boolean;
}

/** One `panorama run`: its time, peak RSS, and what runs.json says it read. */
async function runOnce(label: string) {
  Bun.spawnSync(["sync"]);
  const m = await measure([executable, "--config", cfg.file, "run"], runEnv);
  const runs = JSON.parse(readFileSync(join(cfg.stateDir, "runs.json"), "utf8")) as Record<string, TableRun>;
  const failed = Object.entries(runs).filter(([, r]) => r.error !== null);
  if (failed.length > 0)
    throw new Error(`${label}: ${failed.map(([t, r]) => `${t}: ${r.error}`).join("; ")}`);
  const read = Object.entries(runs)
    .filter(([, r]) => r.rows > 0)
    .map(([t, r]) => `${t} ${r.rows}`);
  const unread = Object.entries(runs)
    .filter(([, r]) => r.unread)
    .map(([t, r]) => `${t} ${r.unread}`);
  const rows = Object.values(runs).reduce((sum, r) => sum + r.rows, 0);
  return { label, rows, seconds: m.seconds, rss: m.maxRssMiB, read, unread };
}

type Outcome = Awaited<ReturnType<typeof runOnce>>;

/**
 * RUNS runs, each after `before`: the one of median time, with the most rows read and the
 * largest peak RSS of all.
 */
async function run(label: string, before: () => Promise<void> = async () => {}): Promise<Outcome> {
  const outcomes: Outcome[] = [];
  for (let i = 0; i < RUNS; i++) {
    await before();
    outcomes.push(await runOnce(label));
  }
  const middle = outcomes.toSorted((a, b) => a.seconds - b.seconds)[Math.floor(RUNS / 2)]!;
  return {
    ...middle,
    rows: Math.max(...outcomes.map((o) => o.rows)),
    rss: Math.max(...outcomes.map((o) => o.rss)),
  };
}

// Each first run from nothing: no state, no datalake.
const first = await run("first run", async () => {
  rmSync(cfg.stateDir, { recursive: true, force: true });
  if (cfg.datalake) rmSync(cfg.datalake, { recursive: true, force: true });
});
const quiet = await run("nothing changed");
// 1% of the courses (the first two of 200) have activity in the last hour before each run: a few
// modules saved (their `modified` moves) and a new one, as a learner's answers would.
const db = await testConnection(database);
const [courses] = await db.query({
  sql: "SELECT DISTINCT course_id FROM courseware_studentmodule ORDER BY course_id LIMIT 2",
  rowsAsArray: true,
});
let round = 0;
async function activity() {
  round++;
  for (const [course] of courses as [string][]) {
    await db.query(
      `UPDATE courseware_studentmodule SET grade = ?, modified = UTC_TIMESTAMP(6) - INTERVAL 30 MINUTE
        WHERE course_id = ? ORDER BY id LIMIT 20`,
      [round, course],
    );
    await db.query(
      `INSERT INTO courseware_studentmodule (module_type, module_id, student_id, state, grade, created, modified, max_grade, done, course_id)
       SELECT module_type, CONCAT(module_id, '-bench-', ?), student_id, state, grade, UTC_TIMESTAMP(6) - INTERVAL 20 MINUTE,
              UTC_TIMESTAMP(6) - INTERVAL 20 MINUTE, max_grade, done, course_id
         FROM courseware_studentmodule WHERE course_id = ? ORDER BY id LIMIT 1`,
      [round, course],
    );
  }
}
const active = await run("1% of courses active", activity);
await db.end();
// Leave the table as generated (the other benchmarks keep it while its row count matches).
{
  const restore = await testConnection(database);
  await restore.query("DELETE FROM courseware_studentmodule WHERE module_id LIKE '%-bench%'");
  await restore.end();
}

console.log(
  `\nOpen edX preset, ${ROWS.toLocaleString("en-US")} rows of courseware_studentmodule, median of ${RUNS} runs, ${s3 ? "to s3rver over HTTPS" : "to a local datalake"}`,
);
for (const r of [first, quiet, active]) {
  console.log(
    `${r.label.padEnd(22)} ${r.rows.toLocaleString("en-US").padStart(10)} rows (${((100 * r.rows) / first.rows).toFixed(2)}% of the first)  ${r.seconds.toFixed(2).padStart(6)} s (${((100 * r.seconds) / first.seconds).toFixed(1)}%)  peak RSS ${r.rss.toFixed(0)} MiB`,
  );
  if (r !== first) {
    console.log(`  read: ${r.read.join(", ") || "nothing"}`);
    console.log(`  not read (unchanged): ${r.unread.join(", ") || "nothing"}`);
  }
}
rmSync(cfg.dir, { recursive: true, force: true });
s3?.stop();
