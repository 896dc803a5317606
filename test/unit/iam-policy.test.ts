import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parseConfig } from "../../src/config/load.ts";
import { MODES, type Mode } from "../../src/config/types.ts";
import { ConfigError } from "../../src/errors.ts";
import {
  formatPolicy,
  type IamPolicy,
  iamPolicy,
  MANAGED_POLICY_CHARACTERS,
  partitionOf,
  policySize,
} from "../../src/setup/iam-policy.ts";
import { expectGolden } from "../support/golden.ts";

const GOLDEN = join(import.meta.dir, "..", "golden", "iam-policy");
const CONFIGS = ["single-bucket", "logs-bucket-kms", "base-prefix"] as const;

function configText(name: string): string {
  return readFileSync(join(GOLDEN, `${name}.toml`), "utf8");
}

function policyOf(text: string, env: Record<string, string> = {}): IamPolicy {
  const result = iamPolicy(parseConfig(text, "/etc/panorama/panorama.toml", env).config);
  if (result.policy === null) throw new Error(`expected a policy: ${result.reason}`);
  return result.policy;
}

const KNOWN_ACTIONS = new Set([
  "s3:PutObject",
  "s3:AbortMultipartUpload",
  "s3:ListBucketMultipartUploads",
  "s3:DeleteObject",
  "s3:GetObject",
  "s3:GetBucketLocation",
  "s3:ListBucket",
  "glue:GetDatabase",
  "glue:GetTable",
  "glue:CreateTable",
  "glue:UpdateTable",
  "glue:DeleteTable",
  "glue:BatchCreatePartition",
  "glue:BatchDeletePartition",
  "glue:GetPartitions",
  "athena:StartQueryExecution",
  "athena:GetQueryExecution",
  "athena:GetWorkGroup",
  "kms:GenerateDataKey",
  "kms:Decrypt",
]);

const BASE = `lms_host = "lms.example.com"\n[datalake]\nbucket = "acme-panorama"\naccount_id = "123456789012"\n`;

describe("golden policies", () => {
  for (const name of CONFIGS) {
    test(name, async () => {
      const text = formatPolicy(policyOf(configText(name)));
      await expectGolden(join(GOLDEN, `${name}.json`), text);
      expect(text.endsWith("}\n")).toBe(true);
      expect(formatPolicy(JSON.parse(text) as IamPolicy)).toBe(text);
    });
  }
});

describe("every policy, every mode", () => {
  for (const name of CONFIGS) {
    for (const mode of MODES) {
      test(`${name} in ${mode}`, () => {
        const { config } = parseConfig(configText(name), "/etc/panorama/panorama.toml", {
          PANORAMA_MODE: mode,
        });
        const result = iamPolicy(config);
        if (mode === "DEMO") {
          expect(result.policy).toBeNull();
          return;
        }
        const policy = result.policy!;
        expect(policy.Version).toBe("2012-10-17");
        const buckets = [
          config.datalake.bucket,
          config.datalake.logs_bucket,
          config.datalake.athena_results_bucket,
        ];
        const sids = policy.Statement.map((s) => s.Sid);
        expect(new Set(sids).size).toBe(sids.length);
        for (const statement of policy.Statement) {
          expect(statement.Sid).toMatch(/^[A-Za-z0-9]+$/);
          expect(statement.Effect).toBe("Allow");
          expect(statement.Action.length).toBeGreaterThan(0);
          expect(statement.Resource.length).toBeGreaterThan(0);
          for (const action of statement.Action) expect(KNOWN_ACTIONS.has(action)).toBe(true);
          for (const resource of statement.Resource) {
            expect(resource).not.toBe("*");
            if (resource.startsWith("arn:aws:s3:::")) {
              const bucket = resource.slice("arn:aws:s3:::".length).split("/")[0];
              expect(buckets).toContain(bucket!);
              // Object wildcards only under a prefix (or a whole results bucket), never a bucket pattern.
              expect(resource).not.toMatch(/^arn:aws:s3:::[^/]*\*/);
            } else {
              expect(resource).toContain(`:${config.datalake.account_id}:`);
              // A wildcard only as the end of panorama's own table names, in the one database.
              const base = config.datalake.base_prefix;
              const tables = `:table/${config.datalake.database}/${base}_`;
              if (resource.includes("*")) expect(resource).toMatch(new RegExp(`${tables}(raw|table)_\\*$`));
            }
          }
        }
        // It fits an IAM managed policy, as it is.
        expect(policySize(policy)).toBeLessThanOrEqual(MANAGED_POLICY_CHARACTERS);
        const warnings = "warnings" in result ? result.warnings : [];
        expect(warnings.filter((w) => w.includes("managed policy"))).toEqual([]);
      });
    }
  }
});

describe("size", () => {
  const glueTables = (policy: IamPolicy) =>
    policy.Statement.find((s) => s.Sid === "GlueCatalog")!.Resource.filter((r) => r.includes(":table/"));

  test("a preset's tables go by name pattern: one ARN each would not fit a managed policy", () => {
    const policy = policyOf(configText("single-bucket"));
    expect(glueTables(policy)).toEqual([
      "arn:aws:glue:us-east-1:123456789012:table/panorama/openedx_raw_*",
      "arn:aws:glue:us-east-1:123456789012:table/panorama/openedx_table_*",
    ]);
  });

  test("a few tables keep one ARN each", () => {
    const policy = policyOf(
      `mode = "CUSTOM"\n${BASE}[extract]\npreset = "none"\n[[tables]]\nname = "auth_user"\n`,
    );
    expect(glueTables(policy)).toEqual([
      "arn:aws:glue:us-east-1:123456789012:table/panorama/openedx_raw_auth_user",
      "arn:aws:glue:us-east-1:123456789012:table/panorama/openedx_raw_tracking_logs",
      "arn:aws:glue:us-east-1:123456789012:table/panorama/openedx_table_auth_user",
    ]);
  });

  test("names of the operator's own that still do not fit: a warning with the way out", () => {
    const tables = Array.from(
      { length: 80 },
      (_, i) =>
        `[[tables]]\nname = "t${i}"\ndatalake_table = "learner_records_${i}"\nview = "learner_view_${i}"\n`,
    ).join("");
    const result = iamPolicy(
      parseConfig(
        `mode = "CUSTOM"\n${BASE}[extract]\npreset = "none"\n${tables}`,
        "/etc/panorama/panorama.toml",
        {},
      ).config,
    );
    if (result.policy === null) throw new Error(result.reason);
    expect(policySize(result.policy)).toBeGreaterThan(MANAGED_POLICY_CHARACTERS);
    expect(glueTables(result.policy)).toContain(
      "arn:aws:glue:us-east-1:123456789012:table/panorama/learner_records_7",
    );
    expect(result.warnings.join("\n")).toContain("more than the 6144 of an IAM managed policy");
  });
});

describe("statements", () => {
  test("KMS only when kms_key_arn is set, on exactly that key", () => {
    const without = policyOf(configText("single-bucket"));
    expect(without.Statement.flatMap((s) => s.Action).filter((a) => a.startsWith("kms:"))).toEqual([]);
    const withKey = policyOf(configText("logs-bucket-kms"));
    expect(withKey.Statement.find((s) => s.Sid === "EncryptUploads")).toEqual({
      Sid: "EncryptUploads",
      Effect: "Allow",
      Action: ["kms:GenerateDataKey", "kms:Decrypt"],
      Resource: ["arn:aws:kms:eu-west-1:210987654321:key/1234abcd-12ab-34cd-56ef-1234567890ab"],
    });
  });

  test("FREE: no tracking logs, no Athena, partitions only", () => {
    for (const name of CONFIGS) {
      const policy = policyOf(configText(name), { PANORAMA_MODE: "FREE" });
      const actions = policy.Statement.flatMap((s) => s.Action);
      const resources = policy.Statement.flatMap((s) => s.Resource);
      expect(policy.Statement.map((s) => s.Sid)).not.toContain("ShipTrackingLogs");
      expect(actions.filter((a) => a.startsWith("athena:"))).toEqual([]);
      expect(resources.join(" ")).not.toContain("athena");
      expect(resources.join(" ")).not.toContain("tracking_logs");
      expect(actions).not.toContain("glue:CreateTable");
      expect(actions).toContain("glue:BatchCreatePartition");
    }
  });

  test("SAAS registers partitions only: no table creation, no views", () => {
    const policy = policyOf(configText("logs-bucket-kms"));
    const glue = policy.Statement.find((s) => s.Sid === "GlueCatalog")!;
    expect(glue.Action).toEqual([
      "glue:GetDatabase",
      "glue:GetTable",
      "glue:BatchCreatePartition",
      "glue:BatchDeletePartition",
      "glue:GetPartitions",
    ]);
    expect(glue.Resource.some((r) => r.includes("_table_"))).toBe(false);
    expect(glue.Resource).toContain(
      "arn:aws:glue:eu-west-1:210987654321:table/example_datalake/openedx_raw_tracking_logs",
    );
  });

  test("a separate logs bucket gets its own statement; the same bucket is covered by the data prefix", () => {
    const separate = policyOf(configText("logs-bucket-kms"));
    expect(separate.Statement.find((s) => s.Sid === "ShipTrackingLogs")?.Resource).toEqual([
      "arn:aws:s3:::example-panorama-logs/tracking_logs/*",
    ]);
    const same = policyOf(configText("single-bucket"));
    expect(same.Statement.map((s) => s.Sid)).not.toContain("ShipTrackingLogs");
    expect(same.Statement.find((s) => s.Sid === "WriteDatalakeObjects")?.Resource).toEqual([
      "arn:aws:s3:::acme-panorama/openedx/*",
    ]);
  });

  test("DeleteObject on the data objects of both variants, never the tracking logs", () => {
    const deletes = (policy: IamPolicy) =>
      policy.Statement.filter((s) => s.Action.includes("s3:DeleteObject")).flatMap((s) => s.Resource);
    for (const compression of ["none", "gzip"]) {
      expect(deletes(policyOf(`mode = "CUSTOM"\n${BASE}compression = "${compression}"\n`))).toEqual([
        "arn:aws:s3:::acme-panorama/openedx/*.csv",
        "arn:aws:s3:::acme-panorama/openedx/*.csv.gz",
        "arn:aws:s3:::acme-panorama/PanoramaConnectionTest",
      ]);
    }
  });

  test("ListBucket on the data bucket, limited to the base prefix by an s3:prefix condition", () => {
    for (const mode of ["FREE", "SAAS", "CUSTOM"]) {
      const list = policyOf(`mode = "${mode}"\n${BASE}base_prefix = "lake"\n`).Statement.filter((s) =>
        s.Action.includes("s3:ListBucket"),
      );
      expect(list).toEqual([
        {
          Sid: "ListDatalakeObjects",
          Effect: "Allow",
          Action: ["s3:ListBucket"],
          Resource: ["arn:aws:s3:::acme-panorama"],
          Condition: { StringLike: { "s3:prefix": ["lake/*"] } },
        },
      ]);
    }
  });

  test("Glue tables: raw tables, views in CUSTOM, tracking logs; sorted and de-duplicated", () => {
    const policy = policyOf(configText("base-prefix"));
    const tables = policy.Statement.find((s) => s.Sid === "GlueCatalog")!.Resource.slice(2);
    expect(tables).toEqual([
      "arn:aws:glue:us-west-2:123456789012:table/acme/acme_edx_raw_badges_badgeassertion",
      "arn:aws:glue:us-west-2:123456789012:table/acme/acme_edx_raw_tracking_logs",
      "arn:aws:glue:us-west-2:123456789012:table/acme/acme_edx_table_badges_badgeassertion",
      "arn:aws:glue:us-west-2:123456789012:table/acme/acme_surveys",
      "arn:aws:glue:us-west-2:123456789012:table/acme/acme_surveys_raw",
    ]);
    const duplicated = policyOf(
      `mode = "CUSTOM"\n${BASE}[extract]\npreset = "none"\n[[tables]]\nname = "a"\n[[tables]]\nname = "b"\ndatalake_table = "openedx_raw_a"\n`,
    );
    const names = duplicated.Statement.find((s) => s.Sid === "GlueCatalog")!.Resource.slice(2);
    expect(names).toEqual([...new Set(names)].sort());
    expect(names.filter((n) => n.endsWith("/openedx_raw_a"))).toHaveLength(1);
  });

  test("Athena results bucket only when set and the mode queries Athena", () => {
    const sids = (mode: Mode, extra = "") =>
      policyOf(`mode = "${mode}"\n${BASE}${extra}`).Statement.map((s) => s.Sid);
    const results = 'athena_results_bucket = "acme-results"\n';
    expect(sids("CUSTOM", results)).toContain("AthenaResultsObjects");
    expect(sids("SAAS", results)).toContain("AthenaResultsBucket");
    expect(sids("FREE", results)).not.toContain("AthenaResultsBucket");
    expect(sids("CUSTOM")).not.toContain("AthenaResultsBucket");
    const result = iamPolicy(
      parseConfig(`mode = "CUSTOM"\n${BASE}`, "/etc/panorama/panorama.toml", {}).config,
    );
    expect(result).toMatchObject({
      warnings: [expect.stringContaining("datalake.athena_results_bucket is empty")],
    });
  });

  test("the partition follows the region", () => {
    expect(partitionOf("us-east-1")).toBe("aws");
    expect(partitionOf("cn-north-1")).toBe("aws-cn");
    expect(partitionOf("us-gov-west-1")).toBe("aws-us-gov");
    const china = policyOf(`mode = "CUSTOM"\n${BASE}region = "cn-north-1"\n`);
    for (const resource of china.Statement.flatMap((s) => s.Resource))
      expect(resource).toStartWith("arn:aws-cn:");
  });
});

describe("no policy", () => {
  test("DEMO needs no AWS access", () => {
    const result = iamPolicy(parseConfig(`mode = "DEMO"\n`, "/etc/panorama/panorama.toml", {}).config);
    expect(result).toEqual({
      policy: null,
      reason: expect.stringContaining("DEMO mode needs no AWS access"),
    });
  });

  test("a local datalake needs no AWS access, even without account_id", () => {
    const text = `mode = "CUSTOM"\nlms_host = "lms.example.com"\n[datalake]\ntarget = "local"\n`;
    const result = iamPolicy(parseConfig(text, "/etc/panorama/panorama.toml", {}).config);
    expect(result).toEqual({ policy: null, reason: expect.stringContaining("local datalake") });
  });

  test("a missing account_id is a ConfigError naming the file and datalake.account_id", () => {
    const text = `mode = "SAAS"\nlms_host = "lms.example.com"\n[datalake]\nbucket = "acme-panorama"\n`;
    const config = parseConfig(text, "/etc/panorama/panorama.toml", {}).config;
    expect(() => iamPolicy(config)).toThrow(ConfigError);
    expect(() => iamPolicy(config)).toThrow(
      /^\/etc\/panorama\/panorama\.toml: datalake\.account_id: required/,
    );
  });
});
