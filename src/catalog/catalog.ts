// `panorama catalog`: raw tables (Glue), typed views (Athena), partitions (Glue), drop, dry run
// and --print-ddl, for the selected tables of a config (DESIGN §6).
import type { Connection } from "mysql2";
import { Athena, type PollOptions } from "../aws/athena.ts";
import { AwsClient, type AwsClientOptions } from "../aws/client.ts";
import { Glue, GlueError } from "../aws/glue.ts";
import type { Config, FieldDef, TableConfig } from "../config/types.ts";
import { messageOf, PanoramaError } from "../errors.ts";
import { close, connect, tableColumns } from "../extract/mysql.ts";
import { log } from "../log.ts";
import { addPartitionDdl, createTableDdl, createViewDdl, dropDdl } from "./ddl.ts";
import { fieldsOf, type RawTable, type TableCatalog, tableCatalog, trackingLogsTable } from "./model.ts";
import { PartitionState } from "./partitions.ts";
import { partitionLocation, registerPending } from "./register.ts";
import { storageDescriptor, tableChange, tableInput } from "./tables.ts";
import { viewSql } from "./views.ts";

export interface CatalogPlan {
  tables: TableCatalog[];
  /** the tracking-logs table, when selected */
  logs: RawTable | null;
}

export interface ApplyOptions {
  dryRun: boolean;
  /**
   * Register the tracking-logs table's pending partitions too. log-ship registers its own, under
   * its own lock; `catalog` does it only when --tables names tracking_logs.
   */
  logPartitions: boolean;
}

export interface CatalogSteps {
  create: boolean;
  views: boolean;
  partitions: boolean;
  drop: boolean;
}

/** A table whose columns cannot be known (no fields in the config, MySQL unreachable). */
export class CatalogPlanError extends PanoramaError {}

/**
 * The catalog objects of `tables`. A MySQL table without configured fields takes its columns
 * from information_schema, as extraction does.
 */
export async function planCatalog(
  config: Config,
  tables: TableConfig[],
  withLogs: boolean,
): Promise<CatalogPlan> {
  let connection: Connection | null = null;
  const columnsOf = async (table: TableConfig): Promise<FieldDef[]> => {
    try {
      connection ??= await connect(config.mysql);
      const columns = await tableColumns(connection, config.mysql.database, table.name);
      if (!columns) throw new Error(`table ${config.mysql.database}.${table.name} does not exist`);
      // Every column, auth_user.password too: never read, but in the layout (DESIGN §9).
      return columns.map((c) => ({ name: c.name, type: c.type }));
    } catch (error) {
      throw new CatalogPlanError(
        `${table.name}: its fields are not in the config and MySQL could not tell them: ${messageOf(error)}`,
        "list the fields in the config (`panorama schema pull --write FILE` writes them out), or make MySQL reachable",
      );
    }
  };
  try {
    const planned: TableCatalog[] = [];
    for (const table of tables) planned.push(tableCatalog(config, table, await fieldsOf(table, columnsOf)));
    return { tables: planned, logs: withLogs ? trackingLogsTable(config) : null };
  } finally {
    if (connection) await close(connection);
  }
}

function rawTables(plan: CatalogPlan): RawTable[] {
  return [...plan.tables.map((t) => t.table), ...(plan.logs ? [plan.logs] : [])];
}

/** The Athena DDL equivalent to what `steps` would do. */
export function printDdl(config: Config, plan: CatalogPlan, steps: CatalogSteps): string {
  const db = config.datalake.database;
  const out: string[] = [`-- panorama catalog: database ${db}`];
  if (steps.drop) {
    for (const t of plan.tables)
      out.push(dropDdl(t.view.name, db, "VIEW"), dropDdl(t.table.name, db, "TABLE"));
    if (plan.logs) out.push(dropDdl(plan.logs.name, db, "TABLE"));
    return `${out.join("\n\n")}\n`;
  }
  if (steps.create) for (const table of rawTables(plan)) out.push(createTableDdl(table, db));
  if (steps.views) for (const t of plan.tables) out.push(createViewDdl(t.view, db));
  if (steps.partitions) {
    const state = new PartitionState(config.state_dir, db);
    for (const table of rawTables(plan)) {
      const refs = state.all(table.name);
      if (refs.length === 0) continue;
      out.push(refs.map((ref) => addPartitionDdl(table, db, ref, partitionLocation(config, ref))).join("\n"));
    }
  }
  return `${out.join("\n\n")}\n`;
}

export interface CatalogServices {
  glue: Glue;
  athena: Athena;
}

export function catalogServices(
  config: Config,
  options?: AwsClientOptions,
  poll?: PollOptions,
): CatalogServices {
  const client = new AwsClient(config, options);
  return {
    glue: new Glue(client, config.datalake.database),
    athena: new Athena(client, config.datalake.workgroup, config.datalake.database, poll),
  };
}

/** Applies `steps`; logs each object's outcome; false when any failed. */
export async function applyCatalog(
  config: Config,
  plan: CatalogPlan,
  steps: CatalogSteps,
  services: CatalogServices,
  options: ApplyOptions,
): Promise<boolean> {
  const { dryRun } = options;
  const { glue, athena } = services;
  const state = new PartitionState(config.state_dir, config.datalake.database);
  const db = config.datalake.database;
  const print = (line: string) => process.stdout.write(`${line}\n`);
  let ok = true;
  const fail = (what: string, error: unknown) => {
    ok = false;
    log.error(`${what}: ${messageOf(error)}`);
  };

  if (steps.drop) {
    for (const t of plan.tables) {
      await dropOne(t.view.name, "view");
      await dropOne(t.table.name, "table");
    }
    if (plan.logs) await dropOne(plan.logs.name, "table");
    return ok;
  }

  async function dropOne(name: string, kind: "table" | "view"): Promise<void> {
    if (dryRun) {
      print(`drop ${kind} ${db}.${name}`);
      return;
    }
    try {
      const existed = await glue.deleteTable(name);
      if (kind === "table") state.forget(name);
      log.info(existed ? `${kind} ${db}.${name} dropped` : `${kind} ${db}.${name} did not exist`);
    } catch (error) {
      fail(`drop ${kind} ${db}.${name}`, error);
    }
  }

  // Tables whose creation failed get no view.
  const broken = new Set<string>();
  if (steps.create) {
    // One call first, so that a missing database is said once, not once per table.
    await glue.getDatabase();
    for (const table of rawTables(plan)) {
      try {
        const existing = await glue.getTable(table.name);
        const change = tableChange(table, existing);
        if (dryRun) {
          print(
            change.action === "update"
              ? `update table ${db}.${table.name}: ${change.reason}`
              : `${change.action === "create" ? "create" : "unchanged"} table ${db}.${table.name}`,
          );
          continue;
        }
        if (change.action === "create") {
          await glue.createTable(tableInput(table));
          // A table made again (dropped outside panorama) has none of the partitions registered before.
          state.forget(table.name);
        }
        if (change.action === "update") await glue.updateTable(tableInput(table));
        state.setTemplate(table.name, table.partitionKeys, storageDescriptor(table));
        state.save(table.name);
        if (change.action === "none") log.info(`table ${db}.${table.name} is up to date`);
        else if (change.action === "create") log.success(`table ${db}.${table.name} created`);
        else log.success(`table ${db}.${table.name} updated: ${change.reason}`);
      } catch (error) {
        broken.add(table.name);
        fail(`table ${db}.${table.name}`, error);
      }
    }
  }

  if (steps.views && plan.tables.length > 0) {
    const workgroup = await athena.getWorkGroup();
    if (workgroup.state !== "ENABLED" || workgroup.outputLocation === "") {
      throw new PanoramaError(
        `Athena workgroup ${workgroup.name} ${workgroup.state !== "ENABLED" ? `is ${workgroup.state}` : "has no query result location"}: the views cannot be created`,
        workgroup.state !== "ENABLED"
          ? "enable the workgroup, or set datalake.workgroup to another"
          : "set the workgroup's query result location (Athena console → Workgroups → Edit), e.g. s3://<athena_results_bucket>/",
      );
    }
    for (const t of plan.tables) {
      if (broken.has(t.table.name)) continue;
      if (dryRun) {
        print(`replace view ${db}.${t.view.name}`);
        continue;
      }
      try {
        await athena.run(viewSql(t.view, db), `view ${db}.${t.view.name}`);
        log.success(`view ${db}.${t.view.name} created or replaced`);
      } catch (error) {
        fail(`view ${db}.${t.view.name}`, error);
      }
    }
  }

  if (steps.partitions) {
    const names = [
      ...plan.tables.map((t) => t.table),
      ...(options.logPartitions && plan.logs ? [plan.logs] : []),
    ]
      .map((t) => t.name)
      .filter((n) => !broken.has(n));
    // The hourly run trusts the state; asked for the partitions, this command looks at what Glue
    // has, so that what Glue lost since (deleted by hand, the table made again elsewhere) is
    // registered again, and the dry run shows it.
    for (const name of names) {
      const known = state.all(name);
      if (known.length === 0) continue;
      let inGlue: string[][];
      try {
        inGlue = await glue.partitionValues(name);
      } catch (error) {
        // A table Glue does not have: registerPending says so, once for all of them.
        if (dryRun) throw error;
        if (!(error instanceof GlueError && error.missing === "entity"))
          fail(`partitions of ${db}.${name}`, error);
        continue;
      }
      if (dryRun) {
        const there = new Set(inGlue.map((v) => JSON.stringify(v)));
        for (const ref of known) {
          if (there.has(JSON.stringify(ref.values))) continue;
          print(
            `register partition ${db}.${name} (${ref.values.join(", ")}) ${partitionLocation(config, ref)}`,
          );
        }
        continue;
      }
      const lost = state.forgetAbsent(name, inGlue);
      if (lost > 0) {
        log.warn(
          `${lost} partition(s) of ${db}.${name} were registered but Glue no longer has them: registering them again`,
        );
      }
    }
    if (!dryRun) {
      if (!(await registerPending(config, state, names, glue))) ok = false;
    }
  }
  return ok;
}
