import { defineCommand } from "citty";
import { Glue } from "../aws/glue.ts";
import { S3Target } from "../datalake/s3-target.ts";
import { createTarget } from "../datalake/target.ts";
import { EXIT, exitCodeFor } from "../errors.ts";
import { log } from "../log.ts";
import { writeVerifyMetrics } from "../metrics.ts";
import { acquireLock, lockHolder } from "../state/lock.ts";
import { inStateDir, refuseRootInOthersStateDir } from "../state/state-dir.ts";
import { formatReport, recordVerify, type VerifyReport, verifyTables } from "../verify.ts";
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
    // It records what it found in state_dir, lock or not.
    if (!repair) refuseRootInOthersStateDir(config.state_dir, "verify");
    const running = repair ? null : lockHolder(config.state_dir);
    if (running) {
      // Its objects in flight, and the state it has not saved yet, look like differences.
      log.warn(
        `a run is in progress (${running.command ?? "a command"}${running.pid ? `, pid ${running.pid}` : ""}): what it is writing may show as differences; verify again once it has ended`,
      );
    }
    const started = performance.now();
    let exitCode: number = EXIT.failed;
    let report: VerifyReport | null = null;
    try {
      const target = createTarget(config);
      const glue =
        target instanceof S3Target ? new Glue(target.s3.client, config.datalake.database) : undefined;
      const { before, after, repaired } = await verifyTables(config, tables, target, {
        repair,
        glue,
        allTables: args.tables === undefined,
      });
      recordVerify(config, before, after, repair, repaired);
      const last = after ?? before;
      report = last;
      const ok = last.ok && repaired;
      if (globalsOf(args).json) {
        // Indented for a person; one line when appended to a log, as cron's line does, among the
        // JSON log lines.
        const indent = process.stdout.isTTY ? 2 : undefined;
        process.stdout.write(`${JSON.stringify({ ok, found: before, after }, null, indent)}\n`);
      } else {
        process.stdout.write(formatReport(before));
        if (after) process.stdout.write(`after the repair:\n${formatReport(after)}`);
      }
      exitCode = ok ? EXIT.ok : EXIT.failed;
      return exitCode;
    } catch (error) {
      // The exit code the command ends with: an unusable state_dir is said as such (cli.ts).
      exitCode = exitCodeFor(inStateDir(error));
      throw error;
    } finally {
      const seconds = Math.round(performance.now() - started) / 1000;
      const tables = report?.tables
        .filter((t) => t.skipped === null)
        .map((t) => ({ table: t.table, differences: t.findings.length, error: t.error !== null }));
      writeVerifyMetrics(config, { exitCode, seconds }, tables);
      lock?.release();
    }
  },
});
