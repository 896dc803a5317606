import { defineCommand } from "citty";
import { Glue } from "../aws/glue.ts";
import { S3Target } from "../datalake/s3-target.ts";
import { createTarget } from "../datalake/target.ts";
import { acquireLock } from "../state/lock.ts";
import { formatReport, recordVerify, verifyTables } from "../verify.ts";
import { globalArgs, globalsOf, prepareFor, selectTables, tablesArgs } from "./shared.ts";

export default defineCommand({
  meta: {
    name: "verify",
    description:
      "Compare MySQL's rows per table and partition with the datalake's objects; --repair makes them agree",
  },
  args: {
    ...globalArgs,
    ...tablesArgs,
    repair: {
      type: "boolean",
      description: "re-extract and store what differs, delete what is stale, then verify again",
    },
    json: {
      type: "boolean",
      description: "print the report as one JSON document on stdout (logs stay on stderr)",
    },
  },
  async run({ args }) {
    const config = await prepareFor(args, "extract");
    if (!config) return 0;
    const tables = selectTables(config, args.tables);
    const repair = args.repair === true;
    // A repair writes the spool and the datalake: never beside a run.
    const lock = repair ? acquireLock(config.state_dir, "verify --repair") : null;
    try {
      const target = createTarget(config);
      const glue =
        target instanceof S3Target ? new Glue(target.s3.client, config.datalake.database) : undefined;
      const { before, after, repaired } = await verifyTables(config, tables, target, { repair, glue });
      recordVerify(config, before, after, repair, repaired);
      const last = after ?? before;
      const ok = last.ok && repaired;
      if (globalsOf(args).json) {
        process.stdout.write(`${JSON.stringify({ ok, found: before, after }, null, 2)}\n`);
      } else {
        process.stdout.write(formatReport(before));
        if (after) process.stdout.write(`after the repair:\n${formatReport(after)}`);
      }
      return ok ? 0 : 1;
    } finally {
      lock?.release();
    }
  },
});
