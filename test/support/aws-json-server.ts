// A loopback stand-in for AWS Glue and Athena (there is no AWS in the tests). It speaks their
// JSON 1.1 protocol (POST /, X-Amz-Target) on one port, and:
// - verifies every request's SigV4 signature with test/support/sigv4.ts (independent of the
//   aws4fetch signer the code uses) and refuses a bad one as AWS does (403 + JSON error);
// - validates every request body against the official API models, read at test time from
//   botocore's data (Debian's python3-botocore): required members, types, enums, lengths, list
//   limits (100 partitions per BatchCreatePartition, 25 per BatchDeletePartition), unknown
//   members → ValidationException;
// - keeps databases, tables, partitions and query executions in memory with Glue's answers
//   (EntityNotFoundException, AlreadyExistsException, per-entry Errors of BatchCreatePartition
//   and BatchDeletePartition);
// - runs Athena statements by recording them: CREATE OR REPLACE VIEW is parsed enough to be
//   judged plausible and stored as a Glue VIRTUAL_VIEW, its table must exist; tests can make a
//   query FAIL with a reason; GetQueryExecution goes QUEUED → RUNNING → final state;
// - records each action with the IAM resources it touches, those Athena touches on the caller's
//   behalf included (Glue for the view, S3 for the results), for the policy consistency test.
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { testEnv } from "./env.ts";
import { type SigV4ErrorCode, verifySigV4 } from "./sigv4.ts";

// ---------------------------------------------------------------- API models (botocore)

interface Shape {
  type: string;
  required?: string[];
  members?: Record<string, { shape: string }>;
  member?: { shape: string };
  key?: { shape: string };
  value?: { shape: string };
  enum?: string[];
  min?: number;
  max?: number;
  pattern?: string;
}

interface ServiceModel {
  metadata: { targetPrefix: string };
  operations: Record<string, { input?: { shape: string } }>;
  shapes: Record<string, Shape>;
}

function botocoreData(): string {
  const debian = "/usr/lib/python3/dist-packages/botocore/data";
  if (existsSync(debian)) return debian;
  const dir = execFileSync(
    "python3",
    ["-c", "import botocore,os;print(os.path.dirname(botocore.__file__))"],
    {
      encoding: "utf8",
    },
  ).trim();
  return join(dir, "data");
}

let models: { glue: ServiceModel; athena: ServiceModel } | null = null;

export function loadModels(): { glue: ServiceModel; athena: ServiceModel } {
  if (!models) {
    const data = botocoreData();
    // Recent botocore releases (pip) ship their models gzipped; Debian's package ships them plain.
    const read = (path: string): ServiceModel => {
      const file = join(data, path);
      const text = existsSync(file)
        ? readFileSync(file, "utf8")
        : gunzipSync(readFileSync(`${file}.gz`)).toString("utf8");
      return JSON.parse(text) as ServiceModel;
    };
    models = {
      glue: read("glue/2017-03-31/service-2.json"),
      athena: read("athena/2017-05-18/service-2.json"),
    };
  }
  return models;
}

const patterns = new Map<string, RegExp | null>();
function patternOf(source: string): RegExp | null {
  if (!patterns.has(source)) {
    try {
      patterns.set(source, new RegExp(`^(?:${source})$`, "u"));
    } catch {
      // Java-only syntax (surrogate ranges): not checked.
      patterns.set(source, null);
    }
  }
  return patterns.get(source) ?? null;
}

/** Every violation of `shapeName` by `value`, worded like AWS's "1 validation error detected". */
export function validate(model: ServiceModel, shapeName: string, value: unknown, path: string): string[] {
  const shape = model.shapes[shapeName];
  if (!shape) return [`${path}: unknown shape ${shapeName}`];
  const errors: string[] = [];
  const bad = (what: string) => errors.push(`Value at '${path}' failed to satisfy constraint: ${what}`);
  switch (shape.type) {
    case "structure": {
      if (typeof value !== "object" || value === null || Array.isArray(value)) {
        bad("Member must be a structure");
        break;
      }
      const record = value as Record<string, unknown>;
      for (const name of shape.required ?? []) {
        if (record[name] === undefined || record[name] === null) {
          errors.push(
            `Value null at '${path}${path ? "." : ""}${name}' failed to satisfy constraint: Member must not be null`,
          );
        }
      }
      for (const [name, member] of Object.entries(record)) {
        const def = shape.members?.[name];
        if (!def) {
          errors.push(`Unknown member '${name}' at '${path || "request"}'`);
          continue;
        }
        if (member === null || member === undefined) continue;
        errors.push(...validate(model, def.shape, member, `${path}${path ? "." : ""}${name}`));
      }
      break;
    }
    case "list": {
      if (!Array.isArray(value)) {
        bad("Member must be a list");
        break;
      }
      if (shape.min !== undefined && value.length < shape.min)
        bad(`Member must have length greater than or equal to ${shape.min}`);
      if (shape.max !== undefined && value.length > shape.max)
        bad(`Member must have length less than or equal to ${shape.max}`);
      for (const [i, item] of value.entries()) {
        errors.push(...validate(model, shape.member!.shape, item, `${path}.${i + 1}.member`));
      }
      break;
    }
    case "map": {
      if (typeof value !== "object" || value === null || Array.isArray(value)) {
        bad("Member must be a map");
        break;
      }
      for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
        errors.push(...validate(model, shape.key!.shape, k, `${path}.key`));
        errors.push(...validate(model, shape.value!.shape, v, `${path}.${k}`));
      }
      break;
    }
    case "string": {
      if (typeof value !== "string") {
        bad("Member must be a string");
        break;
      }
      const length = [...value].length;
      if (shape.min !== undefined && length < shape.min)
        bad(`Member must have length greater than or equal to ${shape.min}`);
      if (shape.max !== undefined && length > shape.max)
        bad(`Member must have length less than or equal to ${shape.max}`);
      if (shape.enum && !shape.enum.includes(value))
        bad(`Member must satisfy enum value set: [${shape.enum.join(", ")}]`);
      const re = shape.pattern ? patternOf(shape.pattern) : null;
      if (re && !re.test(value)) bad(`Member must satisfy regular expression pattern: ${shape.pattern}`);
      break;
    }
    case "integer":
    case "long":
    case "double":
    case "float": {
      if (
        typeof value !== "number" ||
        (shape.type !== "double" && shape.type !== "float" && !Number.isInteger(value))
      ) {
        bad(`Member must be a ${shape.type}`);
        break;
      }
      if (shape.min !== undefined && value < shape.min)
        bad(`Member must have value greater than or equal to ${shape.min}`);
      if (shape.max !== undefined && value > shape.max)
        bad(`Member must have value less than or equal to ${shape.max}`);
      break;
    }
    case "boolean":
      if (typeof value !== "boolean") bad("Member must be a boolean");
      break;
    case "timestamp":
      if (typeof value !== "number" && typeof value !== "string") bad("Member must be a timestamp");
      break;
    case "blob":
      if (typeof value !== "string") bad("Member must be base64 text");
      break;
    default:
      bad(`unsupported shape type ${shape.type}`);
  }
  return errors;
}

// ---------------------------------------------------------------- state

/** One AWS action as IAM sees it: what was done, on which ARNs, and by whom. */
export interface RecordedAction {
  /** "glue:CreateTable", "athena:StartQueryExecution", "s3:PutObject" */
  action: string;
  resources: string[];
  /** true when Athena did it with the caller's permissions (view DDL, query results) */
  onBehalf: boolean;
  status: number;
}

interface StoredTable {
  table: Record<string, unknown> & { Name: string; PartitionKeys?: { Name: string }[] };
  partitions: Map<string, Record<string, unknown>>;
}

interface QueryRecord {
  id: string;
  sql: string;
  database: string;
  workgroup: string;
  polls: number;
  final: "SUCCEEDED" | "FAILED";
  reason: string;
}

export interface AwsJsonServerOptions {
  accessKeyId: string;
  secretAccessKey: string;
  region?: string;
  accountId?: string;
  /** databases that exist from the start */
  databases?: string[];
  /** workgroup name → its result location ("" = none) */
  workgroups?: Record<string, string>;
  /**
   * Tables that exist without a CreateTable, as if an earlier `panorama catalog` had made them:
   * the definition of table `name` in an existing database, or null when it does not exist.
   */
  existingTable?: (name: string) => StoredTable["table"] | null;
  /** How far the server's clock is ahead of this process's (negative: behind); default 0. */
  clockOffsetMs?: number;
}

/**
 * A table as an earlier `panorama catalog` leaves it, for `existingTable`: a CSV table
 * partitioned by `partitionKeys` (strings), its columns left out (registration does not read them).
 */
export function existingCsvTable(name: string, partitionKeys: string[]): StoredTable["table"] {
  return {
    Name: name,
    PartitionKeys: partitionKeys.map((Name) => ({ Name, Type: "string" })),
    StorageDescriptor: {
      Columns: [],
      Location: "s3://x/",
      InputFormat: "org.apache.hadoop.mapred.TextInputFormat",
      OutputFormat: "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat",
      SerdeInfo: { SerializationLibrary: "org.apache.hadoop.hive.serde2.OpenCSVSerde", Parameters: {} },
    },
  };
}

export interface AwsJsonServer {
  url: string;
  actions: RecordedAction[];
  queries: QueryRecord[];
  /** Glue calls by operation name, for counting */
  calls(operation?: string): number;
  table(database: string, name: string): StoredTable["table"] | undefined;
  partitions(database: string, name: string): Record<string, unknown>[];
  /** The next query whose SQL matches fails with `reason` (Athena's own wording is up to the test). */
  failQuery(match: RegExp, reason: string): void;
  /** Sees every BatchCreatePartition entry until removed; a non-null answer is the error code that entry gets. */
  failPartitions(hook: ((values: string[]) => string | null) | null): void;
  addDatabase(name: string): void;
  reset(): void;
  stop(): Promise<void>;
}

/** YYYYMMDD'T'HHMMSS'Z', as X-Amz-Date and AWS's messages write a time. */
function amzTime(date: Date): string {
  return date.toISOString().replace(/[-:]/g, "").replace(/\.\d+/, "");
}

/**
 * What AWS's JSON services (Glue, Athena, STS) answer to a request dated more than 15 minutes
 * from their clock: an InvalidSignatureException saying so, not S3's RequestTimeTooSkewed text.
 */
function skewMessage(amzDate: string, now: Date): string {
  const minutes = 15;
  const request = new Date(
    amzDate.replace(/^(\d{4})(\d\d)(\d\d)T(\d\d)(\d\d)(\d\d)Z$/, "$1-$2-$3T$4:$5:$6Z"),
  );
  const bound = new Date(now.getTime() + (request > now ? 1 : -1) * minutes * 60_000);
  return request > now
    ? `Signature not yet current: ${amzDate} is still later than ${amzTime(bound)} (${amzTime(now)} + ${minutes} min.)`
    : `Signature expired: ${amzDate} is now earlier than ${amzTime(bound)} (${amzTime(now)} - ${minutes} min.)`;
}

const JSON_ERRORS: Partial<Record<SigV4ErrorCode, string>> = {
  MissingAuthenticationToken: "MissingAuthenticationTokenException",
  InvalidAccessKeyId: "UnrecognizedClientException",
  SignatureDoesNotMatch: "InvalidSignatureException",
  RequestTimeTooSkewed: "InvalidSignatureException",
};

class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly type: string,
    message: string,
  ) {
    super(message);
  }
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => resolve(Buffer.concat(chunks)));
    req.on("error", reject);
  });
}

/** Split at top-level commas (outside parentheses and quotes). */
function topLevelItems(text: string): string[] | null {
  const items: string[] = [];
  let depth = 0;
  let quote: string | null = null;
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quote) {
      if (c === quote) {
        if (text[i + 1] === quote) i++;
        else quote = null;
      }
      continue;
    }
    if (c === "'" || c === '"') quote = c;
    else if (c === "(") depth++;
    else if (c === ")") {
      depth--;
      if (depth < 0) return null;
    } else if (c === "," && depth === 0) {
      items.push(text.slice(start, i).trim());
      start = i + 1;
    }
  }
  if (quote || depth !== 0) return null;
  items.push(text.slice(start).trim());
  return items;
}

const IDENT = `"((?:[^"]|"")+)"`;
const VIEW_RE = new RegExp(
  String.raw`^\s*CREATE\s+OR\s+REPLACE\s+VIEW\s+(?:${IDENT}\.)?${IDENT}\s+AS\s+SELECT\s+([\s\S]+?)\s+FROM\s+(?:${IDENT}\.)?${IDENT}\s*;?\s*$`,
  "i",
);

/** The view a CREATE OR REPLACE VIEW defines, or why Athena would refuse it. */
export function parseView(
  sql: string,
):
  | { database?: string; view: string; columns: string[]; fromDatabase?: string; from: string }
  | { error: string } {
  const m = VIEW_RE.exec(sql);
  if (!m)
    return {
      error:
        "line 1:1: mismatched input. Expecting: CREATE OR REPLACE VIEW <name> AS SELECT ... FROM <table>",
    };
  const unq = (s: string | undefined) => (s === undefined ? undefined : s.replaceAll('""', '"'));
  const items = topLevelItems(m[3]!);
  if (!items) return { error: "line 1:1: unbalanced parentheses or quotes in the select list" };
  const columns: string[] = [];
  for (const item of items) {
    const a = /\s+AS\s+"((?:[^"]|"")+)"$/i.exec(item);
    if (!a || item.slice(0, a.index).trim() === "")
      return { error: `line 1:1: select item without a column alias: ${item}` };
    columns.push(a[1]!.replaceAll('""', '"'));
  }
  if (new Set(columns).size !== columns.length)
    return { error: "line 1:1: duplicate column names in the view" };
  return { database: unq(m[1]), view: unq(m[2])!, columns, fromDatabase: unq(m[4]), from: unq(m[5])! };
}

export async function startAwsJsonServer(options: AwsJsonServerOptions): Promise<AwsJsonServer> {
  const { glue: glueModel, athena: athenaModel } = loadModels();
  const region = options.region ?? "us-east-1";
  const account = options.accountId ?? "123456789012";
  const databases = new Map<string, Map<string, StoredTable>>();
  for (const name of options.databases ?? []) databases.set(name, new Map());
  const workgroups = options.workgroups ?? { primary: "" };
  const queries: QueryRecord[] = [];
  const actions: RecordedAction[] = [];
  const failures: { match: RegExp; reason: string }[] = [];
  let partitionHook: ((values: string[]) => string | null) | null = null;

  const arn = (service: string, resource: string) => `arn:aws:${service}:${region}:${account}:${resource}`;
  const glueArns = (db: string, table?: string) => [
    arn("glue", "catalog"),
    arn("glue", `database/${db}`),
    ...(table === undefined ? [] : [arn("glue", `table/${db}/${table}`)]),
  ];

  function database(name: string): Map<string, StoredTable> {
    const db = databases.get(name);
    if (!db) throw new ApiError(400, "EntityNotFoundException", `Database ${name} not found.`);
    return db;
  }
  function stored(db: string, name: string): StoredTable {
    const tables = database(db);
    const key = name.toLowerCase();
    let t = tables.get(key);
    const implicit = t ? null : (options.existingTable?.(key) ?? null);
    if (implicit) {
      t = { table: { ...implicit, Name: key }, partitions: new Map() };
      tables.set(key, t);
    }
    if (!t) throw new ApiError(400, "EntityNotFoundException", `Table ${name} not found.`);
    return t;
  }

  type Handler = (body: Record<string, unknown>, record: (resources: string[]) => void) => unknown;

  const glue: Record<string, Handler> = {
    GetDatabase(body, record) {
      const name = String(body.Name);
      record(glueArns(name));
      database(name);
      return { Database: { Name: name, CatalogId: account } };
    },
    GetTable(body, record) {
      const db = String(body.DatabaseName);
      record(glueArns(db, String(body.Name)));
      return { Table: { ...stored(db, String(body.Name)).table, DatabaseName: db } };
    },
    CreateTable(body, record) {
      const db = String(body.DatabaseName);
      const input = body.TableInput as StoredTable["table"];
      const name = input.Name.toLowerCase();
      record(glueArns(db, name));
      const tables = database(db);
      if (tables.has(name)) throw new ApiError(400, "AlreadyExistsException", "Table already exists.");
      tables.set(name, { table: { ...input, Name: name }, partitions: new Map() });
      return {};
    },
    UpdateTable(body, record) {
      const db = String(body.DatabaseName);
      const input = body.TableInput as StoredTable["table"];
      record(glueArns(db, input.Name.toLowerCase()));
      const t = stored(db, input.Name);
      t.table = { ...input, Name: input.Name.toLowerCase() };
      return {};
    },
    DeleteTable(body, record) {
      const db = String(body.DatabaseName);
      const name = String(body.Name).toLowerCase();
      record(glueArns(db, name));
      stored(db, name);
      database(db).delete(name);
      return {};
    },
    BatchCreatePartition(body, record) {
      const db = String(body.DatabaseName);
      const name = String(body.TableName).toLowerCase();
      record(glueArns(db, name));
      const t = stored(db, name);
      const keys = (t.table.PartitionKeys ?? []).length;
      const errors: unknown[] = [];
      for (const input of body.PartitionInputList as { Values?: string[] }[]) {
        const values = input.Values ?? [];
        const fail = (ErrorCode: string, ErrorMessage: string) =>
          errors.push({ PartitionValues: values, ErrorDetail: { ErrorCode, ErrorMessage } });
        const id = JSON.stringify(values);
        const injected = partitionHook?.(values) ?? null;
        if (injected) fail(injected, `Injected failure for partition ${values.join("/")}`);
        else if (values.length !== keys)
          fail(
            "InvalidInputException",
            "The number of partition keys do not match the number of partition values.",
          );
        else if (t.partitions.has(id)) fail("AlreadyExistsException", "Partition already exists.");
        else t.partitions.set(id, { ...input, DatabaseName: db, TableName: name });
      }
      return errors.length > 0 ? { Errors: errors } : {};
    },
    BatchDeletePartition(body, record) {
      const db = String(body.DatabaseName);
      const name = String(body.TableName).toLowerCase();
      record(glueArns(db, name));
      const t = stored(db, name);
      const errors: unknown[] = [];
      for (const entry of body.PartitionsToDelete as { Values: string[] }[]) {
        if (t.partitions.delete(JSON.stringify(entry.Values))) continue;
        errors.push({
          PartitionValues: entry.Values,
          ErrorDetail: { ErrorCode: "EntityNotFoundException", ErrorMessage: "Partition not found." },
        });
      }
      return errors.length > 0 ? { Errors: errors } : {};
    },
    GetPartitions(body, record) {
      const db = String(body.DatabaseName);
      const name = String(body.TableName).toLowerCase();
      record(glueArns(db, name));
      const all = [...stored(db, name).partitions.values()];
      const start = body.NextToken ? Number(body.NextToken) : 0;
      const size = typeof body.MaxResults === "number" ? body.MaxResults : 1000;
      const page = all.slice(start, start + size);
      return {
        Partitions: page,
        ...(start + size < all.length ? { NextToken: String(start + size) } : {}),
      };
    },
  };

  const athena: Record<string, Handler> = {
    GetWorkGroup(body, record) {
      const name = String(body.WorkGroup);
      record([arn("athena", `workgroup/${name}`)]);
      const output = workgroups[name];
      if (output === undefined)
        throw new ApiError(400, "InvalidRequestException", `WorkGroup ${name} is not found.`);
      return {
        WorkGroup: {
          Name: name,
          State: "ENABLED",
          Configuration: output ? { ResultConfiguration: { OutputLocation: output } } : {},
        },
      };
    },
    StartQueryExecution(body, record) {
      const wg = String(body.WorkGroup ?? "primary");
      record([arn("athena", `workgroup/${wg}`)]);
      if (workgroups[wg] === undefined)
        throw new ApiError(400, "InvalidRequestException", `WorkGroup ${wg} is not found.`);
      const sql = String(body.QueryString);
      const context = (body.QueryExecutionContext ?? {}) as { Database?: string };
      const q: QueryRecord = {
        id: crypto.randomUUID(),
        sql,
        database: context.Database ?? "default",
        workgroup: wg,
        polls: 0,
        final: "SUCCEEDED",
        reason: "",
      };
      const injected = failures.findIndex((f) => f.match.test(sql));
      if (injected >= 0) {
        q.final = "FAILED";
        q.reason = failures[injected]!.reason;
        failures.splice(injected, 1);
      } else {
        runStatement(q);
      }
      // Athena writes the results (and reads the bucket's region) with the caller's permissions.
      const output = workgroups[wg];
      if (output) {
        const bucket = output.replace(/^s3:\/\//, "").split("/")[0]!;
        onBehalf("s3:GetBucketLocation", [`arn:aws:s3:::${bucket}`]);
        onBehalf("s3:PutObject", [`arn:aws:s3:::${bucket}/${q.id}.txt`]);
      }
      queries.push(q);
      return { QueryExecutionId: q.id };
    },
    GetQueryExecution(body, record) {
      const wgOf = queries.find((q) => q.id === body.QueryExecutionId);
      record([arn("athena", `workgroup/${wgOf?.workgroup ?? "primary"}`)]);
      if (!wgOf)
        throw new ApiError(
          400,
          "InvalidRequestException",
          `QueryExecution ${String(body.QueryExecutionId)} was not found`,
        );
      wgOf.polls++;
      const state = wgOf.polls === 1 ? "QUEUED" : wgOf.polls === 2 ? "RUNNING" : wgOf.final;
      return {
        QueryExecution: {
          QueryExecutionId: wgOf.id,
          Query: wgOf.sql,
          StatementType: "DDL",
          QueryExecutionContext: { Database: wgOf.database },
          WorkGroup: wgOf.workgroup,
          Status: {
            State: state,
            ...(state === "FAILED"
              ? {
                  StateChangeReason: wgOf.reason,
                  AthenaError: {
                    ErrorCategory: 2,
                    ErrorType: 1301,
                    Retryable: false,
                    ErrorMessage: wgOf.reason,
                  },
                }
              : {}),
          },
        },
      };
    },
  };

  function onBehalf(action: string, resources: string[]): void {
    actions.push({ action, resources, onBehalf: true, status: 200 });
  }

  /** Athena executing DDL: a view becomes a Glue VIRTUAL_VIEW table, with Glue calls of its own. */
  function runStatement(q: QueryRecord): void {
    // `panorama doctor`'s trivial query: touches no table.
    if (/^\s*SELECT\s+1\s*;?\s*$/i.test(q.sql)) return;
    const parsed = parseView(q.sql);
    if ("error" in parsed) {
      q.final = "FAILED";
      q.reason = parsed.error;
      return;
    }
    const db = parsed.database ?? q.database;
    const fromDb = parsed.fromDatabase ?? q.database;
    const tables = databases.get(db);
    onBehalf("glue:GetDatabase", glueArns(db));
    if (!tables) {
      q.final = "FAILED";
      q.reason = `SCHEMA_NOT_FOUND: line 1:1: Schema '${db}' does not exist`;
      return;
    }
    onBehalf("glue:GetTable", glueArns(fromDb, parsed.from));
    const source = databases.get(fromDb)?.get(parsed.from);
    if (!source) {
      q.final = "FAILED";
      q.reason = `TABLE_NOT_FOUND: line 1:1: Table 'awsdatacatalog.${fromDb}.${parsed.from}' does not exist`;
      return;
    }
    onBehalf("glue:GetTable", glueArns(db, parsed.view));
    const existed = tables.has(parsed.view);
    onBehalf(existed ? "glue:UpdateTable" : "glue:CreateTable", glueArns(db, parsed.view));
    tables.set(parsed.view, {
      table: {
        Name: parsed.view,
        TableType: "VIRTUAL_VIEW",
        ViewOriginalText: q.sql,
        StorageDescriptor: { Columns: parsed.columns.map((Name) => ({ Name, Type: "varchar" })) },
      },
      partitions: new Map(),
    });
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readBody(req);
    const target = String(req.headers["x-amz-target"] ?? "");
    const [prefix = "", operation = ""] = target.split(".");
    const service =
      prefix === glueModel.metadata.targetPrefix
        ? "glue"
        : prefix === athenaModel.metadata.targetPrefix
          ? "athena"
          : "";
    const send = (status: number, payload: unknown) => {
      const text = JSON.stringify(payload);
      res.writeHead(status, {
        "content-type": "application/x-amz-json-1.1",
        "content-length": Buffer.byteLength(text),
        "x-amzn-requestid": crypto.randomUUID(),
      });
      res.end(text);
    };
    const entry: RecordedAction = {
      action: `${service || "unknown"}:${operation}`,
      resources: [],
      onBehalf: false,
      status: 0,
    };
    actions.push(entry);
    const fail = (status: number, type: string, message: string) => {
      entry.status = status;
      send(status, { __type: type, message });
    };
    if (!service || req.method !== "POST") {
      fail(400, "UnknownOperationException", `Unknown operation ${target}`);
      return;
    }
    const now = new Date(Date.now() + (options.clockOffsetMs ?? 0));
    const signature = verifySigV4(
      { method: req.method ?? "POST", url: req.url ?? "/", headers: req.headers, body },
      {
        service,
        region,
        now,
        secretFor: (key) => (key === options.accessKeyId ? options.secretAccessKey : undefined),
      },
    );
    if (!signature.ok) {
      const status =
        signature.code === "InvalidAccessKeyId" || signature.code === "SignatureDoesNotMatch" ? 403 : 400;
      fail(
        signature.code === "MissingAuthenticationToken" || signature.code === "RequestTimeTooSkewed"
          ? 403
          : status,
        JSON_ERRORS[signature.code] ?? "IncompleteSignatureException",
        signature.code === "RequestTimeTooSkewed"
          ? skewMessage(String(req.headers["x-amz-date"] ?? ""), now)
          : signature.message,
      );
      return;
    }
    const contentType = String(req.headers["content-type"] ?? "");
    if (!contentType.startsWith("application/x-amz-json-1.1")) {
      fail(400, "SerializationException", `Unexpected content type ${contentType}`);
      return;
    }
    const model = service === "glue" ? glueModel : athenaModel;
    const handlers = service === "glue" ? glue : athena;
    const op = model.operations[operation];
    const handler = handlers[operation];
    if (!op || !handler) {
      fail(400, "UnknownOperationException", `Unknown operation ${target}`);
      return;
    }
    let parsed: Record<string, unknown>;
    try {
      parsed = body.length === 0 ? {} : (JSON.parse(body.toString("utf8")) as Record<string, unknown>);
    } catch {
      fail(400, "SerializationException", "Start of structure or map found where not expected.");
      return;
    }
    const errors = op.input ? validate(model, op.input.shape, parsed, "") : [];
    if (errors.length > 0) {
      fail(
        400,
        "ValidationException",
        `${errors.length} validation error${errors.length > 1 ? "s" : ""} detected: ${errors.slice(0, 5).join("; ")}`,
      );
      return;
    }
    try {
      const answer = handler(parsed, (resources) => {
        entry.resources = resources;
      });
      entry.status = 200;
      send(200, answer);
    } catch (error) {
      if (error instanceof ApiError) fail(error.status, error.type, error.message);
      else fail(500, "InternalServiceException", String(error));
    }
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((error) => {
      res.writeHead(500, { "content-type": "application/x-amz-json-1.1" });
      res.end(JSON.stringify({ __type: "InternalServiceException", message: String(error) }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    actions,
    queries,
    calls(operation) {
      return actions.filter(
        (a) =>
          !a.onBehalf &&
          a.action.startsWith("glue:") &&
          (operation === undefined || a.action === `glue:${operation}`),
      ).length;
    },
    table(db, name) {
      return databases.get(db)?.get(name)?.table;
    },
    partitions(db, name) {
      return [...(databases.get(db)?.get(name)?.partitions.values() ?? [])];
    },
    failQuery(match, reason) {
      failures.push({ match, reason });
    },
    failPartitions(hook) {
      partitionHook = hook;
    },
    addDatabase(name) {
      if (!databases.has(name)) databases.set(name, new Map());
    },
    reset() {
      actions.length = 0;
    },
    stop() {
      return new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      });
    },
  };
}

/**
 * The stand-in as the tests' S3 settings sign for it (their keys and region), with a `panorama`
 * database and workgroup; `options` adds to or replaces these.
 */
export function startTestGlue(options: Partial<AwsJsonServerOptions> = {}): Promise<AwsJsonServer> {
  const s3 = testEnv().s3;
  return startAwsJsonServer({
    accessKeyId: s3.accessKeyId,
    secretAccessKey: s3.secretAccessKey,
    region: s3.region,
    databases: ["panorama"],
    workgroups: { panorama: "s3://athena-results/" },
    ...options,
  });
}
