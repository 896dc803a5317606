// Course structures benchmark (run by hand, never by the test suite):
//   scripts/test-env.sh node_modules/.bin/bun scripts/bench-course-structures.ts [--courses 2000] [--blocks 300] [--runs 1] [--only panorama]
// Serves COURSES synthetic courses of BLOCKS blocks each (course, chapters, sequentials,
// verticals, then html/video/problem components; 2 problems in 5, half of them without a weight
// so their definitions are read) from test/support/mongo-server.ts, the MongoDB wire-protocol
// stand-in, in a process of its own; the course index goes into the test MariaDB. Then times,
// side by side in one run, each in its own process with its peak RSS:
//   - driver floor: the same queries panorama sends, documents read and dropped (no rows);
//   - upstream's access pattern: every structure in one unprojected $in, kept in memory, and
//     one findOne per problem without a weight;
//   - `panorama extract --tables course_structures`, the executable cron runs (scripts/build.sh,
//     into the run's directory) (target: ≤ 30 s, ≤ 128 MB).
import { readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { type Document, Double, MongoClient, ObjectId } from "mongodb";
import { objectKey } from "../src/datalake/layout.ts";
import { MANIFEST_SUFFIX, spoolDir } from "../src/datalake/spool.ts";
import {
  COURSE_INDEX_TABLE,
  DEFINITION_BATCH,
  DEFINITION_PROJECTION,
  STRUCTURE_PROJECTION,
  structureBatch,
} from "../src/extract/course-structures.ts";
import { testEnv } from "../test/support/env.ts";
import { MongoTestServer } from "../test/support/mongo-server.ts";
import { testConnection, writeTestConfig } from "../test/support/mysql.ts";
import { COURSE_INDEX_DDL } from "../test/support/olx.ts";
import { buildExecutable, measure, median } from "./bench-support.ts";

const { values } = parseArgs({
  options: {
    courses: { type: "string", default: "2000" },
    blocks: { type: "string", default: "300" },
    runs: { type: "string", default: "1" },
    serve: { type: "boolean", default: false },
    baseline: { type: "string" },
    port: { type: "string" },
    only: { type: "string" },
  },
});
const COURSES = Number(values.courses);
const BLOCKS = Number(values.blocks);
const RUNS = Number(values.runs);

/** ObjectIds derived from numbers, so every process agrees on them without talking. */
function oid(kind: number, course: number, n = 0): ObjectId {
  return new ObjectId(
    `${kind.toString(16).padStart(4, "0")}${course.toString(16).padStart(10, "0")}${n.toString(16).padStart(10, "0")}`,
  );
}
const structureId = (course: number) => oid(1, course);
const courseKey = (i: number) => `course-v1:BenchOrg+C${i}+2024_T1`;

const PROBLEM_XML = (i: number) =>
  `<problem><p>Question ${i}: pick the right answers. ${"Some explanatory text. ".repeat(20)}</p>
<multiplechoiceresponse><label>First?</label><choicegroup type="MultipleChoice">
<choice correct="false">A</choice><choice correct="true">B</choice><choice correct="false">C</choice>
</choicegroup></multiplechoiceresponse>
<optionresponse><optioninput options="('yes','no')" correct="yes"/></optionresponse>
<solution><div class="detailed-solution"><p>Because.</p></div></solution></problem>`;

/** One course: its structure (BLOCKS blocks) and the definitions of its problems. */
function buildCourse(c: number): { structure: Document; definitions: Document[] } {
  const version = structureId(c);
  const editInfo = {
    edited_on: new Date("2024-03-01T10:00:00Z"),
    edited_by: 3,
    previous_version: oid(2, c),
    update_version: version,
    source_version: null,
  };
  const blocks: Document[] = [];
  const definitions: Document[] = [];
  let n = 0;
  const add = (type: string, name: string, fields: Document = {}): Document => {
    const definition = oid(3, c, n);
    const block = {
      block_type: type,
      block_id: `${type}${n}`,
      definition,
      fields: { display_name: name, ...fields },
      defaults: {},
      edit_info: editInfo,
      asides: [],
    };
    n++;
    blocks.push(block);
    return block;
  };
  const child = (b: Document): [string, string] => [b.block_type, b.block_id];
  const course = add("course", `Benchmark course ${c}`, { start: new Date("2024-01-01"), children: [] });
  const chapters = Array.from({ length: 5 }, (_, i) => add("chapter", `Week ${i + 1}`, { children: [] }));
  course.fields.children = chapters.map(child);
  const sequentials = Array.from({ length: 20 }, (_, i) =>
    add("sequential", `Lesson ${i + 1}`, { children: [], graded: i % 3 === 0, format: "Homework" }),
  );
  for (const [i, s] of sequentials.entries()) chapters[i % chapters.length]!.fields.children.push(child(s));
  const verticalCount = Math.max(1, Math.min(54, BLOCKS - 26 - 1));
  const verticals = Array.from({ length: verticalCount }, (_, i) =>
    add("vertical", `Unit ${i + 1}`, { children: [] }),
  );
  for (const [i, v] of verticals.entries())
    sequentials[i % sequentials.length]!.fields.children.push(child(v));
  for (let i = 0; n < BLOCKS; i++) {
    const kind = i % 5;
    const block =
      kind === 1 || kind === 4
        ? add(
            "problem",
            `Problem ${i}`,
            kind === 4 ? { weight: new Double(2), max_attempts: 3 } : { max_attempts: 3 },
          )
        : add(kind === 2 ? "video" : "html", `Component ${i}`);
    verticals[i % verticals.length]!.fields.children.push(child(block));
    if (block.block_type === "problem") {
      definitions.push({
        _id: block.definition,
        block_type: "problem",
        fields: { data: PROBLEM_XML(i) },
        schema_version: 1,
      });
    }
  }
  return {
    structure: {
      _id: version,
      root: ["course", "course"],
      schema_version: 1,
      edited_on: editInfo.edited_on,
      blocks,
    },
    definitions,
  };
}

// ---- the server process: holds the documents, prints its port, serves until killed ----

if (values.serve) {
  const server = await MongoTestServer.start({ record: false, maxBatch: 500 });
  for (let c = 0; c < COURSES; c++) {
    const { structure, definitions } = buildCourse(c);
    server.insert("edxapp", "modulestore.structures", [structure]);
    server.insert("edxapp", "modulestore.definitions", definitions);
  }
  console.log(server.port);
  await new Promise(() => {});
}

// ---- a baseline process: reads what panorama reads (or what upstream read), writes nothing ----

if (values.baseline) {
  const client = new MongoClient(`mongodb://127.0.0.1:${values.port}/?directConnection=true`);
  await client.connect();
  const db = client.db("edxapp");
  const ids = Array.from({ length: COURSES }, (_, c) => structureId(c));
  let blocks = 0;
  if (values.baseline === "driver") {
    let largest: number | null = null;
    for (let i = 0; i < ids.length; ) {
      const needed: ObjectId[] = [];
      const batch = ids.slice(i, i + structureBatch(largest));
      i += batch.length;
      const cursor = db
        .collection("modulestore.structures")
        .find({ _id: { $in: batch } }, { projection: STRUCTURE_PROJECTION, promoteValues: false });
      for await (const s of cursor) {
        largest = Math.max(largest ?? 0, s.blocks.length);
        for (const b of s.blocks) {
          blocks++;
          if (b.block_type === "problem" && !b.fields.weight) needed.push(b.definition);
        }
      }
      for (let j = 0; j < needed.length; j += DEFINITION_BATCH) {
        await db
          .collection("modulestore.definitions")
          .find(
            { _id: { $in: needed.slice(j, j + DEFINITION_BATCH) } },
            { projection: DEFINITION_PROJECTION },
          )
          .toArray();
      }
    }
  } else {
    const structures = await db
      .collection("modulestore.structures")
      .find({ _id: { $in: ids } })
      .toArray();
    for (const s of structures) {
      for (const b of s.blocks) {
        blocks++;
        if (b.block_type === "problem" && b.fields.weight == null) {
          await db.collection("modulestore.definitions").findOne({ _id: b.definition });
        }
      }
    }
  }
  await client.close();
  console.log(blocks);
  process.exit(0);
}

// ---- the driver: course index, server, then each case in its own process ----

const db = await testConnection(testEnv().mysql.scratchDatabase);
await db.query(`DROP TABLE IF EXISTS ${COURSE_INDEX_TABLE}`);
await db.query(COURSE_INDEX_DDL);
const rows = Array.from({ length: COURSES }, (_, c) => {
  const v = structureId(c).toHexString();
  return [
    oid(4, c).toHexString(),
    courseKey(c),
    "BenchOrg",
    v,
    v,
    "",
    `BenchOrg.C${c}`,
    "mongodb",
    new Date(),
    new Date(),
    3,
  ];
});
for (let i = 0; i < rows.length; i += 500) {
  await db.query(
    `INSERT INTO ${COURSE_INDEX_TABLE} (objectid, course_id, org, draft_version, published_version, library_version, wiki_slug, base_store, edited_on, last_update, edited_by_id) VALUES ?`,
    [rows.slice(i, i + 500)],
  );
}
await db.end();

const self = import.meta.path;
const bun = process.execPath;
const server = Bun.spawn([bun, self, "--serve", "--courses", String(COURSES), "--blocks", String(BLOCKS)], {
  stdout: "pipe",
  stderr: "inherit",
});
const reader = server.stdout.getReader();
let line = "";
while (!line.includes("\n")) {
  const { value, done } = await reader.read();
  if (done) throw new Error("the MongoDB stand-in exited before listening");
  line += new TextDecoder().decode(value);
}
const port = Number(line.trim());
console.error(`MongoDB stand-in on port ${port}: ${COURSES} courses x ${BLOCKS} blocks`);

const config = writeTestConfig(`[mongodb]
host = "127.0.0.1"
port = ${port}
[extract]
preset = "openedx"
include = ["course_structures"]
`);

const common = ["--courses", String(COURSES), "--blocks", String(BLOCKS), "--port", String(port)];
const cases = [
  { name: "driver floor (same queries, no rows)", cmd: [bun, self, "--baseline", "driver", ...common] },
  {
    name: "upstream access (one $in, findOne per problem)",
    cmd: [bun, self, "--baseline", "upstream", ...common],
  },
  {
    name: "panorama extract --tables course_structures",
    cmd: [buildExecutable(config.dir), "--config", config.file, "extract", "--tables", "course_structures"],
  },
];
const key = objectKey({
  basePrefix: "openedx",
  table: "course_structures",
  partitions: [["lms", "lms.example.com"]],
  compression: "none",
});
const manifest = join(spoolDir(config.stateDir), `${key}${MANIFEST_SUFFIX}`);
try {
  const results: { name: string; seconds: number; rss: number }[] = [];
  for (const c of cases.filter((c) => values.only === undefined || c.name.includes(values.only!))) {
    const times: number[] = [];
    const rss: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      rmSync(config.stateDir, { recursive: true, force: true });
      const m = await measure(c.cmd, {}, { stdout: true });
      // Every case must have read every block: a fast wrong answer is no result.
      const seen = c.name.startsWith("panorama")
        ? JSON.parse(readFileSync(manifest, "utf8")).rows
        : Number(m.stdout?.trim());
      if (seen !== COURSES * BLOCKS) throw new Error(`${c.name}: ${seen} rows, expected ${COURSES * BLOCKS}`);
      times.push(m.seconds);
      rss.push(m.maxRssMiB);
    }
    results.push({ name: c.name, seconds: median(times), rss: Math.max(...rss) });
  }
  const rowsTotal = COURSES * BLOCKS;
  const floor = results[0]!.seconds;
  console.log(
    `\n${COURSES} courses x ${BLOCKS} blocks = ${rowsTotal.toLocaleString("en-US")} rows, median of ${RUNS} run(s)`,
  );
  for (const r of results) {
    console.log(
      `${r.name.padEnd(50)} ${r.seconds.toFixed(2).padStart(7)} s  ${(r.seconds / floor).toFixed(2)}x floor  peak RSS ${r.rss.toFixed(0)} MiB  ${Math.round(rowsTotal / r.seconds).toLocaleString("en-US")} rows/s`,
    );
  }
} finally {
  server.kill();
  rmSync(config.dir, { recursive: true, force: true });
}
