import { defineCommand } from "citty";
import { log } from "../log.ts";
import { formatPolicy, iamPolicy } from "../setup/iam-policy.ts";
import { globalArgs, prepare } from "./shared.ts";

export default defineCommand({
  meta: { name: "iam-policy", description: "Print the least-privilege IAM policy JSON for this config" },
  args: { ...globalArgs },
  async run({ args }) {
    const config = await prepare(args);
    const result = iamPolicy(config);
    if (result.policy === null) {
      log.info(result.reason);
      return;
    }
    for (const warning of result.warnings) log.warn(warning);
    process.stdout.write(formatPolicy(result.policy));
  },
});
