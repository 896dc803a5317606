// The pure core of course structures: a structure document (as the split modulestore keeps it)
// to rows, and the MongoDB connection settings. No server: see the integration tests for those.
import { describe, expect, test } from "bun:test";
import { type Document, Double, Int32, MongoServerError, ObjectId } from "mongodb";
import {
  COURSE_STRUCTURE_FIELDS,
  type CourseVersion,
  countResponseTags,
  courseKeyParts,
  courseRows,
  definitionsNeeded,
  definitionWeight,
  STRUCTURE_BATCH,
  structureBatch,
  weightText,
} from "../../src/extract/course-structures.ts";
import { mongodbError, mongoTarget, redactUri } from "../../src/extract/mongodb.ts";
import { MONGODB_DEFAULTS } from "../support/mongodb-config.ts";

const COURSE: CourseVersion = {
  courseId: "course-v1:Org+C1+2024",
  org: "Org",
  course: "C1",
  run: "2024",
  version: "65a02a73775dfe9dad8b26d2",
};
const LOC = (type: string, id: string) => `block-v1:Org+C1+2024+type@${type}+block@${id}`;

interface BlockSpec {
  type: string;
  id: string;
  name?: string;
  children?: [string, string][];
  weight?: unknown;
  defaults?: Document;
  definition?: ObjectId;
}

function block(spec: BlockSpec): Document {
  const fields: Document = {};
  if (spec.name !== undefined) fields.display_name = spec.name;
  if (spec.children !== undefined) fields.children = spec.children;
  if (spec.weight !== undefined) fields.weight = spec.weight;
  return {
    block_type: spec.type,
    block_id: spec.id,
    definition: spec.definition ?? new ObjectId(),
    fields,
    ...(spec.defaults ? { defaults: spec.defaults } : {}),
  };
}

/** Rows as objects keyed by field name, by module_location. */
function byLocation(rows: unknown[][]): Map<string, Record<string, unknown>> {
  const out = new Map<string, Record<string, unknown>>();
  for (const row of rows) {
    const record: Record<string, unknown> = {};
    COURSE_STRUCTURE_FIELDS.forEach((f, i) => {
      record[f] = row[i];
    });
    out.set(String(row[0]), record);
  }
  return out;
}

describe("courseRows", () => {
  const countedDef = new ObjectId();
  const structure = {
    root: ["course", "course"],
    blocks: [
      block({ type: "course", id: "course", name: "Course Name", children: [["chapter", "ch1"]] }),
      block({ type: "chapter", id: "ch1", name: "Chapter 1", children: [["sequential", "s1"]] }),
      block({
        type: "sequential",
        id: "s1",
        name: "Seq 1",
        children: [
          ["vertical", "v1"],
          ["vertical", "v2"],
        ],
      }),
      block({
        type: "vertical",
        id: "v1",
        name: "Outer vertical",
        children: [
          ["vertical", "inner"],
          ["problem", "p-double"],
        ],
      }),
      block({ type: "vertical", id: "inner", name: "Inner vertical", children: [["html", "h1"]] }),
      block({ type: "html", id: "h1", name: "Some text" }),
      block({ type: "problem", id: "p-double", name: "Weighted", weight: new Double(2) }),
      block({
        type: "vertical",
        id: "v2",
        name: "Unit 2",
        children: [
          ["problem", "p-count"],
          ["library_content", "lc"],
          ["vertical", "empty"],
        ],
      }),
      block({ type: "problem", id: "p-count", name: "Counted", definition: countedDef }),
      block({ type: "library_content", id: "lc", name: "Randomized", children: [["problem", "copy"]] }),
      block({
        type: "problem",
        id: "copy",
        defaults: { display_name: "From the library", weight: new Int32(3) },
      }),
      block({ type: "vertical", id: "empty", name: "Empty unit", children: [] }),
      block({ type: "html", id: "orphan", name: "Orphan" }),
    ],
  };

  const result = courseRows(COURSE, structure, new Map([[countedDef.toHexString(), 4]]));
  const rows = byLocation(result.rows);

  test("one row per block, in the structure's order, 16 fields each", () => {
    expect(result.rows.length).toBe(13);
    expect(result.rows.map((r) => r[7])).toEqual(structure.blocks.map((b) => b.block_id));
    for (const row of result.rows) expect(row.length).toBe(16);
    expect(result.warnings).toEqual([]);
  });

  test("the course row: the course id as location, no parent, no ancestors, no component", () => {
    expect(rows.get(COURSE.courseId)).toEqual({
      module_location: "course-v1:Org+C1+2024",
      course_id: "course-v1:Org+C1+2024",
      organization: "Org",
      course_code: "C1",
      course_edition: "2024",
      parent: null,
      block_type: "course",
      block_id: "course",
      display_name: "Course Name",
      course_name: null,
      chapter: null,
      sequential: null,
      vertical: null,
      library: null,
      component: null,
      weight: null,
    });
  });

  test("parents and the ancestors' names; the outermost vertical names a nested block", () => {
    expect(rows.get(LOC("chapter", "ch1"))).toMatchObject({
      parent: COURSE.courseId,
      course_name: "Course Name",
    });
    expect(rows.get(LOC("html", "h1"))).toMatchObject({
      parent: LOC("vertical", "inner"),
      course_name: "Course Name",
      chapter: "Chapter 1",
      sequential: "Seq 1",
      vertical: "Outer vertical",
      library: null,
      component: "Some text",
      weight: null,
    });
    expect(rows.get(LOC("vertical", "inner"))).toMatchObject({ vertical: "Outer vertical", component: null });
  });

  test("weights: a stored double as 1.0-style text, an integer as is, else the response-tag count", () => {
    expect(rows.get(LOC("problem", "p-double"))).toMatchObject({ weight: "2.0", component: "Weighted" });
    expect(rows.get(LOC("problem", "p-count"))).toMatchObject({ weight: "4", component: "Counted" });
    expect(rows.get(LOC("problem", "copy"))).toMatchObject({ weight: "3" });
  });

  test("a library copy: its library's settings stand in for its own; library names the library_content", () => {
    expect(rows.get(LOC("problem", "copy"))).toMatchObject({
      display_name: "From the library",
      component: "From the library",
      library: "Randomized",
      vertical: "Unit 2",
      parent: LOC("library_content", "lc"),
    });
    expect(rows.get(LOC("library_content", "lc"))).toMatchObject({ component: null, library: null });
  });

  test("an empty vertical is not a component; an orphan has no parent, ancestors or component", () => {
    expect(rows.get(LOC("vertical", "empty"))).toMatchObject({ component: null, sequential: "Seq 1" });
    expect(rows.get(LOC("html", "orphan"))).toMatchObject({
      parent: null,
      course_name: null,
      component: null,
      display_name: "Orphan",
    });
  });

  test("definitions are asked only for problems without a weight", () => {
    expect(definitionsNeeded(structure)).toEqual([countedDef.toHexString()]);
  });

  test("a problem whose definition was not found or has no XML: weight empty, warned", () => {
    const missing = courseRows(COURSE, structure, new Map());
    expect(byLocation(missing.rows).get(LOC("problem", "p-count"))?.weight).toBeNull();
    expect(missing.warnings.join("\n")).toContain(
      `1 problems whose definition was not found, weight left empty: ${LOC("problem", "p-count")}`,
    );
    const noXml = courseRows(COURSE, structure, new Map([[countedDef.toHexString(), null]]));
    expect(noXml.warnings.join("\n")).toContain("problems without readable weight or XML");
  });
});

describe("courseRows on broken structures", () => {
  test("a dangling child is skipped and reported; its siblings keep their parent", () => {
    const { rows, warnings } = courseRows(
      COURSE,
      {
        root: ["course", "course"],
        blocks: [
          block({
            type: "course",
            id: "course",
            name: "C",
            children: [
              ["chapter", "gone"],
              ["chapter", "here"],
            ],
          }),
          block({ type: "chapter", id: "here", name: "Here" }),
        ],
      },
      new Map(),
    );
    expect(rows.length).toBe(2);
    expect(byLocation(rows).get(LOC("chapter", "here"))?.parent).toBe(COURSE.courseId);
    expect(warnings).toEqual([
      `1 children referenced but missing from the structure, skipped: chapter/gone under ${COURSE.courseId}`,
    ]);
  });

  test("a cycle is cut and reported; every block is written once", () => {
    const { rows, warnings } = courseRows(
      COURSE,
      {
        root: ["course", "course"],
        blocks: [
          block({ type: "course", id: "course", name: "C", children: [["chapter", "a"]] }),
          block({ type: "chapter", id: "a", name: "A", children: [["sequential", "b"]] }),
          block({ type: "sequential", id: "b", name: "B", children: [["chapter", "a"]] }),
        ],
      },
      new Map(),
    );
    expect(rows.length).toBe(3);
    expect(byLocation(rows).get(LOC("chapter", "a"))?.parent).toBe(COURSE.courseId);
    expect(warnings).toEqual([
      `1 references that close a cycle, ignored: ${LOC("chapter", "a")} under ${LOC("sequential", "b")}`,
    ]);
  });

  test("a tree 100,000 levels deep is walked without recursion", () => {
    const depth = 100_000;
    const blocks = [block({ type: "course", id: "course", name: "C", children: [["vertical", "v0"]] })];
    for (let i = 0; i < depth; i++) {
      blocks.push(
        block({
          type: "vertical",
          id: `v${i}`,
          name: `V${i}`,
          children: i + 1 < depth ? [["vertical", `v${i + 1}`]] : [],
        }),
      );
    }
    const { rows, warnings } = courseRows(COURSE, { root: ["course", "course"], blocks }, new Map());
    expect(warnings).toEqual([]);
    const last = byLocation(rows).get(LOC("vertical", `v${depth - 1}`));
    expect(last).toMatchObject({
      parent: LOC("vertical", `v${depth - 2}`),
      vertical: "V0",
      course_name: "C",
    });
  });

  test("no block list, no course block, blocks without ids: rows for what can be read, warnings", () => {
    expect(courseRows(COURSE, {}, new Map()).warnings[0]).toBe("the structure has no block list; no rows");
    const noCourse = courseRows(
      COURSE,
      { blocks: [block({ type: "chapter", id: "x", name: "X" }), { block_type: "html" }] },
      new Map(),
    );
    expect(noCourse.rows.length).toBe(1);
    expect(noCourse.warnings).toEqual([
      "1 blocks without block_type or block_id, skipped: #2",
      "no course block: every block is written without parent or ancestors",
    ]);
  });
});

describe("weights and course ids", () => {
  test("response tags are counted as upstream counts them", () => {
    const xml = `<problem><multiplechoiceresponse><choicegroup/></multiplechoiceresponse>
      <optionresponse/><numericalresponse answer="1"/><choiceresponse/><p>no &lt;stringresponse here</p></problem>`;
    expect(countResponseTags(xml)).toBe(4);
    expect(countResponseTags("<problem><p>just text</p></problem>")).toBe(0);
    expect(definitionWeight({ fields: { data: "<problem><stringresponse/></problem>" } })).toBe(1);
    expect(definitionWeight({ fields: {} })).toBeNull();
  });

  test("weightText writes what Python's str() wrote", () => {
    expect(weightText(new Double(1))).toBe("1.0");
    expect(weightText(new Double(0.5))).toBe("0.5");
    expect(weightText(1)).toBe("1.0");
    expect(weightText(new Int32(2))).toBe("2");
    expect(weightText("3")).toBe("3");
    expect(weightText("heavy")).toBeNull();
    expect(weightText({})).toBeNull();
  });

  test("course ids split as upstream split them; other ids refused", () => {
    expect(courseKeyParts("course-v1:MITx+6.00x+2024_T1")).toEqual({
      org: "MITx",
      course: "6.00x",
      run: "2024_T1",
    });
    expect(courseKeyParts("library-v1:Org+Lib")).toBeNull();
    expect(courseKeyParts("course-v1:Org+OnlyTwo")).toBeNull();
  });
});

describe("MongoDB connection settings", () => {
  test("host form: secondaryPreferred, direct connection to one host, auth source defaults to the database", () => {
    const target = mongoTarget({
      ...MONGODB_DEFAULTS,
      host: "mongo.internal",
      user: "openedx",
      password: "pw:@/x",
    });
    expect(target.uri).toBe("mongodb://mongo.internal:27017/");
    expect(target.options).toMatchObject({
      readPreference: "secondaryPreferred",
      directConnection: true,
      auth: { username: "openedx", password: "pw:@/x" },
      authSource: "edxapp",
    });
    expect(target.options.tls).toBeUndefined();
    expect(target.description).toBe("openedx@mongo.internal:27017/edxapp");
  });

  test("host form: tls when asked, auth_source when given, a seed list keeps discovery", () => {
    const target = mongoTarget({
      ...MONGODB_DEFAULTS,
      host: "a,b:27018",
      user: "u",
      password: "p",
      auth_source: "admin",
      tls: true,
    });
    expect(target.uri).toBe("mongodb://a:27017,b:27018/");
    expect(target.options).toMatchObject({ tls: true, authSource: "admin", directConnection: false });
  });

  test("uri form: the uri's own choices win; the password never reaches the description", () => {
    const target = mongoTarget({
      ...MONGODB_DEFAULTS,
      uri: "mongodb://openedx:s3cret@mongo:27017/modulestore?readPreference=primary&authSource=admin",
      tls: true,
    });
    expect(target.database).toBe("modulestore");
    expect(target.options.readPreference).toBeUndefined();
    expect(target.options.authSource).toBeUndefined();
    expect(target.options).toMatchObject({ directConnection: true, tls: true });
    expect(target.description).toBe("openedx@mongo:27017/modulestore");
    expect(redactUri("mongodb://openedx:s3cret@mongo:27017/x")).toBe("mongodb://openedx:***@mongo:27017/x");
  });

  test("driver errors name the server and never the password, in any form", () => {
    const config = { ...MONGODB_DEFAULTS, uri: "mongodb://openedx:p%40ss@mongo:27017/edxapp" };
    const auth = new MongoServerError({
      errmsg: "Authentication failed for p@ss",
      code: 18,
      codeName: "AuthenticationFailed",
    });
    const error = mongodbError(auth, config, "cannot connect");
    expect(error.code).toBe("AuthenticationFailed");
    expect(error.message).toBe(
      "MongoDB openedx@mongo:27017/edxapp: cannot connect: Authentication failed for ***",
    );
    expect(error.hint).toContain("auth_source");
    const refused = mongodbError(
      new Error("connect ECONNREFUSED 10.0.0.1:27017 (mongodb://openedx:p%40ss@mongo)"),
      config,
      "cannot connect",
    );
    expect(refused.code).toBe("ECONNREFUSED");
    expect(refused.message).not.toContain("p%40ss");
    expect(refused.message).not.toContain("p@ss");
  });

  test("a host that does not resolve: Tutor's container name is said to be one, with what to set", () => {
    const notFound = new Error("getaddrinfo ENOTFOUND mongodb");
    const hint = "the host name does not resolve: check [mongodb] host (or uri)";
    const tutor = mongodbError(notFound, { ...MONGODB_DEFAULTS, host: "mongodb" }, "cannot connect");
    expect(tutor.code).toBe("ENOTFOUND");
    expect(tutor.hint).toBe(
      `${hint}; "mongodb" is Tutor's container name, which resolves only inside Tutor's Docker network: set [mongodb] host = "127.0.0.1" and port to the port Tutor publishes it on, or run panorama inside that network`,
    );
    const other = new Error("getaddrinfo ENOTFOUND mongo.example");
    expect(mongodbError(other, { ...MONGODB_DEFAULTS, host: "mongo.example" }, "cannot connect").hint).toBe(
      hint,
    );
    // A URI names its own hosts: host is not used.
    const uri = { ...MONGODB_DEFAULTS, host: "mongodb", uri: "mongodb://mongo.example:27017/edxapp" };
    expect(mongodbError(other, uri, "cannot connect").hint).toBe(hint);
  });
});

describe("structures per query", () => {
  test("one to learn their size, then as many as keep a batch near 3,000 blocks, 5 at most", () => {
    expect(structureBatch(null)).toBe(1);
    expect(structureBatch(0)).toBe(STRUCTURE_BATCH);
    expect(structureBatch(300)).toBe(5);
    expect(structureBatch(1_000)).toBe(3);
    expect(structureBatch(2_999)).toBe(1);
    // A course of 6,000 blocks: 5 of them in one answer peaked at 199 MiB, one at a time 122.
    expect(structureBatch(6_000)).toBe(1);
  });
});
