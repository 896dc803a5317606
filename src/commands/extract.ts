import { defineCommand } from "citty";
import { cleanSpool, spoolDir } from "../datalake/spool.ts";
import { extractTables } from "../extract/extract.ts";
import { log } from "../log.ts";
import { tableProgress } from "../progress.ts";
import { recordRuns } from "../run.ts";
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
      if (!dryRun) recordRuns(config, "extract", summaries, null);
      if (dryRun) {
        for (const summary of summaries) {
          for (const file of summary.planned ?? []) process.stdout.write(`${file.key}\t${file.rows} rows\n`);
        }
      }
      const failed = summaries.filter((s) => s.error !== null);
      if (failed.length > 0) {
        log.error(
          `${failed.length} of ${summaries.length} tables failed (${failed.map((s) => s.table).join(", ")}); the other tables' files are in the spool`,
        );
        return 1;
      }
      return 0;
    } finally {
      lock?.release();
    }
  },
});
