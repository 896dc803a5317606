import { defineCommand } from "citty";
import { UsageError } from "../errors.ts";
import { completionScript, describeCommands, SHELLS, type Shell } from "../setup/completions.ts";
import { commands } from "./index.ts";
import { globalArgs, startLogging } from "./shared.ts";

// The root as cli.ts's `main` has it (its args and its command map). Importing cli.ts from here
// would wait on cli.ts's own top-level await, which runs this command: the compiled binary exits
// silently. test/unit/completions.test.ts checks that this prints what `main` gives.
const root = { args: globalArgs, subCommands: commands };

export default defineCommand({
  meta: { name: "completions", description: "Print the bash, zsh or fish completion script" },
  args: {
    ...globalArgs,
    shell: {
      type: "positional",
      description: "the shell: bash, zsh or fish",
      valueHint: SHELLS.join("|"),
      required: true,
    },
  },
  async run({ args }) {
    startLogging(args);
    const shell = args.shell;
    if (!(SHELLS as readonly string[]).includes(shell)) {
      throw new UsageError(
        `unknown shell "${shell}": expected ${SHELLS.join(", ")}`,
        "e.g. `panorama completions bash > /etc/bash_completion.d/panorama`",
      );
    }
    process.stdout.write(completionScript(shell as Shell, await describeCommands(root)));
  },
});
