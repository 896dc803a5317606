// Course structures end to end: the real `mongodb` driver over a socket, the real MariaDB of
// scripts/test-env.sh for the course index, and the Open edX demo course (test/fixtures/course)
// converted into split-modulestore documents.
//
// There is no MongoDB server on these machines: test/support/mongo-server.ts STANDS IN FOR
// MongoDB. It speaks the wire protocol (OP_MSG: hello/isMaster, ping, SCRAM-SHA-256, find with
// $in/$exists filters and projections, getMore in batches of 3, killCursors, endSessions) and
// serves the fixture documents with real ObjectIds.
import { afterAll, afterEach, beforeAll, describe, expect, mock, spyOn, test } from "bun:test";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { MongoClient, ObjectId } from "mongodb";
import type mysql from "mysql2/promise";
import { loadConfig } from "../../src/config/load.ts";
import type { Config, TableConfig } from "../../src/config/types.ts";
import {
  COURSE_INDEX_TABLE,
  COURSE_STRUCTURE_FIELDS,
  countResponseTags,
  extractCourseStructures,
} from "../../src/extract/course-structures.ts";
import { extractTables } from "../../src/extract/extract.ts";
import { connectMongo, MongodbError } from "../../src/extract/mongodb.ts";
import { log } from "../../src/log.ts";
import { Pseudonymizer } from "../../src/privacy/pseudonym.ts";
import { cleanEnv, ROOT, runPanorama } from "../support/cli.ts";
import { droppingProxy } from "../support/dropping-proxy.ts";
import { skipWithoutTestEnv, testEnv } from "../support/env.ts";
import { MongoTestServer } from "../support/mongo-server.ts";
import { rootConnection, testConnection, writeTestConfig } from "../support/mysql.ts";
import {
  activeVersionDoc,
  COURSE_INDEX_DDL,
  courseIndexRow,
  olxCourse,
  olxLibrary,
  type SplitCourse,
} from "../support/olx.ts";
import { decodeFile } from "../support/opencsv.ts";

const skip = skipWithoutTestEnv();
const FIXTURES = join(ROOT, "test", "fixtures", "course");
const USER = { user: "panorama", password: "pä ss:w@rd/1", db: "admin" };
const KEY = "openedx/course_structures/lms=lms.example.com/course_structures.csv";

const library = olxLibrary(join(FIXTURES, "demo-content-library", "library"));
const course = olxCourse(join(FIXTURES, "demo-course", "course"), [library]);
const COURSE_ID = "course-v1:OpenedX+DemoX+DemoCourse";
const loc = (type: string, id: string) => `block-v1:OpenedX+DemoX+DemoCourse+type@${type}+block@${id}`;

let server: MongoTestServer;
let db: mysql.Connection;
const warnings: string[] = [];

/** The server's collections: the demo course and its library, plus `extra` courses. */
function serve(extra: SplitCourse[] = [], activeVersions = true): void {
  server.reset();
  for (const item of [course, library, ...extra]) {
    server.insert("edxapp", "modulestore.structures", [item.structure]);
    server.insert("edxapp", "modulestore.definitions", item.definitions);
    if (activeVersions) server.insert("edxapp", "modulestore.active_versions", [activeVersionDoc(item)]);
  }
}

/** The MySQL course index holding `items` (published_version overridden per course id). */
async function index(items: SplitCourse[], versions: Record<string, string> = {}): Promise<void> {
  await db.query(`DROP TABLE IF EXISTS ${COURSE_INDEX_TABLE}`);
  await db.query(COURSE_INDEX_DDL);
  for (const item of items) {
    const row = courseIndexRow(item, versions[item.id]);
    await db.query(`INSERT INTO ${COURSE_INDEX_TABLE} SET ?`, [row]);
  }
}

function mongoSection(password = USER.password, extra = ""): string {
  return `[mongodb]
host = "127.0.0.1"
port = ${server.port}
user = "${USER.user}"
password = "${password}"
auth_source = "admin"
${extra}
`;
}

async function configWith(body: string): Promise<{ config: Config; stateDir: string }> {
  const cfg = writeTestConfig(body);
  const { config } = await loadConfig({ configPath: cfg.file, env: {} });
  return { config, stateDir: cfg.stateDir };
}

function structuresTable(config: Config): TableConfig {
  const table = config.tables.find((t) => t.name === "course_structures");
  if (!table) throw new Error("the openedx preset has no course_structures table");
  return table;
}

/** The written file as records keyed by field name, by module_location; the header checked. */
function readRows(stateDir: string): Map<string, Record<string, string>> {
  const [header, ...records] = decodeFile(readFileSync(join(stateDir, "spool", KEY), "utf8"));
  expect(header).toEqual([...COURSE_STRUCTURE_FIELDS]);
  const rows = new Map<string, Record<string, string>>();
  for (const record of records) {
    const row: Record<string, string> = {};
    COURSE_STRUCTURE_FIELDS.forEach((f, i) => {
      row[f] = record[i] ?? "";
    });
    expect(rows.has(row.module_location!)).toBe(false);
    rows.set(row.module_location!, row);
  }
  return rows;
}

beforeAll(async () => {
  if (skip) return;
  server = await MongoTestServer.start({ users: [USER] });
  db = await testConnection(testEnv().mysql.scratchDatabase);
  spyOn(log, "warn").mockImplementation((message: string) => {
    warnings.push(message);
  });
});

afterEach(() => {
  warnings.length = 0;
});

afterAll(async () => {
  mock.restore();
  await server?.close();
  await db?.end();
});

describe.skipIf(skip)("the demo course through the real driver", () => {
  test("every block of the published structure is one row, as upstream builds it", async () => {
    serve();
    await index([course, library]);
    const { config, stateDir } = await configWith(mongoSection());
    const summary = await extractCourseStructures(config, structuresTable(config), { dryRun: false });
    expect(summary.error).toBeNull();
    expect(summary).toMatchObject({ rows: 401, files: 1, partitions: 1 });
    const rows = readRows(stateDir);
    expect(rows.size).toBe(course.structure.blocks.length);

    // Libraries are skipped: no row of the library's own structure.
    expect([...rows.values()].every((r) => r.course_id === COURSE_ID)).toBe(true);
    expect([...rows.keys()].some((k) => k.includes("type@library+"))).toBe(false);

    expect(rows.get(COURSE_ID)).toEqual({
      module_location: COURSE_ID,
      course_id: COURSE_ID,
      organization: "OpenedX",
      course_code: "DemoX",
      course_edition: "DemoCourse",
      parent: "",
      block_type: "course",
      block_id: "course",
      display_name: "Open edX Demo Course",
      course_name: "",
      chapter: "",
      sequential: "",
      vertical: "",
      library: "",
      component: "",
      weight: "",
    });
    const vertical = loc("vertical", "260d739348ac4829bbf5a4f0ca5a2c90");
    const ancestors = {
      course_name: "Open edX Demo Course",
      chapter: "Module 3: Ace the Assessments!",
      sequential: "Advanced  Assessment Tools",
    };
    expect(rows.get(vertical)).toMatchObject({
      parent: loc("sequential", "971737e543204551bb34c4ca44e12b86"),
      display_name: "Python-Evaluated Input",
      ...ancestors,
      vertical: "",
      component: "",
    });
    // weight="1.0" in the OLX: the stored double, as upstream wrote it.
    expect(rows.get(loc("problem", "720cac326b684155b4845d32af4aeef0"))).toMatchObject({
      parent: vertical,
      block_type: "problem",
      display_name: "Simple Python-Evaluated Input Problem",
      ...ancestors,
      vertical: "Python-Evaluated Input",
      library: "",
      component: "Simple Python-Evaluated Input Problem",
      weight: "1.0",
    });
    // No weight: one <customresponse in its definition's XML.
    expect(rows.get(loc("problem", "53083a812536472ba8ea8182ee354363"))).toMatchObject({
      parent: vertical,
      component: "Advanced Custom Python-Evaluated Input Problem",
      weight: "1",
    });
    expect(rows.get(loc("html", "7c7c073ce8c148e08c908ff46bc2fa7c"))).toMatchObject({
      parent: vertical,
      display_name: "Python-evaluated input",
      component: "Python-evaluated input",
      weight: "",
    });
    // A library_content block and a copy of a library problem: display name from the library,
    // library column = the library_content's name (none in the export: empty).
    const randomized = loc("library_content", "34a4d5e71d974c029cbde1956bd7c820");
    expect(rows.get(randomized)).toMatchObject({
      parent: loc("vertical", "7aaf479ec21f4b90b30822bdc35ae894"),
      vertical: "Randomized Content",
      component: "",
    });
    expect(rows.get(loc("problem", "0895f1b6c0b329e50b90"))).toMatchObject({
      parent: randomized,
      display_name:
        "Which structure is responsible for preventing food from entering the trachea when swallowing?",
      vertical: "Randomized Content",
      component:
        "Which structure is responsible for preventing food from entering the trachea when swallowing?",
      weight: "1",
    });
  });

  test("every row: parent lists it, ancestors' names from the parent chain, weights from the OLX", async () => {
    serve();
    await index([course, library]);
    const { config, stateDir } = await configWith(mongoSection());
    await extractCourseStructures(config, structuresTable(config), { dryRun: false });
    const rows = readRows(stateDir);
    const blocks = new Map(
      course.structure.blocks.map((b) => [
        b.block_type === "course" ? COURSE_ID : loc(b.block_type, b.block_id),
        b,
      ]),
    );
    const parentOf = new Map<string, string>();
    for (const [location, b] of blocks) {
      for (const [type, id] of b.fields.children ?? []) parentOf.set(loc(type, id), location);
    }
    const COLUMN: Record<string, string> = {
      course: "course_name",
      chapter: "chapter",
      sequential: "sequential",
      vertical: "vertical",
      library_content: "library",
    };
    let problems = 0;
    for (const [location, row] of rows) {
      const b = blocks.get(location)!;
      expect(row.parent).toBe(parentOf.get(location) ?? "");
      // The outermost ancestor of each type names the column.
      const expected: Record<string, string> = {
        course_name: "",
        chapter: "",
        sequential: "",
        vertical: "",
        library: "",
      };
      for (let p = parentOf.get(location); p !== undefined; p = parentOf.get(p)) {
        const ancestor = blocks.get(p)!;
        const column = COLUMN[ancestor.block_type];
        if (column) expected[column] = ancestor.fields.display_name ?? ancestor.defaults.display_name ?? "";
      }
      expect(row).toMatchObject(expected);
      const name = b.fields.display_name ?? b.defaults.display_name ?? "";
      expect(row.display_name).toBe(name);
      const leaf = (b.fields.children ?? []).length === 0 && !(b.block_type in COLUMN);
      expect(row.component).toBe(leaf ? name : "");
      if (b.block_type === "problem") {
        problems++;
        const xml = course.problemXml.get(b.block_id)!;
        const explicit = /^<problem[^>]*\sweight="([^"]+)"/.exec(xml)?.[1];
        expect(row.weight).toBe(explicit ?? String(countResponseTags(xml)));
      } else {
        expect(row.weight).toBe("");
      }
    }
    expect(problems).toBe(29);
  });

  test("structures by $in, definitions only for problems without weight, in batches; getMore used", async () => {
    serve();
    await index([course, library]);
    const { config } = await configWith(mongoSection());
    await extractCourseStructures(config, structuresTable(config), { dryRun: false });
    const structureFinds = server.received("find", "modulestore.structures");
    expect(structureFinds.length).toBe(1);
    expect(structureFinds[0]!.body.filter._id.$in.map(String)).toEqual([course.structure._id.toHexString()]);
    const definitionFinds = server.received("find", "modulestore.definitions");
    const asked = definitionFinds.flatMap((c) => c.body.filter._id.$in.map(String));
    const withoutWeight = course.structure.blocks.filter(
      (b) => b.block_type === "problem" && !b.fields.weight,
    );
    expect(asked.sort()).toEqual(withoutWeight.map((b) => b.definition.toHexString()).sort());
    expect(definitionFinds.length).toBe(1);
    // 28 definitions in batches of 3 from the stand-in: the driver pages with getMore.
    expect(server.received("getMore").length).toBeGreaterThanOrEqual(9);
    expect(server.received("find", "modulestore.active_versions").length).toBe(0);
    expect(server.received("saslStart").length).toBeGreaterThan(0);
    expect(server.received("endSessions").length).toBe(1);
  });

  test("old-style course index (modulestore.active_versions): the same file", async () => {
    serve();
    await index([course, library]);
    const split = await configWith(mongoSection());
    await extractCourseStructures(split.config, structuresTable(split.config), { dryRun: false });
    await db.query(`DROP TABLE ${COURSE_INDEX_TABLE}`);
    const old = await configWith(mongoSection(USER.password, "use_split_mongo = false"));
    const summary = await extractCourseStructures(old.config, structuresTable(old.config), { dryRun: false });
    expect(summary).toMatchObject({ rows: 401, error: null });
    const finds = server.received("find", "modulestore.active_versions");
    expect(finds.map((f) => f.body.filter)).toEqual([{ "versions.published-branch": { $exists: true } }]);
    expect(readFileSync(join(old.stateDir, "spool", KEY), "utf8")).toBe(
      readFileSync(join(split.stateDir, "spool", KEY), "utf8"),
    );
  });

  test("with use_split_mongo and no course index table: the table fails with what to set", async () => {
    serve();
    await db.query(`DROP TABLE IF EXISTS ${COURSE_INDEX_TABLE}`);
    const { config } = await configWith(mongoSection());
    const summary = await extractCourseStructures(config, structuresTable(config), { dryRun: false });
    expect(summary.error).toContain(`${COURSE_INDEX_TABLE} does not exist`);
    expect(summary.error).toContain("use_split_mongo = false");
  });
});

/** A copy of the demo course under another course id, with new ObjectIds, changed by `edit`. */
function variant(run: string, edit: (blocks: SplitCourse["structure"]["blocks"]) => void): SplitCourse {
  const copy = olxCourse(join(FIXTURES, "demo-course", "course"), [library]);
  copy.id = `course-v1:OpenedX+DemoX+${run}`;
  copy.run = run;
  edit(copy.structure.blocks);
  return copy;
}

describe.skipIf(skip)("bad courses are logged with their id; the others are extracted", () => {
  test("missing structure, dangling child, cycle", async () => {
    const dangling = variant("Dangling", (blocks) => {
      const chapter = blocks.find((b) => b.block_type === "chapter")!;
      chapter.fields.children!.unshift(["sequential", "does-not-exist"]);
    });
    const cycle = variant("Cycle", (blocks) => {
      const vertical = blocks.find((b) => b.block_type === "vertical")!;
      vertical.fields.children!.push(["chapter", blocks.find((b) => b.block_type === "chapter")!.block_id]);
    });
    const missing = variant("Missing", () => {});
    serve([dangling, cycle]);
    await index([course, library, dangling, cycle, missing], { [missing.id]: new ObjectId().toHexString() });
    const { config, stateDir } = await configWith(mongoSection());
    const summary = await extractCourseStructures(config, structuresTable(config), { dryRun: false });
    expect(summary.error).toBeNull();
    const rows = readRows(stateDir);
    const perCourse = new Map<string, number>();
    for (const row of rows.values()) perCourse.set(row.course_id!, (perCourse.get(row.course_id!) ?? 0) + 1);
    expect(Object.fromEntries(perCourse)).toEqual({ [COURSE_ID]: 401, [dangling.id]: 401, [cycle.id]: 401 });
    expect(summary.rows).toBe(3 * 401);

    const text = warnings.join("\n");
    expect(text).toContain(`course_structures: ${missing.id}: published structure `);
    expect(text).toContain("not found in modulestore.structures; course skipped");
    expect(text).toContain(
      `course_structures: ${dangling.id}: 1 children referenced but missing from the structure, skipped: sequential/does-not-exist under block-v1:OpenedX+DemoX+Dangling+type@chapter+block@`,
    );
    expect(text).toContain(`course_structures: ${cycle.id}: 1 references that close a cycle, ignored:`);
    expect(text).toContain("course_structures: 1 of 4 courses skipped");
    // The good course is untouched by its neighbours' troubles.
    const demo = [...rows.values()].filter((r) => r.course_id === COURSE_ID);
    expect(demo.filter((r) => r.parent === "").length).toBe(1);
  });

  test("no structure found at all (the wrong database): the table fails, the datalake keeps its file", async () => {
    serve();
    await index([course, library]);
    const cfg = writeTestConfig(`${mongoSection()}\n[extract]\ninclude = ["course_structures"]\n`);
    const first = await runPanorama(["--config", cfg.file, "run"], { env: cleanEnv() });
    expect(first.code).toBe(0);
    const landed = join(cfg.datalake, KEY);
    const stored = readFileSync(landed, "utf8");
    expect(decodeFile(stored).length).toBe(402);

    // Tutor's modulestore database where the data is in "edxapp": every structure is missing.
    const text = readFileSync(cfg.file, "utf8").replace(
      'auth_source = "admin"',
      'auth_source = "admin"\ndatabase = "openedx"',
    );
    writeFileSync(cfg.file, text);
    const wrong = await runPanorama(["--config", cfg.file, "run"], { env: cleanEnv() });
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toContain(
      "course_structures: none of the 1 published courses of MySQL split_modulestore_django_splitmodulestorecourseindex has its structure in MongoDB openedx.modulestore.structures; nothing written, the datalake keeps its course structures",
    );
    expect(wrong.stderr).toContain("check [mongodb] database");
    expect(wrong.stderr).toContain("1 of 1 tables failed (course_structures)");
    expect(readFileSync(landed, "utf8")).toBe(stored);
    expect(
      readdirSync(join(cfg.stateDir, "spool"), { recursive: true }).filter((f) => String(f).endsWith(".csv")),
    ).toEqual([]);
  });
});

describe.skipIf(skip)("pseudonyms", () => {
  test("[privacy] columns naming course structure fields are replaced, the others kept", async () => {
    serve();
    await index([course, library]);
    const cfg = writeTestConfig(
      `${mongoSection()}\n[privacy]\npseudonymize = true\nkey_file = "pseudonym.key"\ncolumns = ["course_structures.display_name", "course_structures.course_name"]\n`,
    );
    const key = new Uint8Array(32).fill(7);
    writeFileSync(join(cfg.dir, "pseudonym.key"), key, { mode: 0o600 });
    const { config } = await loadConfig({ configPath: cfg.file, env: {} });
    const summary = await extractCourseStructures(config, structuresTable(config), { dryRun: false });
    expect(summary.error).toBeNull();
    const pseudonymizer = new Pseudonymizer(key);
    const rows = readRows(cfg.stateDir);
    expect(rows.size).toBe(401);
    const root = rows.get(COURSE_ID)!;
    expect(root.display_name).toBe(pseudonymizer.of("Open edX Demo Course"));
    let replaced = 0;
    for (const row of rows.values()) {
      if (row.display_name !== "") {
        expect(row.display_name).toMatch(/^pz_[a-z2-7]{26}$/);
        replaced++;
      }
      if (row.block_type !== "course") expect(row.course_name).toBe(root.display_name!);
      // Not listed: the component's name and the chapter's stay as they are.
      expect(row.component === "" || !row.component!.startsWith("pz_")).toBe(true);
      expect(row.chapter === "" || !row.chapter!.startsWith("pz_")).toBe(true);
    }
    expect(replaced).toBeGreaterThan(300);
  });
});

describe.skipIf(skip)("connection and authentication errors", () => {
  test("a wrong password: a clear message naming user and server, never the password", async () => {
    serve();
    await index([course, library]);
    const wrong = "Wr0ng-p@ss";
    const { config } = await configWith(mongoSection(wrong));
    const error = await connectMongo(config.mongodb).then(
      () => null,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(MongodbError);
    const e = error as MongodbError;
    expect(e.code).toBe("AuthenticationFailed");
    expect(e.message).toStartWith(`MongoDB panorama@127.0.0.1:${server.port}/edxapp: cannot connect: `);
    expect(e.hint).toContain("user, password and auth_source");
    expect(`${e.message} ${e.hint}`).not.toContain(wrong);

    // Through extract: the table fails with the message, the MySQL tables still run.
    const summaries = await extractTables(config, [structuresTable(config)], { full: false, dryRun: false });
    expect(summaries[0]!.error).toContain("Authentication failed");
    expect(summaries[0]!.error).not.toContain(wrong);
  });

  test("the password in the uri is never shown either", async () => {
    const secret = "uri-s3cret";
    const { config } = await configWith(
      `[mongodb]\nuri = "mongodb://${USER.user}:${secret}@127.0.0.1:${server.port}/edxapp?authSource=admin"\n`,
    );
    const error = (await connectMongo(config.mongodb).catch((e: unknown) => e)) as MongodbError;
    expect(error.code).toBe("AuthenticationFailed");
    expect(error.message).not.toContain(secret);
  });

  test("nothing listening: a connection error with what to check, quickly", async () => {
    const { config } = await configWith(
      `[mongodb]\nuri = "mongodb://127.0.0.1:1/edxapp?serverSelectionTimeoutMS=300"\n`,
    );
    const error = (await connectMongo(config.mongodb).catch((e: unknown) => e)) as MongodbError;
    expect(error.code).toBe("ECONNREFUSED");
    expect(error.message).toStartWith("MongoDB (no user)@127.0.0.1:1/edxapp: cannot connect: ");
    expect(error.hint).toContain("is MongoDB running");
  });
});

describe.skipIf(skip)("the stand-in speaks the protocol the driver expects", () => {
  test("hello, find with a filter, getMore in small batches, killCursors on an abandoned cursor", async () => {
    serve();
    const client = new MongoClient(`${server.uri}/?directConnection=true`, {
      auth: { username: USER.user, password: USER.password },
      authSource: "admin",
    });
    try {
      await client.connect();
      const collection = client.db("edxapp").collection("modulestore.definitions");
      const cursor = collection.find({ block_type: "problem" }, { batchSize: 2 });
      const first = await cursor.next();
      expect(first?._id).toBeInstanceOf(ObjectId);
      await cursor.next();
      await cursor.next();
      await cursor.close();
      expect(server.received("killCursors").length).toBe(1);
      const all = await collection
        .find({ _id: { $in: course.definitions.slice(0, 7).map((d) => d._id) } })
        .toArray();
      expect(all.length).toBe(7);
    } finally {
      await client.close();
    }
    expect(server.commands.some((c) => c.name === "hello" || c.name.toLowerCase() === "ismaster")).toBe(true);
  });
});

describe.skipIf(skip)("panorama extract and run", () => {
  const ENROLLMENT = `DROP TABLE IF EXISTS student_courseenrollment;
    CREATE TABLE student_courseenrollment (id INT PRIMARY KEY, course_id VARCHAR(255), created DATETIME(6),
      is_active TINYINT, mode VARCHAR(100), user_id INT);
    INSERT INTO student_courseenrollment VALUES (1, '${COURSE_ID}', '2024-03-01 10:00:00', 1, 'audit', 7)`;

  test("course_structures lands next to the MySQL tables, in the spool and in the local datalake", async () => {
    serve();
    await index([course, library]);
    await db.query(ENROLLMENT);
    const cfg = writeTestConfig(
      `${mongoSection()}\n[extract]\npreset = "openedx"\ninclude = ["course_structures", "student_courseenrollment"]\n`,
      { mode: "FREE" },
    );
    const extract = await runPanorama(["--config", cfg.file, "extract"], { env: cleanEnv() });
    expect(extract.stderr).not.toContain(USER.password);
    expect(extract.code).toBe(0);
    const spool = readdirSync(join(cfg.stateDir, "spool"), { recursive: true }) as string[];
    expect(spool).toContain(KEY);
    expect(spool).toContain(`${KEY}.manifest.json`);
    expect(spool).toContain(
      "openedx/student_courseenrollment/lms=lms.example.com/student_courseenrollment.csv",
    );
    const manifest = JSON.parse(readFileSync(join(cfg.stateDir, "spool", `${KEY}.manifest.json`), "utf8"));
    expect(manifest).toMatchObject({
      key: KEY,
      table: "course_structures",
      rows: 401,
      partitions: [["lms", "lms.example.com"]],
    });

    const dry = await runPanorama(
      ["--config", cfg.file, "extract", "--dry-run", "--tables", "course_structures"],
      {
        env: cleanEnv(),
      },
    );
    expect(dry.code).toBe(0);

    const run = await runPanorama(["--config", cfg.file, "run"], { env: cleanEnv() });
    expect(run.code).toBe(0);
    const landed = join(cfg.datalake, KEY);
    expect(existsSync(landed)).toBe(true);
    // The dry run read and encoded every row: it announced the bytes that landed.
    expect(dry.stdout).toBe(`${KEY}\t401 rows\t${readFileSync(landed).length} bytes\n`);
    expect(decodeFile(readFileSync(landed, "utf8")).length).toBe(402);
    expect(
      existsSync(
        join(
          cfg.datalake,
          "openedx/student_courseenrollment/lms=lms.example.com/student_courseenrollment.csv",
        ),
      ),
    ).toBe(true);
  });

  test("an account limited to [mysql] connections (MAX_USER_CONNECTIONS 2): the course index is read over the extraction's own connection, not a third", async () => {
    serve();
    await index([course, library]);
    await db.query(ENROLLMENT);
    await db.query(
      "DROP TABLE IF EXISTS cs_limited_extra; CREATE TABLE cs_limited_extra (id INT PRIMARY KEY)",
    );
    const scratch = testEnv().mysql.scratchDatabase;
    const user = "pz_cs_limited";
    const password = "cs-limited-secret-1";
    const root = await rootConnection();
    try {
      await root.query(`DROP USER IF EXISTS '${user}'@'%';
        CREATE USER '${user}'@'%' IDENTIFIED BY '${password}' WITH MAX_USER_CONNECTIONS 2;
        GRANT SELECT ON ${scratch}.* TO '${user}'@'%'`);
      const cfg = writeTestConfig(
        `connections = 2\n${mongoSection()}\n[extract]\npreset = "openedx"\ninclude = ["course_structures", "student_courseenrollment", "cs_limited_extra"]\n\n[[tables]]\nname = "cs_limited_extra"\n`,
        { mode: "FREE", user, password },
      );
      const extract = await runPanorama(["--config", cfg.file, "extract"], { env: cleanEnv() });
      expect(extract.code, extract.stderr).toBe(0);
      expect(extract.stderr).not.toContain("refuses more connections");
      const spool = readdirSync(join(cfg.stateDir, "spool"), { recursive: true }) as string[];
      expect(spool).toContain(KEY);
    } finally {
      await root.query(`DROP USER IF EXISTS '${user}'@'%'; DROP TABLE IF EXISTS ${scratch}.cs_limited_extra`);
      await root.end();
    }
  });

  test("MongoDB lost mid-read (a restart): read again once it answers, the file of a read without a drop", async () => {
    serve();
    await index([course, library]);
    const { config: direct, stateDir: directState } = await configWith(mongoSection());
    expect(
      (await extractCourseStructures(direct, structuresTable(direct), { dryRun: false })).error,
    ).toBeNull();
    const expected = readFileSync(join(directState, "spool", KEY), "utf8");
    const read = async (afterBytes: number, downMs = 0, waitMs = "") => {
      const proxy = await droppingProxy({ host: "127.0.0.1", port: server.port }, { afterBytes, downMs });
      // A short server selection where the run is to give up: the driver's own wait is 10 s.
      const section = waitMs
        ? `[mongodb]\nuri = "mongodb://${encodeURIComponent(USER.user)}:${encodeURIComponent(USER.password)}@127.0.0.1:${proxy.port}/edxapp?authSource=admin&serverSelectionTimeoutMS=300"\n`
        : mongoSection().replace(`port = ${server.port}`, `port = ${proxy.port}`);
      const { config, stateDir } = await configWith(section);
      const saved = process.env.PANORAMA_TEST_SERVER_WAIT_MS;
      process.env.PANORAMA_TEST_SERVER_WAIT_MS = waitMs;
      try {
        const [summary] = await extractTables(config, [structuresTable(config)], {
          full: true,
          dryRun: false,
        });
        const path = join(stateDir, "spool", KEY);
        return { summary: summary!, proxy, text: existsSync(path) ? readFileSync(path, "utf8") : null };
      } finally {
        if (saved === undefined) delete process.env.PANORAMA_TEST_SERVER_WAIT_MS;
        else process.env.PANORAMA_TEST_SERVER_WAIT_MS = saved;
        await proxy.close();
      }
    };
    // Through the proxy without a drop: how much the reading connection carries.
    const whole = await read(Number.MAX_SAFE_INTEGER);
    expect(whole.text === expected).toBe(true);
    // Dropped near the end, in the definitions' getMore (which the driver does not try again),
    // and the port closed for a second, as a restarting server's.
    const dropped = await read(Math.floor(whole.proxy.carried() * 0.9), 1_000);
    expect(dropped.proxy.drops()).toBe(1);
    expect(dropped.summary.error).toBeNull();
    expect(dropped.summary.rows).toBe(401);
    expect(dropped.text === expected).toBe(true);
    expect(
      warnings.filter((w) => w.endsWith("course_structures is read again once the server answers")),
    ).toHaveLength(1);
    // Away for longer than the run waits: the table fails with the cause, and keeps no file.
    warnings.length = 0;
    const away = await read(Math.floor(whole.proxy.carried() * 0.9), 60_000, "500");
    expect(away.summary.error).toContain("cannot connect");
    expect(away.text).toBeNull();
    expect(warnings.filter((w) => w.endsWith("is read again once the server answers"))).toHaveLength(1);
  });

  test("DEMO mode extracts nothing; without a reachable MongoDB only course_structures fails, clearly", async () => {
    serve();
    await index([course, library]);
    await db.query(ENROLLMENT);
    const include = `[extract]\npreset = "openedx"\ninclude = ["course_structures", "student_courseenrollment"]\n`;
    const demo = writeTestConfig(`${mongoSection()}\n${include}`, { mode: "DEMO" });
    const quiet = await runPanorama(["--config", demo.file, "extract"], { env: cleanEnv() });
    expect(quiet.code).toBe(0);
    expect(existsSync(join(demo.stateDir, "spool", KEY))).toBe(false);

    const none = writeTestConfig(
      `[mongodb]\nuri = "mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=300"\n${include}`,
    );
    const failed = await runPanorama(["--config", none.file, "extract"], { env: cleanEnv() });
    expect(failed.code).toBe(1);
    expect(failed.stderr).toContain("MongoDB (no user)@127.0.0.1:1/edxapp: cannot connect");
    expect(failed.stderr).toContain("1 of 2 tables failed (course_structures)");
    expect(failed.stderr).toContain(
      'to go without course structures: [extract] exclude = [\\"course_structures\\"]',
    );
    expect(
      existsSync(
        join(
          none.stateDir,
          "spool",
          "openedx/student_courseenrollment/lms=lms.example.com/student_courseenrollment.csv",
        ),
      ),
    ).toBe(true);
  });
});
