// The Athena calls panorama makes (JSON 1.1, `AmazonAthena.<Operation>`): run one statement in
// the workgroup and wait for its final state. A FAILED or CANCELLED query is an AthenaError that
// carries Athena's own reason.
import { randomUUID } from "node:crypto";
import { PanoramaError } from "../errors.ts";
import { type AwsClient, AwsError } from "./client.ts";

type QueryState = "QUEUED" | "RUNNING" | "SUCCEEDED" | "FAILED" | "CANCELLED";

interface QueryExecution {
  QueryExecutionId: string;
  Status?: {
    State?: QueryState;
    StateChangeReason?: string;
    AthenaError?: { ErrorMessage?: string; ErrorType?: number; ErrorCategory?: number };
  };
}

export interface WorkGroupInfo {
  name: string;
  state: string;
  /** the workgroup's query result location, "" when it has none */
  outputLocation: string;
  /** queries may not choose their own result location */
  enforced: boolean;
}

/** An Athena call or query that failed: what ran, where, and Athena's reason. */
export class AthenaError extends PanoramaError {
  constructor(
    message: string,
    hint: string | undefined,
    readonly code: string,
    /** the failed call as the AWS client saw it; null for a query that ran and failed */
    readonly aws: AwsError | null = null,
  ) {
    super(message, hint);
  }
}

/** Athena says a missing workgroup only in its message: "WorkGroup x is not found." */
const MISSING_WORKGROUP = /WorkGroup \S+ is not found/i;

function explain(error: unknown, workgroup: string): never {
  if (!(error instanceof AwsError)) throw error;
  if (error.code === "InvalidRequestException" && MISSING_WORKGROUP.test(error.detail)) {
    throw new AthenaError(
      `Athena ${error.message}`,
      `check datalake.workgroup ("${workgroup}"): \`aws athena list-work-groups\` lists those of the region, or create it with a query result location`,
      error.code,
      error,
    );
  }
  throw new AthenaError(`Athena ${error.message}`, error.hint, error.code, error);
}

export interface PollOptions {
  /** first wait between GetQueryExecution calls; doubles up to maxPollMs */
  pollMs?: number;
  maxPollMs?: number;
  /** give up after this long (the query keeps running in Athena) */
  timeoutMs?: number;
}

export class Athena {
  constructor(
    private readonly client: AwsClient,
    readonly workgroup: string,
    readonly database: string,
    private readonly poll: PollOptions = {},
  ) {}

  private async call<T>(operation: string, body: object, resource: string): Promise<T> {
    try {
      return await this.client.json<T>("athena", `AmazonAthena.${operation}`, body, resource);
    } catch (error) {
      explain(error, this.workgroup);
    }
  }

  async getWorkGroup(): Promise<WorkGroupInfo> {
    const answer = await this.call<{
      WorkGroup?: {
        Name?: string;
        State?: string;
        Configuration?: {
          ResultConfiguration?: { OutputLocation?: string };
          EnforceWorkGroupConfiguration?: boolean;
        };
      };
    }>("GetWorkGroup", { WorkGroup: this.workgroup }, `workgroup ${this.workgroup}`);
    const wg = answer.WorkGroup ?? {};
    return {
      name: wg.Name ?? this.workgroup,
      state: wg.State ?? "ENABLED",
      outputLocation: wg.Configuration?.ResultConfiguration?.OutputLocation ?? "",
      enforced: wg.Configuration?.EnforceWorkGroupConfiguration === true,
    };
  }

  /**
   * Runs `sql` in the workgroup with the database as context and waits for its final state.
   * `what` names the statement in messages ("view openedx_table_x").
   */
  async run(sql: string, what: string): Promise<string> {
    const { QueryExecutionId: id } = await this.call<{ QueryExecutionId: string }>(
      "StartQueryExecution",
      {
        QueryString: sql,
        // Makes a retried StartQueryExecution (after a lost answer) start the query only once.
        ClientRequestToken: randomUUID(),
        QueryExecutionContext: { Database: this.database },
        WorkGroup: this.workgroup,
      },
      `${what} (workgroup ${this.workgroup})`,
    );
    const started = Date.now();
    let wait = this.poll.pollMs ?? 200;
    const maxWait = this.poll.maxPollMs ?? 2000;
    const timeout = this.poll.timeoutMs ?? 10 * 60_000;
    for (;;) {
      const { QueryExecution: q } = await this.call<{ QueryExecution: QueryExecution }>(
        "GetQueryExecution",
        { QueryExecutionId: id },
        `query ${id} (${what})`,
      );
      const state = q.Status?.State ?? "QUEUED";
      if (state === "SUCCEEDED") return id;
      if (state === "FAILED" || state === "CANCELLED") {
        const reason =
          q.Status?.AthenaError?.ErrorMessage || q.Status?.StateChangeReason || "no reason given";
        throw new AthenaError(
          `Athena query for ${what} ${state}: ${reason} (query ${id}, workgroup ${this.workgroup})`,
          state === "CANCELLED"
            ? "someone cancelled it: run again"
            : "the query is in the Athena console's history",
          state,
        );
      }
      if (Date.now() - started > timeout) {
        throw new AthenaError(
          `Athena query for ${what} still ${state} after ${Math.round(timeout / 1000)} s (query ${id})`,
          "look at it in the Athena console; run again once it is done",
          "Timeout",
        );
      }
      await Bun.sleep(wait);
      wait = Math.min(maxWait, wait * 2);
    }
  }
}
