// The least-privilege IAM policy for a config (DESIGN §9): every statement names exact ARNs built
// from the config (the Glue tables by their name patterns when one ARN each would not fit a
// managed policy), and only the actions that the mode's jobs (and doctor) call.

import { rawTrackingLogsName } from "../catalog/sql.ts";
import { modeAllows, usesAthena } from "../config/modes.ts";
import type { Config } from "../config/types.ts";
import { ConfigError } from "../errors.ts";

export interface PolicyStatement {
  Sid: string;
  Effect: "Allow";
  Action: string[];
  Resource: string[];
  Condition?: Record<string, Record<string, string[]>>;
}

export interface IamPolicy {
  Version: "2012-10-17";
  Statement: PolicyStatement[];
}

export type PolicyResult =
  | { policy: IamPolicy; warnings: string[] }
  /** no AWS access is needed: `reason` says why */
  | { policy: null; reason: string };

/** The key doctor writes and deletes to prove that the bucket is writable. */
export const CONNECTION_TEST_KEY = "PanoramaConnectionTest";

/** AWS partition of a region: ARNs in China and GovCloud do not start with `arn:aws:`. */
export function partitionOf(region: string): string {
  if (region.startsWith("cn-")) return "aws-cn";
  if (region.startsWith("us-gov-")) return "aws-us-gov";
  return "aws";
}

// BatchDeletePartition: the partitions of deleted objects leave the catalog (DESIGN §7a).
const GLUE_REGISTER = [
  "glue:GetDatabase",
  "glue:GetTable",
  "glue:BatchCreatePartition",
  "glue:BatchDeletePartition",
  "glue:GetPartitions",
];
const GLUE_MANAGE = [
  "glue:GetDatabase",
  "glue:GetTable",
  "glue:CreateTable",
  "glue:UpdateTable",
  "glue:DeleteTable",
  "glue:BatchCreatePartition",
  "glue:BatchDeletePartition",
  "glue:GetPartitions",
];

export function iamPolicy(config: Config): PolicyResult {
  const { mode, datalake } = config;
  if (mode === "DEMO")
    return { policy: null, reason: "DEMO mode needs no AWS access: there is no policy to print" };
  if (datalake.target === "local") {
    return {
      policy: null,
      reason: 'a local datalake (datalake.target = "local") needs no AWS access: there is no policy to print',
    };
  }
  if (datalake.account_id === "") {
    throw new ConfigError(
      `${config.file ?? "configuration"}: datalake.account_id: required for the Glue and Athena ARNs of the policy (a 12-digit AWS account id)`,
      'set datalake.account_id = "123456789012"; `aws sts get-caller-identity --query Account` prints it',
    );
  }

  const arn = `arn:${partitionOf(datalake.region)}`;
  const s3 = (bucket: string, key?: string) => `${arn}:s3:::${bucket}${key === undefined ? "" : `/${key}`}`;
  const glue = (resource: string) => `${arn}:glue:${datalake.region}:${datalake.account_id}:${resource}`;
  const shipsLogs = modeAllows(mode, "log-ship").allowed;
  const createsViews = modeAllows(mode, "catalog-views").allowed;
  const athena = usesAthena(mode);
  const dataObjects = s3(datalake.bucket, `${datalake.base_prefix}/*`);

  const statements: PolicyStatement[] = [];
  const allow = (Sid: string, Action: string[], Resource: string[]) =>
    statements.push({ Sid, Effect: "Allow", Action, Resource });

  // AbortMultipartUpload: a failed multipart upload is aborted (DESIGN §9).
  allow("WriteDatalakeObjects", ["s3:PutObject", "s3:AbortMultipartUpload"], [dataObjects]);
  // A CreateMultipartUpload whose answer was lost (or a run killed while it was in flight) may
  // have made an upload whose id panorama never heard: it lists the open uploads of that key to
  // abort them (DESIGN §9). A bucket-level action: S3 has no narrower resource for it.
  allow("AbortLostMultipartUploads", ["s3:ListBucketMultipartUploads"], [s3(datalake.bucket)]);
  // Data objects are deleted (DESIGN §4, §7a): writing one variant deletes the other in the same
  // partition, and a full read or `verify --repair` deletes the objects of partitions MySQL no
  // longer has, in either variant. Only `.csv` and `.csv.gz` objects: never the tracking logs.
  allow(
    "DeleteDatalakeObjects",
    ["s3:DeleteObject"],
    [
      s3(datalake.bucket, `${datalake.base_prefix}/*.csv`),
      s3(datalake.bucket, `${datalake.base_prefix}/*.csv.gz`),
    ],
  );
  // `verify` and the deletions list what the datalake really holds, under the base prefix only.
  statements.push({
    Sid: "ListDatalakeObjects",
    Effect: "Allow",
    Action: ["s3:ListBucket"],
    Resource: [s3(datalake.bucket)],
    Condition: { StringLike: { "s3:prefix": [`${datalake.base_prefix}/*`] } },
  });
  // A logs bucket equal to the data bucket puts the logs under `<base_prefix>/tracking_logs/`,
  // which the data statement already covers.
  if (shipsLogs && datalake.logs_bucket !== datalake.bucket) {
    allow(
      "ShipTrackingLogs",
      ["s3:PutObject", "s3:AbortMultipartUpload"],
      [s3(datalake.logs_bucket, "tracking_logs/*")],
    );
  }
  allow(
    "DoctorConnectionTest",
    ["s3:PutObject", "s3:DeleteObject"],
    [s3(datalake.bucket, CONNECTION_TEST_KEY)],
  );

  const warnings: string[] = [];
  if (athena && datalake.athena_results_bucket !== "") {
    allow("AthenaResultsBucket", ["s3:GetBucketLocation"], [s3(datalake.athena_results_bucket)]);
    allow(
      "AthenaResultsObjects",
      ["s3:GetObject", "s3:PutObject"],
      [s3(datalake.athena_results_bucket, "*")],
    );
  } else if (athena) {
    warnings.push(
      `${config.file ?? "configuration"}: datalake.athena_results_bucket is empty: the policy grants nothing on the bucket of the workgroup's query results, so Athena queries fail unless another policy does`,
    );
  }

  const tables = new Set(config.tables.map((t) => t.datalake_table));
  if (createsViews) for (const t of config.tables) tables.add(t.view);
  if (shipsLogs) tables.add(rawTrackingLogsName(config));
  const glueResources = (names: Iterable<string>) => [
    glue("catalog"),
    glue(`database/${datalake.database}`),
    ...[...names].sort().map((table) => glue(`table/${datalake.database}/${table}`)),
  ];
  allow(
    "GlueCatalog",
    modeAllows(mode, "catalog-create").allowed ? GLUE_MANAGE : GLUE_REGISTER,
    glueResources(tables),
  );
  const glueStatement = statements.at(-1)!;

  if (athena) {
    allow(
      "AthenaWorkgroup",
      ["athena:StartQueryExecution", "athena:GetQueryExecution", "athena:GetWorkGroup"],
      [`${arn}:athena:${datalake.region}:${datalake.account_id}:workgroup/${datalake.workgroup}`],
    );
  }
  // Decrypt too: completing a multipart upload under SSE-KMS reads the data key back.
  if (datalake.kms_key_arn !== "") {
    allow("EncryptUploads", ["kms:GenerateDataKey", "kms:Decrypt"], [datalake.kms_key_arn]);
  }

  const policy: IamPolicy = { Version: "2012-10-17", Statement: statements };
  if (policySize(policy) > MANAGED_POLICY_CHARACTERS) {
    // One ARN per table does not fit a managed policy with a preset's tables: the tables go by the
    // names panorama gives them, in the one database.
    glueStatement.Resource = glueResources(tableNamePatterns(tables, datalake.base_prefix));
    const size = policySize(policy);
    if (size > MANAGED_POLICY_CHARACTERS) {
      warnings.push(
        `the policy has ${size} characters without white space, more than the ${MANAGED_POLICY_CHARACTERS} of an IAM managed policy: attach it as an inline policy of a role (up to 10,240), or give fewer tables their own datalake_table and view names`,
      );
    }
  }
  return { policy, warnings };
}

/** AWS's limit for a managed policy, counted without white space. */
export const MANAGED_POLICY_CHARACTERS = 6144;

/** A policy's size as IAM counts it: JSON without white space outside strings. */
export function policySize(policy: IamPolicy): number {
  return JSON.stringify(policy).length;
}

/**
 * The tables as few patterns: those named as panorama names them (`<base_prefix>_raw_*` tables,
 * `<base_prefix>_table_*` views) as one pattern each, any other name as it is.
 */
function tableNamePatterns(tables: Set<string>, basePrefix: string): Set<string> {
  const patterns = new Set<string>();
  for (const table of tables) {
    const prefix = [`${basePrefix}_raw_`, `${basePrefix}_table_`].find((p) => table.startsWith(p));
    patterns.add(prefix ? `${prefix}*` : table);
  }
  return patterns;
}

/** The policy as printed: 2-space JSON with a trailing newline. */
export function formatPolicy(policy: IamPolicy): string {
  return `${JSON.stringify(policy, null, 2)}\n`;
}
