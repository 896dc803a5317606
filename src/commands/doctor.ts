import { defineCommand } from "citty";
import { type CheckResult, formatCheck, runChecks } from "../doctor.ts";
import { redact, setStatus } from "../log.ts";
import { globalArgs, globalsOf, startLogging } from "./shared.ts";

/** A check's text blanked like a log line, so no error it quotes can show a secret (DESIGN §3). */
function redacted(result: CheckResult): CheckResult {
  return { ...result, detail: redact(result.detail), hint: result.hint && redact(result.hint) };
}

export default defineCommand({
  meta: {
    name: "doctor",
    description: "Test every connection and permission the jobs need, and say how to fix what fails",
  },
  args: {
    ...globalArgs,
    json: { type: "boolean", description: "print the checks as one JSON array on stdout" },
  },
  async run({ args }) {
    startLogging(args);
    const { config, json } = globalsOf(args);
    const results: CheckResult[] = [];
    // On a terminal the check running now is shown until its line replaces it.
    const onStart = (check: string) => {
      if (!json && process.stdout.isTTY) setStatus(`… ${check}`);
    };
    for await (const result of runChecks({ configPath: config, onStart })) {
      const shown = redacted(result);
      results.push(shown);
      // People see each line as its check ends (a timeout takes a while); --json prints one array.
      setStatus(null);
      if (!json) process.stdout.write(formatCheck(shown));
    }
    if (json) process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
    const failures = results.filter((r) => !r.ok).length;
    if (!json) {
      process.stdout.write(failures === 0 ? "all checks passed\n" : `${failures} check(s) failed\n`);
    }
    return failures === 0 ? 0 : 1;
  },
});
