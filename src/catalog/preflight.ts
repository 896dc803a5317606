// Raw tables that already exist (made by upstream panorama-elt, or an older panorama) compared
// with the layout before anything is written under them (DESIGN §6): CSV files stored under a
// table whose columns do not line up would be read into the wrong columns. `run` and `upload`
// hold such tables back; `doctor` and `catalog` report the same comparison.
import type { Connection } from "mysql2";
import { type Glue, GlueError } from "../aws/glue.ts";
import type { Config, FieldDef, TableConfig } from "../config/types.ts";
import { messageOf } from "../errors.ts";
import { close, connect, tableColumns } from "../extract/mysql.ts";
import { log } from "../log.ts";
import { fieldsOf, tableCatalog } from "./model.ts";
import { type GlueReach, glueUnreachable } from "./register.ts";
import { TableMismatchError, tableChange } from "./tables.ts";

export interface RawTableComparison {
  /** tables whose raw table exists and lines up (possibly with columns to append) */
  aligned: string[];
  /** tables whose raw table does not exist yet */
  missing: string[];
  /** configured table → why its raw table cannot take the layout */
  misaligned: Map<string, TableMismatchError>;
  /** tables whose layout could not be known (a MySQL table without fields, MySQL unreachable) */
  unknown: Map<string, string>;
}

/**
 * Compares the raw table of each of `tables` with its layout: one GetTable each. A Glue failure
 * (network, permission) throws; the caller decides whether that stops it.
 */
export async function compareRawTables(
  config: Config,
  tables: TableConfig[],
  glue: Glue,
): Promise<RawTableComparison> {
  const result: RawTableComparison = { aligned: [], missing: [], misaligned: new Map(), unknown: new Map() };
  let connection: Connection | null = null;
  // Every column, auth_user.password too: never read, but in the layout (DESIGN §9).
  const columnsOf = async (table: TableConfig): Promise<FieldDef[]> => {
    connection ??= await connect(config.mysql);
    const columns = await tableColumns(connection, config.mysql.database, table.name);
    if (!columns) throw new Error(`table ${config.mysql.database}.${table.name} does not exist`);
    return columns.map((c) => ({ name: c.name, type: c.type }));
  };
  try {
    for (const table of tables) {
      let wanted: ReturnType<typeof tableCatalog>["table"];
      try {
        wanted = tableCatalog(config, table, await fieldsOf(table, columnsOf)).table;
      } catch (error) {
        result.unknown.set(table.name, messageOf(error));
        continue;
      }
      const existing = await glue.getTable(wanted.name);
      if (!existing) {
        result.missing.push(table.name);
        continue;
      }
      try {
        tableChange(wanted, existing);
        result.aligned.push(table.name);
      } catch (error) {
        if (!(error instanceof TableMismatchError)) throw error;
        result.misaligned.set(table.name, error);
      }
    }
  } finally {
    if (connection) await close(connection);
  }
  return result;
}

/**
 * For `run` and `upload`: the tables not to write under, each with its error (logged). When Glue
 * cannot be asked the data is still stored, as before the check existed: a warning says the
 * comparison waits for the next run (and `doctor`/`catalog` make it too).
 */
export async function tablesToHoldBack(
  config: Config,
  tables: TableConfig[],
  glue: Glue | undefined,
  reach?: GlueReach,
): Promise<Map<string, TableMismatchError>> {
  if (!glue || tables.length === 0) return new Map();
  try {
    const { misaligned } = await compareRawTables(config, tables, glue);
    return misaligned;
  } catch (error) {
    if (error instanceof GlueError && error.unreachable) {
      // Said once for the run: its registration, after the uploads, does not wait for Glue again.
      reach?.unreachable();
      log.error(
        `${glueUnreachable(error)}; the raw tables are compared with the layout, and the partitions registered, by the next run`,
        { code: error.aws.code },
      );
      return new Map();
    }
    log.warn(
      `could not compare the raw tables with the layout (the next run tries again): ${messageOf(error)}`,
    );
    return new Map();
  }
}
