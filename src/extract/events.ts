// What an extraction tells its caller: the events of its progress (ExtractEvents) and each
// table's result (TableSummary). Shared by the MySQL extractor (extract.ts), course structures
// (course-structures.ts) and their readers (run, progress, metrics), so that none of them
// imports another's module for these shapes.
export interface ExtractEvents {
  /** the table's plan is being made: its columns, its partitions, which of them changed */
  tablePlanning?(table: string): void;
  tableStarted?(table: string, partitions: number): void;
  /** rows streamed into the spool so far, as they come (inside a partition too) */
  rowsRead?(table: string, rows: number): void;
  partitionDone?(table: string, rows: number): void;
  tableDone?(summary: TableSummary): void;
  /** a cause that stops every MySQL table (the server cannot be reached): said once, before them */
  sharedFailure?(message: string): void;
}

export interface TableSummary {
  table: string;
  rows: number;
  files: number;
  bytes: number;
  seconds: number;
  /** partitions extracted, of how many the table has */
  partitions: number;
  watermark: string | null;
  error: string | null;
  /** a preset table this database does not have: skipped, not a failure (DESIGN §10) */
  absent?: boolean;
  /** the error follows from a cause logged once for the run (MySQL or the datalake unreachable) */
  shared?: boolean;
  /** --dry-run: the files that would be written */
  planned?: { key: string; rows: number; bytes: number }[];
  /** every partition of the table was read: what it did not produce is stale (DESIGN §7a) */
  full?: boolean;
  /** the keys of the files it produced */
  keys?: string[];
  /**
   * a table that lists every partition on each run (no watermark window), some of them not read:
   * the keys of those, whose objects stay; the rest of what the read did not produce is stale
   */
  kept?: string[];
  /** partitions (1: the unpartitioned table) not read: unchanged since their last read (DESIGN §7) */
  unchanged?: number;
}
