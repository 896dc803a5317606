import { defineCommand } from "citty";
import { dryRunJob, runJob } from "../run.ts";
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
    const tables = selectTables(config, args.tables);
    // A dry run writes nothing, the lock included: it may look while a run works.
    if (args["dry-run"] === true) return (await dryRunJob(config, tables, args.full === true)).ok ? 0 : 1;
    const lock = acquireLock(config.state_dir, "run");
    try {
      return (await runJob(config, tables, args.full === true)).ok ? 0 : 1;
    } finally {
      lock.release();
    }
  },
});
