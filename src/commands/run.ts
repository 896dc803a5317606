import { defineCommand } from "citty";
import { runJob } from "../run.ts";
import { acquireLock } from "../state/lock.ts";
import { globalArgs, prepareFor, selectTables, tablesArgs } from "./shared.ts";

export default defineCommand({
  meta: { name: "run", description: "Extract, upload and catalog under the lock: what cron calls" },
  args: {
    ...globalArgs,
    ...tablesArgs,
    full: { type: "boolean", description: "extract every partition, ignoring watermarks" },
  },
  async run({ args }) {
    const config = await prepareFor(args, "extract");
    if (!config) return 0;
    const tables = selectTables(config, args.tables);
    const lock = acquireLock(config.state_dir, "run");
    try {
      return (await runJob(config, tables, args.full === true)).ok ? 0 : 1;
    } finally {
      lock.release();
    }
  },
});
