// A host switching from upstream's panorama-elt (DESIGN §6, §10): its raw tables already exist in
// Glue, created by upstream's Athena DDL (every reference field a string column, in order;
// partitioned by lms, and course_id for courseware_studentmodule; its own table properties).
// `run` and `catalog` accept them as they are. One table made by an older panorama (auth_user
// without upstream's password column) is misaligned: a clear error, nothing stored under it,
// and the fix it names works. Glue is the loopback stand-in of test/support/aws-json-server.ts.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { AwsClient } from "../../src/aws/client.ts";
import { Glue, type TableInput } from "../../src/aws/glue.ts";
import {
  CSV_SERDE_PARAMETERS,
  OPEN_CSV_SERDE,
  TEXT_INPUT_FORMAT,
  TEXT_OUTPUT_FORMAT,
} from "../../src/catalog/model.ts";
import { parseConfig } from "../../src/config/load.ts";
import reference from "../../src/config/openedx-tables.json" with { type: "json" };
import { type AwsJsonServer, startTestGlue } from "../support/aws-json-server.ts";
import { cleanEnv, runPanorama } from "../support/cli.ts";
import { skipWithoutTestEnv, testEnv } from "../support/env.ts";
import { dropTestDatabase, generatedDatabase } from "../support/mysql.ts";
import { writeS3Config } from "../support/s3-config.ts";

const skip = skipWithoutTestEnv();
// Generating the Open edX database and running the CLI take seconds each: more, on a busy
// machine, than bun's 5 s default.
setDefaultTimeout(120_000);
const DATABASE = "panorama_upstream";
const PREFIX = `upstream_${Date.now().toString(36)}`;
const MYSQL_TABLES = reference.tables.filter((t) => t.datasource === "mysql");

let glue: AwsJsonServer;
let setup: ReturnType<typeof writeS3Config>;
/** The error `run` gives for the misaligned auth_user, whose fix a later test follows. */
let misalignedError = "";

/** A raw table as upstream's `CREATE EXTERNAL TABLE` leaves it in Glue. */
function upstreamTable(table: (typeof MYSQL_TABLES)[number], columns?: string[]): TableInput {
  const partitionFields = table.partitions?.partition_fields ?? [];
  const string = (Name: string) => ({ Name, Type: "string" });
  return {
    Name: `${PREFIX}_raw_${table.name}`,
    TableType: "EXTERNAL_TABLE",
    Parameters: {
      EXTERNAL: "TRUE",
      areColumnsQuoted: "false",
      classification: "csv",
      columnsOrdered: "true",
      compressionType: "none",
      delimiter: ",",
      "skip.header.line.count": "1",
      typeOfData: "file",
    },
    PartitionKeys: ["lms", ...partitionFields].map(string),
    StorageDescriptor: {
      Columns: (columns ?? table.fields.map((f) => f.name).filter((f) => !partitionFields.includes(f))).map(
        string,
      ),
      Location: `s3://${testEnv().s3.bucket}/${PREFIX}/${table.name}/`,
      InputFormat: TEXT_INPUT_FORMAT,
      OutputFormat: TEXT_OUTPUT_FORMAT,
      SerdeInfo: { SerializationLibrary: OPEN_CSV_SERDE, Parameters: { ...CSV_SERDE_PARAMETERS } },
    },
  };
}

/** Keys under the prefix, straight from s3rver. */
async function storedKeys(): Promise<string[]> {
  const env = testEnv().s3;
  const keys: string[] = [];
  let token = "";
  for (;;) {
    const query = `list-type=2&prefix=${encodeURIComponent(`${PREFIX}/`)}${token ? `&continuation-token=${encodeURIComponent(token)}` : ""}`;
    const xml = await (await fetch(`${env.directEndpoint}/${env.bucket}?${query}`)).text();
    for (const m of xml.matchAll(/<Key>([^<]*)<\/Key>/g)) keys.push((m[1] ?? "").slice(PREFIX.length + 1));
    token = /<NextContinuationToken>([^<]*)</.exec(xml)?.[1] ?? "";
    if (!token) return keys;
  }
}

function messages(stderr: string): { level: string; message: string }[] {
  return stderr
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { level: string; message: string });
}

const cli = (...args: string[]) =>
  runPanorama(["--config", setup.file, "--json", ...args], { env: cleanEnv() });

beforeAll(async () => {
  if (skip) return;
  const env = testEnv();
  await generatedDatabase(DATABASE, { users: 20, courses: 2, enrollments: 30, studentmodule: 80, seed: 3 });
  glue = await startTestGlue();
  setup = writeS3Config({
    datalake: `base_prefix = "${PREFIX}"\ndatabase = "panorama"\nglue_endpoint = "${glue.url}"\nathena_endpoint = "${glue.url}"`,
    body: '[extract]\nexclude = ["course_structures"]\n',
  });
  const text = readFileSync(setup.file, "utf8").replace(
    `database = "${env.mysql.scratchDatabase}"`,
    `database = "${DATABASE}"`,
  );
  writeFileSync(setup.file, text);
  const catalog = new Glue(new AwsClient(parseConfig(text, setup.file, {}).config), "panorama");
  for (const table of MYSQL_TABLES) {
    // auth_user as an older panorama made it: without upstream's password column.
    const olderPanorama =
      table.name === "auth_user"
        ? table.fields.map((f) => f.name).filter((f) => f !== "password")
        : undefined;
    await catalog.createTable(upstreamTable(table, olderPanorama));
  }
});

afterAll(async () => {
  if (skip) return;
  await glue?.stop();
  if (setup) rmSync(setup.dir, { recursive: true, force: true });
  await dropTestDatabase(DATABASE);
});

describe.skipIf(skip)("raw tables made by upstream", () => {
  test("run: upstream's tables are written under; the misaligned one is an error naming table and columns, nothing stored under it", async () => {
    const result = await cli("run");
    expect(result.code).toBe(1);
    const errors = messages(result.stderr).filter((m) => m.level === "error");
    misalignedError = errors[0]?.message ?? "";
    expect(errors[0]?.message).toBe(
      `not extracted: table ${PREFIX}_raw_auth_user does not line up with the layout of auth_user: it lacks "password". Its columns: id, last_login, is_superuser, username, first_name, last_name, email, is_staff, is_active, date_joined; the layout's: id, password, last_login, is_superuser, username, first_name, last_name, email, is_staff, is_active, date_joined; nothing is written under it until it is fixed (drop it and create it again: \`panorama catalog --drop --yes --tables auth_user\`, then \`panorama catalog --tables auth_user\` (the table, its view and its partitions; the data stays in place), and \`panorama run --full --tables auth_user\` to write its files again in the layout; or, to keep the table, give auth_user the \`fields\` that match it in [[tables]])`,
    );
    expect(errors.map((e) => e.message).slice(1)).toEqual([
      `1 of ${MYSQL_TABLES.length} tables failed (auth_user)`,
    ]);
    const keys = await storedKeys();
    expect(keys.filter((k) => k.startsWith("auth_user/"))).toEqual([]);
    const stored = new Set(keys.map((k) => k.split("/")[0]));
    expect(stored.size).toBe(MYSQL_TABLES.length - 1);
    // Upstream's tables are used as they are: no table created or changed, partitions registered.
    expect(glue.calls("CreateTable")).toBe(MYSQL_TABLES.length);
    expect(glue.calls("UpdateTable")).toBe(0);
    expect(glue.partitions("panorama", `${PREFIX}_raw_courseware_studentmodule`).length).toBe(2);
    expect(glue.partitions("panorama", `${PREFIX}_raw_auth_user`)).toEqual([]);
  });

  test("catalog --create accepts upstream's tables and refuses the misaligned one with the same fix", async () => {
    const result = await cli("catalog", "--create");
    expect(result.code).toBe(1);
    const lines = messages(result.stderr);
    const upToDate = lines.filter((l) => l.message.endsWith(" is up to date"));
    expect(upToDate.length).toBe(MYSQL_TABLES.length - 1);
    expect(lines.filter((l) => l.level === "error").map((l) => l.message)).toEqual([
      expect.stringContaining(
        `table panorama.${PREFIX}_raw_auth_user: table ${PREFIX}_raw_auth_user does not line up`,
      ),
    ]);
    expect(glue.calls("UpdateTable")).toBe(0);
  });

  test("run --dry-run says the same and plans nothing for that table", async () => {
    // --full: the other tables are planned although unchanged since the run above.
    const result = await cli("run", "--dry-run", "--full");
    expect(result.code).toBe(1);
    expect(messages(result.stderr).filter((l) => l.level === "error")[0]?.message).toStartWith(
      `not extracted: table ${PREFIX}_raw_auth_user does not line up with the layout of auth_user: it lacks "password"`,
    );
    expect(result.stdout).toContain("/auth_userprofile/");
    expect(result.stdout).not.toContain("/auth_user/");
  });

  test("upload keeps the misaligned table's spool files in the spool, with the same error", async () => {
    expect((await cli("extract", "--tables", "auth_user")).code).toBe(0);
    const result = await cli("upload");
    expect(result.code).toBe(1);
    expect(
      messages(result.stderr)
        .filter((l) => l.level === "error")
        .map((l) => l.message),
    ).toEqual([
      expect.stringMatching(
        /^auth_user: 1 file\(s\) kept in the spool: table \S+_raw_auth_user does not line up/,
      ),
    ]);
    expect((await storedKeys()).filter((k) => k.startsWith("auth_user/"))).toEqual([]);
  });

  test("the fix it names works: its catalog commands give back the table and its view, then run stores auth_user with its password column empty", async () => {
    const commands = [...misalignedError.matchAll(/`panorama (catalog [^`]+)`/g)].map((m) =>
      m[1]!.split(" "),
    );
    expect(commands.length).toBe(2);
    for (const command of commands) expect((await cli(...command)).code).toBe(0);
    // The view the drop removed is back: dashboards read it, not the raw table.
    expect(glue.table("panorama", `${PREFIX}_table_auth_user`)).toBeDefined();
    const result = await cli("run", "--tables", "auth_user");
    expect(result.stderr).not.toContain('"level":"error"');
    expect(result.code).toBe(0);
    const keys = await storedKeys();
    expect(keys).toContain("auth_user/lms=lms.example.com/auth_user.csv");
    const env = testEnv().s3;
    const body = await (
      await fetch(`${env.directEndpoint}/${env.bucket}/${PREFIX}/auth_user/lms=lms.example.com/auth_user.csv`)
    ).text();
    expect(body.split("\r\n")[0]).toBe(
      "id,password,last_login,is_superuser,username,first_name,last_name,email,is_staff,is_active,date_joined",
    );
    expect(body.split("\r\n")[1]).toMatch(/^\d+,,/);
  });

  test("upstream's own auth_user (with its password column) is the table catalog makes: accepted as it is", async () => {
    expect((await cli("catalog", "--drop", "--yes", "--tables", "auth_user")).code).toBe(0);
    const text = readFileSync(setup.file, "utf8");
    const catalog = new Glue(new AwsClient(parseConfig(text, setup.file, {}).config), "panorama");
    await catalog.createTable(upstreamTable(MYSQL_TABLES.find((t) => t.name === "auth_user")!));
    const create = await cli("catalog", "--create", "--tables", "auth_user");
    expect(create.code).toBe(0);
    expect(messages(create.stderr).map((l) => l.message)).toContain(
      `table panorama.${PREFIX}_raw_auth_user is up to date`,
    );
    const updates = glue.calls("UpdateTable");
    const run = await cli("run", "--tables", "auth_user");
    expect(run.stderr).not.toContain('"level":"error"');
    expect(run.code).toBe(0);
    expect(glue.calls("UpdateTable")).toBe(updates);
  });
});
