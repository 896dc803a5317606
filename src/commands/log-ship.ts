import { defineCommand } from "citty";
import {
  GlueReach,
  glueFor,
  registersPartitions,
  registerTrackingLogPartition,
} from "../catalog/register.ts";
import { EXIT, exitCodeFor, UsageError } from "../errors.ts";
import { log } from "../log.ts";
import { logShipStatus, logshipDir } from "../logship/checkpoint.ts";
import { shipLogs } from "../logship/ship.ts";
import type { TrackingLogPartition } from "../logship/upload.ts";
import { commandFamilies, logFileFamilies, writeMetrics } from "../metrics.ts";
import { acquireLock } from "../state/lock.ts";
import { dryRunArgs, globalArgs, prepareFor } from "./shared.ts";

/**
 * --follow runs for weeks: its files' lag goes to the metrics textfile while it runs, at most
 * this often (each write is fsynced), not only when it stops.
 */
const FOLLOW_METRICS_EVERY_MS = 60_000;

export default defineCommand({
  meta: {
    name: "log-ship",
    description: "Ship the tracking logs to the datalake in gzip batches, checkpointing after each upload",
  },
  args: {
    ...globalArgs,
    ...dryRunArgs,
    once: { type: "boolean", description: "read every file to its end, upload, exit (cron; the default)" },
    follow: {
      type: "boolean",
      description: "keep tailing (a service); SIGTERM or SIGINT uploads what is buffered, then exits",
    },
    backfill: {
      type: "boolean",
      description:
        "also ship the rotated files older than the last run (history another shipper sent; when switching from Fluent Bit)",
    },
  },
  async run({ args }) {
    // Every line goes through JS (parse, filter, pseudonyms): the normal tier-up thresholds, not
    // the extraction's (scripts/build.sh); at 64 times them, shipping took 15-20% longer.
    Bun.unsafe.setJITPolicy(1);
    if (args.once && args.follow) throw new UsageError("--once and --follow cannot be used together");
    const config = await prepareFor(args, "log-ship");
    if (!config) return 0;
    const dryRun = args["dry-run"] === true;
    // Its own lock, beside its offsets: log-ship runs alongside `run`, never beside another log-ship.
    const lock = dryRun ? null : acquireLock(logshipDir(config.state_dir), "log-ship", config.state_dir);
    const started = performance.now();
    let exitCode: number = EXIT.failed;
    const stop = new AbortController();
    const onSignal = (signal: NodeJS.Signals) => {
      if (stop.signal.aborted) {
        log.warn(`${signal} again: exiting now; what was not uploaded is shipped by the next start`);
        process.exit(1);
      }
      log.info(`${signal}: uploading what is buffered, then exiting`);
      stop.abort();
    };
    // --once keeps the default: a signal ends it at once, which loses nothing (nothing is
    // committed before it is uploaded).
    const follow = args.follow === true;
    if (follow) {
      process.on("SIGTERM", onSignal);
      process.on("SIGINT", onSignal);
    }
    try {
      // Day partitions of the tracking-logs table: each registered when first written into;
      // one whose registration failed is sent again by the next log-ship.
      // One Glue client for the process, and what it learnt of Glue's reachability: Glue not
      // answering is said once, not once per day partition.
      const glue = registersPartitions(config) ? glueFor(config) : undefined;
      const reach = new GlueReach();
      let catalogued = dryRun || (await registerTrackingLogPartition(config, null, glue, reach));
      const onPartition = async (partition: TrackingLogPartition) => {
        if (!(await registerTrackingLogPartition(config, partition, glue, reach))) catalogued = false;
      };
      const backfill = args.backfill === true;
      let metricsWritten = Number.NEGATIVE_INFINITY;
      const onPass = () => {
        if (dryRun || performance.now() - metricsWritten < FOLLOW_METRICS_EVERY_MS) return;
        metricsWritten = performance.now();
        // The last finished log-ship's own figures stay until this one ends.
        writeMetrics(config, "log-ship", (previous) => [
          ...previous.filter((family) => !family.name.startsWith("panorama_log_")),
          ...logFileFamilies(logShipStatus(config)),
        ]);
      };
      const result = await shipLogs(config, {
        follow,
        dryRun,
        backfill,
        signal: stop.signal,
        onPartition,
        onPass,
      });
      exitCode = result.ok && catalogued ? EXIT.ok : EXIT.failed;
      return exitCode;
    } catch (error) {
      exitCode = exitCodeFor(error);
      throw error;
    } finally {
      if (!dryRun) {
        const seconds = Math.round(performance.now() - started) / 1000;
        writeMetrics(config, "log-ship", [
          ...commandFamilies("log-ship", { exitCode, seconds }),
          ...logFileFamilies(logShipStatus(config)),
        ]);
      }
      process.off("SIGTERM", onSignal);
      process.off("SIGINT", onSignal);
      lock?.release();
    }
  },
});
