// The catalog against a loopback Glue + Athena (test/support/aws-json-server.ts stands in for
// AWS: it checks signatures and validates requests against the official API models).
import { afterAll, beforeAll, describe, expect, spyOn, test } from "bun:test";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Athena, AthenaError } from "../../src/aws/athena.ts";
import { AwsClient, AwsError } from "../../src/aws/client.ts";
import { Glue, GlueError } from "../../src/aws/glue.ts";
import { applyCatalog, catalogServices, planCatalog } from "../../src/catalog/catalog.ts";
import { PartitionState, registerPartitions } from "../../src/catalog/partitions.ts";
import { partitionLocation, registerPending, unregisterPartitions } from "../../src/catalog/register.ts";
import { parseConfig } from "../../src/config/load.ts";
import type { Config } from "../../src/config/types.ts";
import { log } from "../../src/log.ts";
import { type AwsJsonServer, startAwsJsonServer } from "../support/aws-json-server.ts";
import { cleanEnv, runPanorama } from "../support/cli.ts";
import { expectGolden } from "../support/golden.ts";

const KEY = "AKIDCATALOGTEST1";
const SECRET = "catalog-test-secret";
const FIXTURES = join(import.meta.dir, "..", "fixtures", "catalog");
const fast = { retry: { attempts: 2, baseMs: 1, maxMs: 2 } };
const poll = { pollMs: 1, maxPollMs: 2 };
const unexpected = (): never => {
  throw new Error("expected the call to fail");
};

let server: AwsJsonServer;

beforeAll(async () => {
  server = await startAwsJsonServer({
    accessKeyId: KEY,
    secretAccessKey: SECRET,
    databases: ["panorama"],
    workgroups: { panorama: "s3://athena-results/", nowhere: "" },
  });
});
afterAll(() => server.stop());

/** A config file; `config` parses it (for the tests that do not expect it to be refused). */
function writeConfig(body: string): { file: string; config: () => Config; dir: string } {
  const dir = mkdtempSync(join(tmpdir(), "panorama-catalog-"));
  const file = join(dir, "panorama.toml");
  const text = `mode = "CUSTOM"
lms_host = "lms.example.com"
state_dir = "${join(dir, "state")}"
${body}`;
  writeFileSync(file, text, { mode: 0o600 });
  return { file, config: () => parseConfig(text, file, {}).config, dir };
}

function s3Config(extra = "", database = "panorama"): { file: string; config: Config; dir: string } {
  const written = writeConfig(`${extra}
[datalake]
target = "s3"
bucket = "acme-panorama"
region = "us-east-1"
database = "${database}"
workgroup = "panorama"
glue_endpoint = "${server.url}"
athena_endpoint = "${server.url}"
[aws]
access_key_id = "${KEY}"
secret_access_key = "${SECRET}"
`);
  return { ...written, config: written.config() };
}

/** An S3 configuration whose courseware_studentmodule raw table is made in the Glue stand-in. */
async function studentmoduleTableMade() {
  const { config } = s3Config();
  const services = catalogServices(config, fast, poll);
  const plan = await planCatalog(
    config,
    config.tables.filter((t) => t.name === "courseware_studentmodule"),
    false,
  );
  const steps = { create: true, views: false, partitions: false, drop: false };
  await applyCatalog(config, plan, steps, services, { dryRun: false, logPartitions: false });
  return { config, table: "openedx_raw_courseware_studentmodule" };
}

/** The CREATE EXTERNAL TABLE statements of printed DDL, read back into their parts. */
function parseDdl(ddl: string) {
  const tables = new Map<string, Record<string, unknown>>();
  const props = (block: string | undefined) =>
    Object.fromEntries(
      [...(block ?? "").matchAll(/'((?:[^'\\]|\\.)*)'='((?:[^'\\]|\\.)*)'/g)].map((m) => [
        m[1]!.replace(/\\(.)/g, "$1"),
        m[2]!.replace(/\\(.)/g, "$1"),
      ]),
    );
  for (const m of ddl.matchAll(
    /CREATE EXTERNAL TABLE IF NOT EXISTS `[^`]+`\.`([^`]+)` \(\n([\s\S]*?)\n\)\n(?:PARTITIONED BY \(\n([\s\S]*?)\n\)\n)?ROW FORMAT SERDE '([^']+)'\nWITH SERDEPROPERTIES \(\n([\s\S]*?)\n\)\n[\s\S]*?LOCATION '([^']+)'\nTBLPROPERTIES \(\n([\s\S]*?)\n\);/g,
  )) {
    const names = (block: string | undefined) =>
      [...(block ?? "").matchAll(/`([^`]+)` string/g)].map((c) => c[1]);
    tables.set(m[1]!, {
      columns: names(m[2]),
      keys: names(m[3]),
      serde: m[4],
      serdeParameters: props(m[5]),
      location: m[6],
      parameters: props(m[7]),
    });
  }
  return tables;
}

describe("--print-ddl", () => {
  test("the openedx preset's DDL is the golden one, without AWS and with a local datalake", async () => {
    const written = writeConfig(`[datalake]
target = "local"
path = "/var/lib/panorama/datalake"
`);
    const { file } = written;
    const config = written.config();
    // Two partitions written by uploads, one value needing escapes and percent-encoding.
    const state = new PartitionState(config.state_dir, "panorama");
    state.add("openedx_raw_courseware_studentmodule", [
      {
        values: ["lms.example.com", "course-v1:MITx+6.00x+2024"],
        bucket: "",
        prefix:
          "openedx/courseware_studentmodule/lms=lms.example.com/course_id=course-v1%3AMITx%2B6.00x%2B2024/",
      },
      {
        values: ["lms.example.com", "it's\\odd"],
        bucket: "",
        prefix: "openedx/courseware_studentmodule/lms=lms.example.com/course_id=it%27s%5Codd/",
      },
    ]);
    const result = await runPanorama(["catalog", "--print-ddl", "--config", file], { env: cleanEnv() });
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
    await expectGolden(join(FIXTURES, "openedx-local.sql"), result.stdout);
    expect(result.stdout).toContain(
      "ADD IF NOT EXISTS PARTITION (`lms`='lms.example.com', `course_id`='it\\'s\\\\odd') LOCATION 'file:///var/lib/panorama/datalake/openedx/courseware_studentmodule/lms=lms.example.com/course_id=it%27s%5Codd/';",
    );
  });

  test("a view name that is not a valid catalog name is a configuration error (exit 2)", async () => {
    const { file } = writeConfig(`[datalake]
target = "local"
path = "/tmp/x"
[[tables]]
name = "auth_user"
view = "Users"
`);
    const result = await runPanorama(["catalog", "--print-ddl", "--config", file], { env: cleanEnv() });
    expect(result.code).toBe(2);
    const lines = result.stderr
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l).message as string);
    expect(lines[0]).toEndWith('view of table "auth_user": "Users" is not a valid catalog name');
    expect(lines[1]).toContain('write it in lower case ("users")');
  });

  test("a table name with a dash is refused by the configuration (exit 2)", async () => {
    const { file } = writeConfig(`[datalake]
target = "local"
path = "/tmp/x"
[[tables]]
name = "auth_user"
datalake_table = "raw-users"
`);
    const result = await runPanorama(["catalog", "--print-ddl", "--config", file], { env: cleanEnv() });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("datalake_table");
  });
});

describe("catalog through Glue and Athena", () => {
  test("creates the same tables as the printed DDL, the views, and registers pending partitions", async () => {
    const { file, config } = s3Config();
    const printed = await runPanorama(["catalog", "--print-ddl", "--config", file], { env: cleanEnv() });
    expect(printed.code).toBe(0);
    const ddl = parseDdl(printed.stdout);
    expect(ddl.size).toBe(config.tables.length + 1);

    new PartitionState(config.state_dir, "panorama").add("openedx_raw_auth_user", [
      {
        values: ["lms.example.com"],
        bucket: "acme-panorama",
        prefix: "openedx/auth_user/lms=lms.example.com/",
      },
    ]);
    server.reset();
    const result = await runPanorama(
      [
        "catalog",
        "--config",
        file,
        "--tables",
        "auth_user,courseware_studentmodule,course_structures,tracking_logs",
      ],
      {
        env: cleanEnv(),
      },
    );
    expect(result.code, result.stderr).toBe(0);

    for (const name of [
      "openedx_raw_auth_user",
      "openedx_raw_courseware_studentmodule",
      "openedx_raw_course_structures",
      "openedx_raw_tracking_logs",
    ]) {
      const table = server.table("panorama", name) as unknown as {
        TableType: string;
        Parameters: Record<string, string>;
        PartitionKeys: { Name: string; Type: string }[];
        StorageDescriptor: {
          Columns: { Name: string; Type: string }[];
          Location: string;
          SerdeInfo: { SerializationLibrary: string; Parameters: Record<string, string> };
        };
      };
      const expected = ddl.get(name)!;
      expect(table.TableType).toBe("EXTERNAL_TABLE");
      expect(table.StorageDescriptor.Columns.map((c) => c.Name)).toEqual(expected.columns as string[]);
      expect(table.StorageDescriptor.Columns.every((c) => c.Type === "string")).toBe(true);
      expect(table.PartitionKeys.map((k) => k.Name)).toEqual(expected.keys as string[]);
      expect(table.StorageDescriptor.SerdeInfo.SerializationLibrary).toBe(expected.serde as string);
      expect(table.StorageDescriptor.SerdeInfo.Parameters).toEqual(
        expected.serdeParameters as Record<string, string>,
      );
      expect(table.StorageDescriptor.Location).toBe(expected.location as string);
      const { EXTERNAL, ...properties } = table.Parameters;
      expect(EXTERNAL).toBe("TRUE");
      expect(properties).toEqual(expected.parameters as Record<string, string>);
    }
    expect(server.table("panorama", "openedx_raw_auth_user")?.StorageDescriptor).toMatchObject({
      Location: "s3://acme-panorama/openedx/auth_user/",
      SerdeInfo: { Parameters: { escapeChar: "\\", quoteChar: '"', separatorChar: "," } },
    });
    expect(server.table("panorama", "openedx_raw_auth_user")?.Parameters).toMatchObject({
      "skip.header.line.count": "1",
    });

    const view = server.table("panorama", "openedx_table_courseware_studentmodule") as unknown as {
      TableType: string;
      StorageDescriptor: { Columns: { Name: string }[] };
    };
    expect(view.TableType).toBe("VIRTUAL_VIEW");
    expect(view.StorageDescriptor.Columns.map((c) => c.Name)).toContain("course_id");
    expect(view.StorageDescriptor.Columns.at(-1)?.Name).toBe("lms");
    expect(server.queries.filter((q) => q.sql.startsWith("CREATE OR REPLACE VIEW")).length).toBe(3);

    const partitions = server.partitions("panorama", "openedx_raw_auth_user") as {
      Values: string[];
      StorageDescriptor: { Location: string; SerdeInfo: { SerializationLibrary: string } };
    }[];
    expect(partitions.map((p) => p.Values)).toEqual([["lms.example.com"]]);
    expect(partitions[0]!.StorageDescriptor.Location).toBe(
      "s3://acme-panorama/openedx/auth_user/lms=lms.example.com/",
    );
    expect(partitions[0]!.StorageDescriptor.SerdeInfo.SerializationLibrary).toBe(
      "org.apache.hadoop.hive.serde2.OpenCSVSerde",
    );

    // Again: every table is up to date, the views are replaced, nothing is pending.
    server.reset();
    const again = await runPanorama(["catalog", "--config", file, "--tables", "auth_user"], {
      env: cleanEnv(),
    });
    expect(again.code, again.stderr).toBe(0);
    expect(
      server.calls("CreateTable") + server.calls("UpdateTable") + server.calls("BatchCreatePartition"),
    ).toBe(0);
  });

  test("a column appended in the config updates the table; a changed column order is an error", async () => {
    const { config } = s3Config(`[extract]
preset = "none"
[[tables]]
name = "widgets"
fields = [ { name = "id", type = "int" }, { name = "label", type = "varchar" } ]
`);
    const services = catalogServices(config, fast, poll);
    const steps = { create: true, views: false, partitions: false, drop: false };
    const options = { dryRun: false, logPartitions: false };
    expect(
      await applyCatalog(config, await planCatalog(config, config.tables, false), steps, services, options),
    ).toBe(true);
    const grown = {
      ...config.tables[0]!,
      fields: [...config.tables[0]!.fields!, { name: "added", type: "date" }],
    };
    expect(
      await applyCatalog(config, await planCatalog(config, [grown], false), steps, services, options),
    ).toBe(true);
    expect(server.table("panorama", "openedx_raw_widgets")?.StorageDescriptor).toMatchObject({
      Columns: [{ Name: "id" }, { Name: "label" }, { Name: "added" }],
    });
    const reordered = { ...grown, fields: [grown.fields[1]!, grown.fields[0]!, grown.fields[2]!] };
    expect(
      await applyCatalog(config, await planCatalog(config, [reordered], false), steps, services, options),
    ).toBe(false);
    expect(server.table("panorama", "openedx_raw_widgets")?.StorageDescriptor).toMatchObject({
      Columns: [{ Name: "id" }, { Name: "label" }, { Name: "added" }],
    });
  });

  test("10,000 new partitions take 100 Glue calls; the next run none; a failing entry is retried", async () => {
    const { config, table } = await studentmoduleTableMade();
    const state = new PartitionState(config.state_dir, "panorama");
    const refs = Array.from({ length: 10_000 }, (_, i) => ({
      values: ["lms.example.com", `course-v1:Org+C${i}+2024`],
      bucket: "acme-panorama",
      prefix: `openedx/courseware_studentmodule/lms=lms.example.com/course_id=course-v1%3AOrg%2BC${i}%2B2024/`,
    }));
    state.add(table, refs);
    server.failPartitions((values) =>
      values[1] === "course-v1:Org+C4242+2024" ? "InternalServiceException" : null,
    );
    server.reset();
    const glue = new Glue(new AwsClient(config, fast), "panorama");
    expect(
      await registerPending(config, new PartitionState(config.state_dir, "panorama"), [table], glue),
    ).toBe(false);
    expect(server.calls()).toBe(100);
    expect(server.calls("BatchCreatePartition")).toBe(100);
    expect(server.partitions("panorama", table).length).toBe(9_999);

    server.failPartitions(null);
    server.reset();
    const next = new PartitionState(config.state_dir, "panorama");
    expect(next.pending(table).map((p) => p.values[1])).toEqual(["course-v1:Org+C4242+2024"]);
    expect(await registerPending(config, next, [table], glue)).toBe(true);
    expect(server.calls()).toBe(1);
    expect(server.partitions("panorama", table).length).toBe(10_000);

    // A steady run: the same partitions written again cost no call at all.
    server.reset();
    const steady = new PartitionState(config.state_dir, "panorama");
    expect(steady.add(table, refs.slice(0, 50))).toBe(0);
    expect(await registerPending(config, steady, [table], glue)).toBe(true);
    expect(server.actions.length).toBe(0);

    // State lost: everything is sent again and Glue's AlreadyExists entries count as registered.
    const fresh = mkdtempSync(join(tmpdir(), "panorama-catalog-"));
    const lost = new PartitionState(fresh, "panorama");
    lost.add(table, refs.slice(0, 150));
    const result = await registerPartitions(glue, lost, table, (ref) => partitionLocation(config, ref));
    expect(result).toMatchObject({ calls: 3, registered: 0, existing: 150, failed: [] });
    expect(lost.pending(table).length).toBe(0);
  });
});

describe("partitions whose objects were deleted", () => {
  test("leave Glue 25 per BatchDeletePartition call, and the state; one Glue does not have is fine", async () => {
    const { config, table } = await studentmoduleTableMade();
    const refs = Array.from({ length: 80 }, (_, i) => ({
      values: ["lms.example.com", `course-v1:Del+C${i}+2024`],
      bucket: "acme-panorama",
      prefix: `openedx/courseware_studentmodule/lms=lms.example.com/course_id=course-v1%3ADel%2BC${i}%2B2024/`,
    }));
    const state = new PartitionState(config.state_dir, "panorama");
    state.add(table, refs);
    const glue = new Glue(new AwsClient(config, fast), "panorama");
    expect(await registerPending(config, state, [table], glue)).toBe(true);
    const before = server.partitions("panorama", table).length;

    server.reset();
    // 60 partitions, one of which Glue never had.
    const gone = [...refs.slice(0, 59).map((r) => r.values), ["lms.example.com", "course-v1:Never+X+1"]];
    expect(await unregisterPartitions(config, table, gone, glue)).toBe(true);
    expect(server.calls("BatchDeletePartition")).toBe(3);
    expect(server.calls()).toBe(3);
    expect(server.partitions("panorama", table).length).toBe(before - 59);
    const left = new PartitionState(config.state_dir, "panorama").all(table).map((p) => p.values[1]);
    expect(left).toHaveLength(21);
    expect(left).not.toContain("course-v1:Del+C0+2024");

    // Written again later: registered anew.
    const again = new PartitionState(config.state_dir, "panorama");
    expect(again.add(table, refs.slice(0, 1))).toBe(1);
    expect(await registerPending(config, again, [table], glue)).toBe(true);
    expect(server.partitions("panorama", table).length).toBe(before - 58);
  });

  test("a table Glue does not have holds none of them; a local datalake makes no call", async () => {
    const { config } = s3Config();
    const glue = new Glue(new AwsClient(config, fast), "panorama");
    server.reset();
    expect(await unregisterPartitions(config, "no_such_table", [["lms.example.com", "x"]], glue)).toBe(true);
    expect(server.calls("BatchDeletePartition")).toBe(1);
    const local = writeConfig('[datalake]\ntarget = "local"\npath = "/nonexistent"\n').config();
    server.reset();
    expect(await unregisterPartitions(local, "t", [["lms.example.com", "x"]], glue)).toBe(true);
    expect(server.actions.length).toBe(0);
  });

  test("a removal Glue did not take (unreachable) stays owed and the next registration sends it", async () => {
    const { config, table } = await studentmoduleTableMade();
    const refs = ["Gone", "Kept", "Back"].map((c) => ({
      values: ["lms.example.com", `course-v1:Owed+${c}+2024`],
      bucket: "acme-panorama",
      prefix: `openedx/courseware_studentmodule/lms=lms.example.com/course_id=course-v1%3AOwed%2B${c}%2B2024/`,
    }));
    const glue = new Glue(new AwsClient(config, fast), "panorama");
    const state = new PartitionState(config.state_dir, "panorama");
    state.add(table, refs);
    expect(await registerPending(config, state, [table], glue)).toBe(true);
    const courses = () =>
      server
        .partitions("panorama", table)
        .map((p) => (p.Values as string[])[1])
        .filter((c) => c?.startsWith("course-v1:Owed+"))
        .sort();
    expect(courses()).toEqual([
      "course-v1:Owed+Back+2024",
      "course-v1:Owed+Gone+2024",
      "course-v1:Owed+Kept+2024",
    ]);

    // A port nothing listens on: the objects are gone, Glue is not told.
    const closed = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    const port = closed.port;
    closed.stop(true);
    const deadConfig = {
      ...config,
      datalake: { ...config.datalake, glue_endpoint: `http://127.0.0.1:${port}` },
    };
    const dead = new Glue(new AwsClient(deadConfig, fast), "panorama");
    const gone = [refs[0]!.values, refs[2]!.values];
    expect(await unregisterPartitions(config, table, gone, dead)).toBe(false);
    expect(courses()).toHaveLength(3);

    // One of them written again before the next run: it stays; the other leaves Glue.
    const next = new PartitionState(config.state_dir, "panorama");
    next.add(table, [refs[2]!]);
    expect(await registerPending(config, next, [table], glue)).toBe(true);
    expect(courses()).toEqual(["course-v1:Owed+Back+2024", "course-v1:Owed+Kept+2024"]);
    expect(new PartitionState(config.state_dir, "panorama").removalsOwed(table)).toEqual([]);

    // Nothing owed any more: a steady registration makes no call.
    server.reset();
    expect(
      await registerPending(config, new PartitionState(config.state_dir, "panorama"), [table], glue),
    ).toBe(true);
    expect(server.calls()).toBe(0);
  });

  test("the Glue model refuses 26 partitions in one BatchDeletePartition; the client never sends them", async () => {
    const { config } = s3Config();
    const client = new AwsClient(config, fast);
    const tooMany = Array.from({ length: 26 }, (_, i) => ({ Values: [String(i)] }));
    const error = await client
      .json(
        "glue",
        "AWSGlue.BatchDeletePartition",
        { DatabaseName: "panorama", TableName: "t", PartitionsToDelete: tooMany },
        "t",
      )
      .then(unexpected, (e: AwsError) => e);
    expect(error.code).toBe("ValidationException");
    expect(error.message).toContain("less than or equal to 25");
    const refused = await new Glue(client, "panorama")
      .batchDeletePartition(
        "t",
        tooMany.map((p) => p.Values),
      )
      .then(unexpected, (e: Error) => e.message);
    expect(refused).toContain("at most 25");
  });
});

describe("partitions Glue lost", () => {
  test("deleted by hand: catalog --partitions registers them again, where the hourly registration trusts the state; a table dropped outside panorama and made again by catalog --create gets them all back", async () => {
    const { config, table } = await studentmoduleTableMade();
    const refs = Array.from({ length: 5 }, (_, i) => ({
      values: ["lms.example.com", `course-v1:Lost+C${i}+2024`],
      bucket: "acme-panorama",
      prefix: `openedx/courseware_studentmodule/lms=lms.example.com/course_id=course-v1%3ALost%2BC${i}%2B2024/`,
    }));
    const lostOnes = () =>
      server
        .partitions("panorama", table)
        .map((p) => (p.Values as string[])[1]!)
        .filter((v) => v.includes("Lost+"))
        .sort();
    const state = () => new PartitionState(config.state_dir, "panorama");
    const glue = new Glue(new AwsClient(config, fast), "panorama");
    const first = state();
    first.add(table, refs);
    expect(await registerPending(config, first, [table], glue)).toBe(true);
    expect(lostOnes()).toHaveLength(5);

    // Two deleted by hand (the console, another tool): the state still says registered.
    await glue.batchDeletePartition(table, [refs[0]!.values, refs[1]!.values]);
    server.reset();
    expect(await registerPending(config, state(), [table], glue)).toBe(true);
    expect(server.actions.length).toBe(0);
    expect(lostOnes()).toHaveLength(3);

    const services = catalogServices(config, fast, poll);
    const plan = await planCatalog(
      config,
      config.tables.filter((t) => t.name === "courseware_studentmodule"),
      false,
    );
    const apply = (steps: Partial<Parameters<typeof applyCatalog>[2]>) =>
      applyCatalog(
        config,
        plan,
        { create: false, views: false, partitions: false, drop: false, ...steps },
        services,
        { dryRun: false, logPartitions: false },
      );
    const warn = spyOn(log, "warn");
    try {
      expect(await apply({ partitions: true })).toBe(true);
      expect(warn.mock.calls.map((c) => String(c[0]))).toContain(
        `2 partition(s) of panorama.${table} were registered but Glue no longer has them: registering them again`,
      );
    } finally {
      warn.mockRestore();
    }
    expect(lostOnes()).toEqual(refs.map((r) => r.values[1]!).sort());

    // The table dropped outside panorama, then made again by catalog --create: its partitions
    // are pending, and the next registration sends them.
    await glue.deleteTable(table);
    expect(await apply({ create: true })).toBe(true);
    expect(lostOnes()).toEqual([]);
    expect(await registerPending(config, state(), [table], glue)).toBe(true);
    expect(lostOnes()).toEqual(refs.map((r) => r.values[1]!).sort());
  });
});

describe("errors", () => {
  test("a missing database names the call and says to create it", async () => {
    const { config } = s3Config("", "missing_db");
    const glue = new Glue(new AwsClient(config, fast), "missing_db");
    const error = await glue.getDatabase().catch((e) => e);
    expect(error).toBeInstanceOf(GlueError);
    expect(error.message).toContain("GetDatabase");
    expect(error.message).toContain("missing_db");
    expect(error.hint).toContain('create the Glue database "missing_db"');
  });

  test("partitions of a table that does not exist stay pending, with a hint", async () => {
    const { config } = s3Config();
    const state = new PartitionState(config.state_dir, "panorama");
    state.add("openedx_raw_nowhere", [
      { values: ["x"], bucket: "acme-panorama", prefix: "openedx/nowhere/lms=x/" },
    ]);
    const glue = new Glue(new AwsClient(config, fast), "panorama");
    expect(await registerPending(config, state, ["openedx_raw_nowhere"], glue)).toBe(false);
    expect(new PartitionState(config.state_dir, "panorama").pending("openedx_raw_nowhere").length).toBe(1);
  });

  /** The errors logged while registering `tables`, each with one pending partition, in `database`. */
  async function registrationErrors(config: Config, database: string, tables: string[]): Promise<string[]> {
    const state = new PartitionState(config.state_dir, database);
    for (const table of tables) {
      state.add(table, [{ values: ["x"], bucket: "acme-panorama", prefix: `openedx/${table}/lms=x/` }]);
    }
    const errors: string[] = [];
    const spy = spyOn(log, "error").mockImplementation((message: string) => {
      errors.push(message);
    });
    try {
      const glue = new Glue(new AwsClient(config, fast), database);
      expect(await registerPending(config, state, tables, glue)).toBe(false);
    } finally {
      spy.mockRestore();
    }
    // Every partition stays pending for the next run.
    const reread = new PartitionState(config.state_dir, database);
    for (const table of tables) expect(reread.pending(table).length).toBe(1);
    return errors;
  }

  test("a first run before `panorama catalog`: one error for all the missing tables, with the command", async () => {
    const { config } = s3Config();
    const tables = Array.from({ length: 7 }, (_, i) => `openedx_raw_first_${i}`);
    expect(await registrationErrors(config, "panorama", tables)).toEqual([
      "partitions not registered: 7 table(s) do not exist in the Glue database panorama: openedx_raw_first_0, openedx_raw_first_1, openedx_raw_first_2, openedx_raw_first_3, openedx_raw_first_4 and 2 more; run `panorama catalog` once to create them (and their views); their partitions stay pending and the next run registers them",
    ]);
  });

  test("a Glue database that does not exist: one error with its fix, not one per table", async () => {
    const { config } = s3Config("", "no_such_db");
    const errors = await registrationErrors(config, "no_such_db", [
      "openedx_raw_a",
      "openedx_raw_b",
      "openedx_raw_c",
    ]);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toContain("partitions not registered: Glue GetTable");
    expect(errors[0]).toContain('create the Glue database "no_such_db"');
  });

  test("a workgroup that does not exist: the hint names datalake.workgroup", async () => {
    const { config } = s3Config();
    const athena = new Athena(new AwsClient(config, fast), "no_such_wg", "panorama", poll);
    const error = await athena.getWorkGroup().catch((e) => e);
    expect(error).toBeInstanceOf(AthenaError);
    expect(error.message).toContain("WorkGroup no_such_wg is not found");
    expect(error.hint).toContain('check datalake.workgroup ("no_such_wg")');
  });

  test("a FAILED Athena query is an error carrying Athena's reason", async () => {
    const { config } = s3Config();
    server.failQuery(
      /openedx_table_auth_user/,
      "COLUMN_NOT_FOUND: line 3:12: Column 'nope' cannot be resolved",
    );
    const plan = await planCatalog(
      config,
      config.tables.filter((t) => t.name === "auth_user"),
      false,
    );
    const athena = new Athena(new AwsClient(config, fast), "panorama", "panorama", poll);
    const sql = (await import("../../src/catalog/views.ts")).viewSql(plan.tables[0]!.view, "panorama");
    const error = await athena.run(sql, "view panorama.openedx_table_auth_user").catch((e) => e);
    expect(error).toBeInstanceOf(AthenaError);
    expect(error.message).toContain("FAILED: COLUMN_NOT_FOUND: line 3:12: Column 'nope' cannot be resolved");
    expect(error.message).toContain("openedx_table_auth_user");
  });

  test("a workgroup without a result location stops the views with a hint", async () => {
    const { config } = s3Config();
    const plan = await planCatalog(
      config,
      config.tables.filter((t) => t.name === "auth_user"),
      false,
    );
    const client = new AwsClient(config, fast);
    const services = {
      glue: new Glue(client, "panorama"),
      athena: new Athena(client, "nowhere", "panorama", poll),
    };
    const error = await applyCatalog(
      config,
      plan,
      { create: false, views: true, partitions: false, drop: false },
      services,
      {
        dryRun: false,
        logPartitions: false,
      },
    ).catch((e) => e);
    expect(String(error.message)).toContain("has no query result location");
  });

  test("a wrong secret is refused like AWS refuses it", async () => {
    const { config } = s3Config();
    config.aws.secret_access_key = "wrong";
    const glue = new Glue(new AwsClient(config, fast), "panorama");
    const error = await glue.getDatabase().catch((e) => e);
    expect(error.code).toBe("InvalidSignatureException");
    expect(error.message).toContain("HTTP 403");
    expect(error.hint).toBe("check the secret access key");
  });

  // Seen with this host's clock 20 minutes ahead: Glue and Athena refuse the signature with the
  // code a wrong secret gets, and `catalog` and `doctor` said "check the secret access key".
  test("a clock 20 minutes off: Glue's refusal names the clock, not the secret", async () => {
    for (const minutes of [20, -20]) {
      const skewed = await startAwsJsonServer({
        accessKeyId: KEY,
        secretAccessKey: SECRET,
        databases: ["panorama"],
        clockOffsetMs: -minutes * 60_000,
      });
      try {
        const { config } = s3Config();
        config.datalake.glue_endpoint = skewed.url;
        const glue = new Glue(new AwsClient(config, fast), "panorama");
        const error = await glue.getDatabase().catch((e) => e);
        expect(error.code).toBe("InvalidSignatureException");
        expect(error.message).toContain(minutes > 0 ? "Signature not yet current" : "Signature expired");
        expect(error.hint).toBe("this machine's clock is off: synchronise it (chrony or systemd-timesyncd)");
      } finally {
        await skewed.stop();
      }
    }
  });

  test("the server validates requests against the Glue model: 101 partitions, missing members", async () => {
    const { config } = s3Config();
    const client = new AwsClient(config, fast);
    const sd = { Location: "s3://b/p/" };
    const tooMany = Array.from({ length: 101 }, (_, i) => ({ Values: [String(i)], StorageDescriptor: sd }));
    const error = await client
      .json(
        "glue",
        "AWSGlue.BatchCreatePartition",
        { DatabaseName: "panorama", TableName: "t", PartitionInputList: tooMany },
        "t",
      )
      .then(unexpected, (e: AwsError) => e);
    expect(error).toBeInstanceOf(AwsError);
    expect(error.code).toBe("ValidationException");
    expect(error.message).toContain("less than or equal to 100");
    const missing = await client
      .json("glue", "AWSGlue.BatchCreatePartition", { DatabaseName: "panorama", TableName: "t" }, "t")
      .then(unexpected, (e: AwsError) => e);
    expect(missing.code).toBe("ValidationException");
    expect(missing.message).toContain("PartitionInputList");
    const badEnum = await client
      .json("athena", "AmazonAthena.StartQueryExecution", { QueryString: "" }, "q")
      .then(unexpected, (e: AwsError) => e);
    expect(badEnum.code).toBe("ValidationException");
  });
});
