// `panorama completions SHELL`: the completion script of the command map it is given. The map's
// module (index.ts) hands the map over when it loads this command, so this module imports neither
// the map (which imports it) nor cli.ts (importing cli.ts would wait on its top-level await, which
// runs this command: the compiled binary would exit silently).
// test/unit/completions.test.ts checks that this prints what cli.ts's `main` gives.
import { defineCommand } from "citty";
import { UsageError } from "../errors.ts";
import {
  type CommandLike,
  completionScript,
  describeCommands,
  SHELLS,
  type Shell,
} from "../setup/completions.ts";
import { globalArgs, startLogging } from "./shared.ts";

/** The completions command for the root command whose subcommands are `commands`. */
export function completionsCommand(commands: NonNullable<CommandLike["subCommands"]>) {
  // The root as cli.ts's `main` has it: its args and its command map.
  const root = { args: globalArgs, subCommands: commands };
  return defineCommand({
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
}
