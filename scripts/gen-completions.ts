// Write the committed completion scripts under completions/ from the command definitions.
// test/unit/completions.test.ts fails when they differ from what this writes: run it after
// adding or changing a command, an option or a description.
//
//   bun scripts/gen-completions.ts
import { join } from "node:path";
import { main } from "../src/cli.ts";
import { COMPLETION_FILES, completionScript, describeCommands, SHELLS } from "../src/setup/completions.ts";

const root = join(import.meta.dir, "..");
const spec = await describeCommands(main);
for (const shell of SHELLS) {
  await Bun.write(join(root, COMPLETION_FILES[shell]), completionScript(shell, spec));
  console.log(`wrote ${COMPLETION_FILES[shell]}`);
}
