// Peak RSS of an extraction over TLS (run by hand, never by the test suite):
//   scripts/test-env.sh node_modules/.bin/bun scripts/bench-extract-tls.ts [--rows 1000000] [--runs 2]
// `panorama extract --full` of ROWS rows of courseware_studentmodule (scripts/gen-openedx-data.ts,
// as bench-extract.ts makes them), unpartitioned and by course_id over 2 connections, once through
// the MySQL 8 stand-in of test/support with TLS (`[mysql] ssl = true`, its certificate trusted
// through NODE_EXTRA_CA_CERTS) and once straight to MariaDB, alternated. It reports peak RSS: over
// TLS, what the runtime holds of a socket's data differs (it did for S3's request bodies). The
// times are not comparable: the stand-in relays every byte in JavaScript on the same cores.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { makeCertificate } from "../test/support/certificate.ts";
import { testEnv } from "../test/support/env.ts";
import { writeTestConfig } from "../test/support/mysql.ts";
import { startMysql8Server } from "../test/support/mysql8-server.ts";
import {
  buildExecutable,
  generateStudentmodule,
  measure,
  median,
  studentmoduleTable,
} from "./bench-support.ts";

const { values } = parseArgs({
  options: { rows: { type: "string", default: "1000000" }, runs: { type: "string", default: "2" } },
});
const RUNS = Number(values.runs);
const env = testEnv().mysql;

await generateStudentmodule(Number(values.rows));
const dir = mkdtempSync(join(tmpdir(), "panorama-bench-tls-"));
const certificate = makeCertificate(dir, "mysql8.bench");
const standIn = await startMysql8Server({
  upstream: { host: env.host, port: env.port },
  user: env.user,
  password: env.password,
  greetingPlugin: "caching_sha2_password",
  tls: { key: readFileSync(certificate.keyFile, "utf8"), cert: readFileSync(certificate.certFile, "utf8") },
});
const executable = buildExecutable(dir);

/** A config reading the table (by course_id when `partitioned`) over TLS or not, in its own directory. */
function config(tls: boolean, partitioned: boolean): ReturnType<typeof writeTestConfig> {
  const body = `ssl = ${tls}\nconnections = 2\n${studentmoduleTable(partitioned)}`;
  return writeTestConfig(body, tls ? { port: standIn.port } : {});
}

const cases = [false, true].flatMap((partitioned) =>
  [true, false].map((tls) => ({
    name: `${partitioned ? "by course_id" : "unpartitioned"}, ${tls ? "TLS through the stand-in" : "plain, straight"}`,
    setup: config(tls, partitioned),
    rss: [] as number[],
    seconds: [] as number[],
  })),
);
for (let i = 0; i < RUNS; i++) {
  for (const c of cases) {
    rmSync(c.setup.stateDir, { recursive: true, force: true });
    rmSync(c.setup.datalake, { recursive: true, force: true });
    const m = await measure([executable, "--config", c.setup.file, "extract", "--full"], {
      NODE_EXTRA_CA_CERTS: certificate.certFile,
    });
    c.rss.push(m.maxRssMiB);
    c.seconds.push(m.seconds);
  }
}
console.log(`\n${Number(values.rows).toLocaleString("en-US")} rows, 2 connections, ${RUNS} runs each`);
for (const c of cases) {
  console.log(
    `${c.name.padEnd(44)} peak RSS ${Math.max(...c.rss).toFixed(0)} MiB (${c.rss.map((r) => r.toFixed(0)).join(", ")})  ${median(c.seconds).toFixed(2)} s`,
  );
}
await standIn.close();
for (const d of [dir, ...cases.map((c) => c.setup.dir)]) rmSync(d, { recursive: true, force: true });
process.exit(0);
