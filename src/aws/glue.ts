// The Glue Data Catalog calls panorama makes (JSON 1.1, `AWSGlue.<Operation>`), and nothing else.
// Shapes carry only the members we send or read; names are those of the Glue API.
import { PanoramaError } from "../errors.ts";
import { type AwsClient, AwsError } from "./client.ts";

export interface GlueColumn {
  Name: string;
  Type: string;
}

export interface StorageDescriptor {
  Columns: GlueColumn[];
  Location: string;
  InputFormat: string;
  OutputFormat: string;
  SerdeInfo: { SerializationLibrary: string; Parameters: Record<string, string> };
}

export interface TableInput {
  Name: string;
  TableType: string;
  Parameters: Record<string, string>;
  PartitionKeys: GlueColumn[];
  StorageDescriptor: StorageDescriptor;
}

/** What GetTable answers, as far as we read it. */
export interface GlueTable {
  Name: string;
  TableType?: string;
  Parameters?: Record<string, string>;
  PartitionKeys?: GlueColumn[];
  StorageDescriptor?: Partial<StorageDescriptor>;
}

export interface PartitionInput {
  Values: string[];
  StorageDescriptor: StorageDescriptor;
}

export interface PartitionError {
  PartitionValues?: string[];
  ErrorDetail?: { ErrorCode?: string; ErrorMessage?: string };
}

/** BatchCreatePartition takes at most this many partitions (PartitionInputList max). */
export const MAX_PARTITIONS_PER_CALL = 100;

/** BatchDeletePartition takes at most this many partitions (PartitionsToDelete max). */
export const MAX_PARTITIONS_PER_DELETE = 25;

/** A Glue call that failed: which call, on what, and what to do. */
export class GlueError extends PanoramaError {
  constructor(
    message: string,
    hint: string | undefined,
    readonly code: string,
    /** EntityNotFoundException: what was missing */
    readonly missing: "database" | "entity" | null,
    /** the failure as the AWS client saw it */
    readonly aws: AwsError,
  ) {
    super(message, hint);
  }

  /** Glue gave no answer at all (the client's retries spent): any other call would fail alike. */
  get unreachable(): boolean {
    return this.aws.unreachable;
  }
}

/** Glue answers EntityNotFoundException for both; only its message ("Database x not found.") tells. */
function missingDatabase(error: AwsError): boolean {
  return /(^|: )Database \S+ not found/i.test(error.message);
}

/** AwsError → GlueError with a hint that knows what the catalog was doing. */
function explain(error: unknown, database: string): never {
  if (!(error instanceof AwsError)) throw error;
  const missing =
    error.code === "EntityNotFoundException" ? (missingDatabase(error) ? "database" : "entity") : null;
  let hint = error.hint;
  if (missing === "database") {
    hint = `create the Glue database "${database}" (CREATE DATABASE in Athena) or check datalake.database`;
  } else if (missing === "entity") {
    hint =
      "create the catalog tables with `panorama catalog --create` (CUSTOM mode) or check the table names";
  }
  // AwsError's message already ends with its own hint when it has one.
  const message = `Glue ${error.message}`;
  throw new GlueError(
    hint && hint !== error.hint ? `${message}; ${hint}` : message,
    hint,
    error.code,
    missing,
    error,
  );
}

export class Glue {
  constructor(
    private readonly client: AwsClient,
    readonly database: string,
  ) {}

  private async call<T>(operation: string, body: object, resource: string): Promise<T> {
    try {
      return await this.client.json<T>("glue", `AWSGlue.${operation}`, body, resource);
    } catch (error) {
      explain(error, this.database);
    }
  }

  private tableResource(table: string): string {
    return `table ${this.database}.${table}`;
  }

  /** Throws a GlueError (EntityNotFound with its hint) when the database does not exist. */
  async getDatabase(): Promise<void> {
    await this.call("GetDatabase", { Name: this.database }, `database ${this.database}`);
  }

  /** The table, or null when it does not exist. */
  async getTable(name: string): Promise<GlueTable | null> {
    try {
      const answer = await this.call<{ Table: GlueTable }>(
        "GetTable",
        { DatabaseName: this.database, Name: name },
        this.tableResource(name),
      );
      return answer.Table;
    } catch (error) {
      if (error instanceof GlueError && error.missing === "entity") return null;
      throw error;
    }
  }

  async createTable(input: TableInput): Promise<void> {
    await this.call(
      "CreateTable",
      { DatabaseName: this.database, TableInput: input },
      this.tableResource(input.Name),
    );
  }

  async updateTable(input: TableInput): Promise<void> {
    await this.call(
      "UpdateTable",
      { DatabaseName: this.database, TableInput: input },
      this.tableResource(input.Name),
    );
  }

  /** false when there was no such table. */
  async deleteTable(name: string): Promise<boolean> {
    try {
      await this.call("DeleteTable", { DatabaseName: this.database, Name: name }, this.tableResource(name));
      return true;
    } catch (error) {
      if (error instanceof GlueError && error.missing === "entity") return false;
      throw error;
    }
  }

  /** Creates up to 100 partitions; the answer lists the entries that failed. */
  async batchCreatePartition(table: string, partitions: PartitionInput[]): Promise<PartitionError[]> {
    if (partitions.length > MAX_PARTITIONS_PER_CALL) {
      throw new Error(`BatchCreatePartition takes at most ${MAX_PARTITIONS_PER_CALL} partitions`);
    }
    const answer = await this.call<{ Errors?: PartitionError[] }>(
      "BatchCreatePartition",
      { DatabaseName: this.database, TableName: table, PartitionInputList: partitions },
      this.tableResource(table),
    );
    return answer.Errors ?? [];
  }

  /** Deletes up to 25 partitions; the answer lists the entries that failed. */
  async batchDeletePartition(table: string, values: string[][]): Promise<PartitionError[]> {
    if (values.length > MAX_PARTITIONS_PER_DELETE) {
      throw new Error(`BatchDeletePartition takes at most ${MAX_PARTITIONS_PER_DELETE} partitions`);
    }
    const answer = await this.call<{ Errors?: PartitionError[] }>(
      "BatchDeletePartition",
      {
        DatabaseName: this.database,
        TableName: table,
        PartitionsToDelete: values.map((v) => ({ Values: v })),
      },
      this.tableResource(table),
    );
    return answer.Errors ?? [];
  }

  /** The values of every partition of `table`, page by page. */
  async partitionValues(table: string): Promise<string[][]> {
    const values: string[][] = [];
    let token: string | undefined;
    do {
      const answer = await this.call<{ Partitions?: { Values?: string[] }[]; NextToken?: string }>(
        "GetPartitions",
        {
          DatabaseName: this.database,
          TableName: table,
          ExcludeColumnSchema: true,
          ...(token ? { NextToken: token } : {}),
        },
        this.tableResource(table),
      );
      for (const p of answer.Partitions ?? []) values.push(p.Values ?? []);
      token = answer.NextToken;
    } while (token);
    return values;
  }
}
