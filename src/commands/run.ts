import { defineCommand } from "citty";
import { EXIT, exitCodeFor } from "../errors.ts";
import { writeRunMetrics } from "../metrics.ts";
import { dryRunJob, type RunResult, runJob } from "../run.ts";
import { acquireLock } from "../state/lock.ts";
import { dryRunArgs, globalArgs, prepareFor, selectTables, tablesArgs } from "./shared.ts";

export default defineCommand({
  meta: { name: "run", description: "Extract, upload and catalog under the lock: what cron calls" },
  args: {
    ...globalArgs,
    ...tablesArgs,
    full: { type: "boolean", description: "extract every partition, ignoring watermarks" },
    ...dryRunArgs,
  },
  async run({ args }) {
    const config = await prepareFor(args, "extract");
    if (!config) return 0;
    const dryRun = args["dry-run"] === true;
    let tables: ReturnType<typeof selectTables>;
    let lock: ReturnType<typeof acquireLock>;
    try {
      tables = selectTables(config, args.tables);
      // A dry run writes nothing, the lock included: it may look while a run works.
      if (dryRun) return (await dryRunJob(config, tables, args.full === true)).ok ? 0 : 1;
      lock = acquireLock(config.state_dir, "run");
    } catch (error) {
      // A cron line broken (an unknown table, exit 2) or a run still holding the lock (exit 3)
      // is said by the metrics too; the tables' figures stay those of the last run.
      if (!dryRun) writeRunMetrics(config, { exitCode: exitCodeFor(error), seconds: 0 });
      throw error;
    }
    const started = performance.now();
    let result: RunResult | null = null;
    let exitCode: number = EXIT.failed;
    try {
      result = await runJob(config, tables, args.full === true);
      exitCode = result.ok ? EXIT.ok : EXIT.failed;
      return exitCode;
    } catch (error) {
      exitCode = exitCodeFor(error);
      throw error;
    } finally {
      const seconds = Math.round(performance.now() - started) / 1000;
      const figures =
        result?.summaries && result.uploads
          ? { summaries: result.summaries, uploads: result.uploads }
          : undefined;
      writeRunMetrics(config, { exitCode, seconds }, figures);
      lock.release();
    }
  },
});
