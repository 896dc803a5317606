import { defineCommand } from "citty";
import { uploadSpool } from "../run.ts";
import { acquireLock } from "../state/lock.ts";
import { dryRunArgs, globalArgs, prepareFor } from "./shared.ts";

export default defineCommand({
  meta: {
    name: "upload",
    description: "Send every complete spool file to the datalake, then clear it from the spool",
  },
  args: { ...globalArgs, ...dryRunArgs },
  async run({ args }) {
    const config = await prepareFor(args, "upload");
    if (!config) return 0;
    const dryRun = args["dry-run"] === true;
    const lock = dryRun ? null : acquireLock(config.state_dir, "upload");
    try {
      return (await uploadSpool(config, dryRun)).ok ? 0 : 1;
    } finally {
      lock?.release();
    }
  },
});
