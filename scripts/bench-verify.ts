// Verify benchmark (run by hand, never by the test suite):
//   scripts/test-env.sh node_modules/.bin/bun scripts/bench-verify.ts [--rows 1000000] [--runs 3]
// On the benchmarks' courseware_studentmodule (ROWS rows in 200 courses, see bench-support.ts),
// partitioned by course_id and incremental on `modified` as the openedx preset has it, into a
// local datalake: times `panorama run --full` (from an empty state and datalake each time)
// against `panorama verify` of the datalake that run wrote (which must agree: exit 0), and
// prints the queries and listings verify sent, as its debug log names them.
import { rmSync } from "node:fs";
import { parseArgs } from "node:util";
import { writeTestConfig } from "../test/support/mysql.ts";
import { generateStudentmodule, measure, median } from "./bench-support.ts";

const { values } = parseArgs({
  options: { rows: { type: "string", default: "1000000" }, runs: { type: "string", default: "3" } },
});
const ROWS = Number(values.rows);
const RUNS = Number(values.runs);

await generateStudentmodule(ROWS);
const cfg = writeTestConfig(`[extract]
preset = "none"
[[tables]]
name = "courseware_studentmodule"
partition_fields = ["course_id"]
incremental = { timestamp_field = "modified", overlap = "2 hours" }
`);
const cli = [process.execPath, `${import.meta.dir}/../src/cli.ts`, "--config", cfg.file];

const runs: number[] = [];
const runRss: number[] = [];
for (let i = 0; i < RUNS; i++) {
  rmSync(cfg.stateDir, { recursive: true, force: true });
  rmSync(cfg.datalake, { recursive: true, force: true });
  const m = await measure([...cli, "run", "--full"]);
  runs.push(m.seconds);
  runRss.push(m.maxRssMiB);
}

const verifies: number[] = [];
const verifyRss: number[] = [];
let sent: string[] = [];
for (let i = 0; i < RUNS; i++) {
  // exit 1 would mean a difference: measure() throws on it.
  const m = await measure([...cli, "--json", "--log-level", "debug", "verify"]);
  verifies.push(m.seconds);
  verifyRss.push(m.maxRssMiB);
  sent = m.stderr
    .split("\n")
    .filter((line) => line.startsWith("{"))
    .map((line) => JSON.parse(line) as { message: string; sql?: string; prefix?: string })
    .filter((line) => line.message.startsWith("verify:"))
    .map((line) => (line.sql !== undefined ? `SQL     ${line.sql}` : `listing ${line.prefix}`));
}

const run = median(runs);
const verify = median(verifies);
console.log(
  `\n${ROWS.toLocaleString("en-US")} rows of courseware_studentmodule in 200 courses, median of ${RUNS} runs`,
);
console.log(
  `${"panorama run --full".padEnd(24)} ${run.toFixed(2).padStart(7)} s  peak RSS ${Math.max(...runRss).toFixed(0)} MiB`,
);
console.log(
  `${"panorama verify".padEnd(24)} ${verify.toFixed(2).padStart(7)} s  peak RSS ${Math.max(...verifyRss).toFixed(0)} MiB  (${(run / verify).toFixed(1)}x faster)`,
);
console.log("what verify sent:");
for (const line of sent) console.log(`  ${line}`);
rmSync(cfg.dir, { recursive: true, force: true });
