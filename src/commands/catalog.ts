import { defineCommand } from "citty";
import {
  applyCatalog,
  type CatalogSteps,
  catalogServices,
  planCatalog,
  printDdl,
} from "../catalog/catalog.ts";
import { TRACKING_LOGS } from "../catalog/model.ts";
import { type Job, modeAllows } from "../config/modes.ts";
import type { Config } from "../config/types.ts";
import { UsageError } from "../errors.ts";
import { log } from "../log.ts";
import { acquireLock } from "../state/lock.ts";
import { dryRunArgs, globalArgs, prepareFor, selectNamedTables, splitNames, tablesArgs } from "./shared.ts";

/** --tables, where `tracking_logs` names the tracking-logs table. */
function selection(config: Config, list: string | undefined) {
  const names = splitNames(list);
  const shipsLogs = modeAllows(config.mode, "log-ship").allowed;
  if (names.length === 0) return { tables: config.tables, withLogs: shipsLogs, logsNamed: false };
  const others = names.filter((n) => n !== TRACKING_LOGS);
  return {
    tables: others.length > 0 ? selectNamedTables(config, others) : [],
    withLogs: names.includes(TRACKING_LOGS),
    logsNamed: names.includes(TRACKING_LOGS),
  };
}

/** The steps asked for, or those the mode allows when none is; each one the mode forbids is said. */
function stepsFor(config: Config, asked: CatalogSteps, printing: boolean): CatalogSteps {
  const any = asked.create || asked.views || asked.partitions;
  const wanted = any ? asked : { create: true, views: true, partitions: true, drop: false };
  // --print-ddl changes nothing: it prints everything asked, whatever the mode.
  if (printing) return { ...wanted, drop: asked.drop };
  const gate = (on: boolean, job: Job, explicit: boolean): boolean => {
    if (!on) return false;
    const permission = modeAllows(config.mode, job);
    if (permission.allowed) return true;
    if (explicit) log.info(permission.reason);
    return false;
  };
  return {
    create: gate(wanted.create, "catalog-create", any),
    views: gate(wanted.views, "catalog-views", any),
    partitions: gate(wanted.partitions, "catalog-partitions", any),
    drop: gate(asked.drop, "catalog-create", true),
  };
}

export default defineCommand({
  meta: {
    name: "catalog",
    description:
      "Create or update the Glue tables and Athena views, register new partitions, or print their DDL",
  },
  args: {
    ...globalArgs,
    ...tablesArgs,
    create: {
      type: "boolean",
      description: "create the raw tables, or update them when columns were appended",
    },
    views: { type: "boolean", description: "create or replace the typed views (Athena)" },
    partitions: { type: "boolean", description: "register the partitions not registered yet" },
    drop: { type: "boolean", description: "drop the tables and views (the data stays); needs --yes" },
    yes: { type: "boolean", description: "confirm --drop" },
    "print-ddl": { type: "boolean", description: "print the equivalent Athena DDL instead of calling AWS" },
    ...dryRunArgs,
  },
  async run({ args }) {
    const printing = args["print-ddl"] === true;
    const dryRun = args["dry-run"] === true;
    if (args.drop && (args.create || args.views || args.partitions)) {
      throw new UsageError("--drop cannot be combined with --create, --views or --partitions");
    }
    if (args.drop && !args.yes && !printing && !dryRun) {
      throw new UsageError(
        "--drop removes the catalog tables and views: add --yes to confirm (the data in the datalake stays)",
      );
    }
    const config = await prepareFor(args, "catalog-partitions");
    if (!config) return 0;
    const { tables, withLogs, logsNamed } = selection(config, args.tables);
    const steps = stepsFor(
      config,
      { create: !!args.create, views: !!args.views, partitions: !!args.partitions, drop: !!args.drop },
      printing,
    );
    const plan = await planCatalog(config, tables, withLogs);
    if (printing) {
      process.stdout.write(printDdl(config, plan, steps));
      return 0;
    }
    if (config.datalake.target === "local") {
      log.info(
        'a local datalake (datalake.target = "local") has no catalog: nothing to do; --print-ddl prints the DDL',
      );
      return 0;
    }
    if (!steps.create && !steps.views && !steps.partitions && !steps.drop) return 0;
    // The partition state is shared with `run`: hold its lock while it changes.
    const lock = dryRun ? null : acquireLock(config.state_dir, "catalog");
    try {
      const options = { dryRun, logPartitions: logsNamed };
      return (await applyCatalog(config, plan, steps, catalogServices(config), options)) ? 0 : 1;
    } finally {
      lock?.release();
    }
  },
});
