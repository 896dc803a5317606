import { defineCommand } from "citty";
import { cleanSpool, spoolDir } from "../datalake/spool.ts";
import { extractTables } from "../extract/extract.ts";
import { tableProgress } from "../progress.ts";
import { printPlanned, recordRuns } from "../run.ts";
import { reportFailedTables } from "../run-report.ts";
import { acquireLock } from "../state/lock.ts";
import { dryRunArgs, globalArgs, prepareFor, selectTables, tablesArgs } from "./shared.ts";

export default defineCommand({
  meta: {
    name: "extract",
    description:
      "Extract the configured tables (MySQL, and course structures from MongoDB) into the spool as CSV",
  },
  args: {
    ...globalArgs,
    ...tablesArgs,
    full: { type: "boolean", description: "extract every partition, ignoring watermarks" },
    ...dryRunArgs,
  },
  async run({ args }) {
    const config = await prepareFor(args, "extract");
    if (!config) return 0;
    const tables = selectTables(config, args.tables);
    const dryRun = args["dry-run"] === true;
    const lock = dryRun ? null : acquireLock(config.state_dir, "extract");
    try {
      if (!dryRun) await cleanSpool(spoolDir(config.state_dir));
      const summaries = await extractTables(config, tables, {
        full: args.full === true,
        dryRun,
        events: tableProgress(),
      });
      if (dryRun) printPlanned(summaries);
      else recordRuns(config, "extract", summaries, null);
      const kept = dryRun ? "" : "; the other tables' files are in the spool";
      return reportFailedTables(summaries, kept) ? 0 : 1;
    } finally {
      lock?.release();
    }
  },
});
