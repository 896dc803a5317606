// What extract.ts plans to read of a table (planTable): its CSV columns, the partitions to
// read, the watermarks. In its own module because the unchanged-probe (unchanged-probe.ts), which
// extract.ts calls, reads the plan too.
import type { TableConfig } from "../config/types.ts";
import type { Cell } from "./mysql.ts";
import type { Column } from "./partition.ts";
import type { TableFacts } from "./schema-snapshot.ts";

export interface TablePlan {
  table: TableConfig;
  /** what information_schema said of the table when it was planned */
  facts: TableFacts;
  /** CSV columns: the fields minus the partition fields */
  columns: Column[];
  /** layout fields the table lacks, written empty */
  missing: string[];
  /** values of the partition fields, one tuple per partition; [[]] for an unpartitioned table */
  partitions: Cell[][];
  /** largest timestamp_field seen now, the next watermark */
  nextWatermark: string | null;
  /** the watermark whose overlap window chose the partitions; null when all are read */
  since: string | null;
  /** every partition is read (no watermark window) */
  full: boolean;
  /**
   * the table's newest timestamp is older than the watermark (or the table is empty): its data
   * went back (a restore from a backup), so every partition is read whatever its probe says
   */
  wentBack?: boolean;
}
