import { defineCommand } from "citty";
import { collectStatus, formatStatus } from "../status.ts";
import { globalArgs, globalsOf, prepare } from "./shared.ts";

export default defineCommand({
  meta: {
    name: "status",
    description: "Last run per table (rows, bytes, duration, watermark, errors) and what waits",
  },
  args: {
    ...globalArgs,
    json: {
      type: "boolean",
      description: "print the status as one JSON document on stdout (logs stay on stderr)",
    },
    wide: { type: "boolean", description: "every column, errors in full (the default fits 120 columns)" },
  },
  async run({ args }) {
    const config = await prepare(args);
    const status = await collectStatus(config);
    process.stdout.write(
      globalsOf(args).json
        ? `${JSON.stringify(status, null, 2)}\n`
        : formatStatus(status, { wide: args.wide === true }),
    );
    return 0;
  },
});
