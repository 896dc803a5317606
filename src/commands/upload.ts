import { defineCommand } from "citty";
import { modeAllows } from "../config/modes.ts";
import { log } from "../log.ts";
import { uploadSpool } from "../run.ts";
import { acquireLock } from "../state/lock.ts";
import { dryRunArgs, globalArgs, prepare } from "./shared.ts";

export default defineCommand({
  meta: {
    name: "upload",
    description: "Send every complete spool file to the datalake, then clear it from the spool",
  },
  args: { ...globalArgs, ...dryRunArgs },
  async run({ args }) {
    const config = await prepare(args);
    const gate = modeAllows(config.mode, "upload");
    if (!gate.allowed) {
      log.info(gate.reason);
      return 0;
    }
    const dryRun = args["dry-run"] === true;
    const lock = dryRun ? null : acquireLock(config.state_dir, "upload");
    try {
      return (await uploadSpool(config, dryRun)).ok ? 0 : 1;
    } finally {
      lock?.release();
    }
  },
});
