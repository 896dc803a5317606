// Course structures (DESIGN §10): one row per block of the published version of every course,
// read from the split modulestore. The course index (which structure is published) comes from
// MySQL (Open edX Maple and later) or MongoDB's active_versions; structures and, for problems
// without a weight, their definitions come from MongoDB in batches. The rows stream into one spool
// file, so memory holds one batch of structures, never the whole catalogue.
//
// Output matches upstream panorama-elt (course_structures_datasource.py) field by field, with
// these fixes: a course whose structure is missing is logged and skipped, a dangling child or a
// reference closing a cycle is logged and ignored (the rest of the course is written), where
// upstream failed the whole table or recursed forever; definitions are fetched in batches
// instead of one query per problem; the tree is walked without recursion, and a block listed by
// two parents keeps the first; settings inherited from a content library (the block's
// `defaults`) stand in for a missing display_name or weight.

import { noFTL } from "bun:jsc";
import { type Db, type Document, Double, Int32, Long, ObjectId } from "mongodb";
import type { Connection } from "mysql2";
import type { Config, TableConfig } from "../config/types.ts";
import { objectKey } from "../datalake/layout.ts";
import { type ManifestEntry, SpoolWriter, spoolDir } from "../datalake/spool.ts";
import { messageOf, PanoramaError } from "../errors.ts";
import { log } from "../log.ts";
import { pseudonymizedColumns } from "../privacy/fields.ts";
import { Pseudonymizer } from "../privacy/pseudonym.ts";
import {
  COURSE_INDEX_IN_MONGODB,
  COURSE_INDEX_TABLE,
  COURSE_STRUCTURE_FIELDS,
  USE_MONGODB_COURSE_INDEX,
} from "./course-structure-fields.ts";
import { type CellValue, encodeHeader, encodeRows, formatDouble } from "./csv.ts";
import type { ExtractEvents, TableSummary } from "./events.ts";
import { connectMongo, isUnreachable, MongodbError, mongodbError } from "./mongodb.ts";
import { close, connect, mysqlError, query } from "./mysql.ts";

export { COURSE_INDEX_TABLE, COURSE_STRUCTURE_FIELDS } from "./course-structure-fields.ts";

/** The tags that make a problem's score: each one found in its XML counts 1 towards its weight. */
const RESPONSE_TAGS = [
  "choiceresponse",
  "multiplechoiceresponse",
  "truefalseresponse",
  "optionresponse",
  "numericalresponse",
  "stringresponse",
  "customresponse",
  "symbolicresponse",
  "coderesponse",
  "externalresponse",
  "formularesponse",
  "schematicresponse",
  "imageresponse",
  "annotationresponse",
  "choicetextresponse",
] as const;

const RESPONSE_TAG_PATTERN = new RegExp(RESPONSE_TAGS.map((t) => `<${t}`).join("|"), "g");

/** Ancestor types whose display names fill course_name, chapter, sequential, vertical, library. */
const ANCESTOR_TYPES = ["course", "chapter", "sequential", "vertical", "library_content"] as const;
const CONTAINER_TYPES = new Set<string>(ANCESTOR_TYPES);

/**
 * Structures per `$in` query at most: a course's structure is tens to hundreds of KB (thousands of
 * blocks for a large course); 5 keeps a batch's documents and rows small (bench-course-structures.ts,
 * 2,000 courses of 300 blocks: peak RSS 131 to 134 MiB with 10, 117 MiB with 5 and a collection
 * before each query, for 17 -> 24 s; 50 per batch peaked 60 MB higher than 10).
 */
export const STRUCTURE_BATCH = 5;
/**
 * Blocks a batch may hold, judged by the largest structure seen so far: the driver holds a
 * batch's documents whole, and 5 courses of 6,000 blocks peaked at 199 MiB where one course of
 * 10,000 took 128 (bench-course-structures.ts). The first batch is one course, to learn the size.
 */
export const BATCH_BLOCKS = 3_000;

/** How many structures the next query asks for, given the most blocks one of them had so far. */
export function structureBatch(largestBlocks: number | null): number {
  if (largestBlocks === null) return 1;
  return Math.max(1, Math.min(STRUCTURE_BATCH, Math.floor(BATCH_BLOCKS / Math.max(1, largestBlocks))));
}
/**
 * Above this resident size a full collection runs before each query. Every block becomes dozens
 * of short-lived objects and strings, and JSC lets the heap grow to several times what is live
 * before collecting: 600,000 blocks peaked at 330 MB without this. At 100 MiB, 3 runs in about
 * 30 peaked at 131 to 135 MiB (the others 114 to 121); at 90 MiB, 15 runs peaked at 113 to 117
 * MiB, in the same time (bench-course-structures.ts, 2,000 courses of 300 blocks).
 */
const RSS_SOFT_LIMIT = 90 * 1024 * 1024;

/** A full collection when the process holds more than RSS_SOFT_LIMIT (see above). */
function relieveMemory(): void {
  if (process.memoryUsage.rss() > RSS_SOFT_LIMIT) Bun.gc(true);
}
/** Definitions per `$in` query: a problem's XML is a few KB. */
export const DEFINITION_BATCH = 100;
/** Examples quoted in one aggregated warning. */
const EXAMPLES = 5;

/** A course of the index: its id, the parts of the id, and its published structure (hex ObjectId). */
export interface CourseVersion {
  courseId: string;
  org: string;
  course: string;
  run: string;
  version: string;
}

/** Number of response tags in a problem's XML. */
export function countResponseTags(xml: string): number {
  return xml.match(RESPONSE_TAG_PATTERN)?.length ?? 0;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

function text(value: unknown): string | null {
  if (value === null || value === undefined) return null;
  return typeof value === "string" ? value : String(value);
}

/** The hex id of an ObjectId, or of a string holding one; null for anything else. */
function objectIdHex(value: unknown): string | null {
  if (value instanceof ObjectId) return value.toHexString();
  if (typeof value === "string" && /^[0-9a-fA-F]{24}$/.test(value)) return value.toLowerCase();
  return null;
}

/**
 * A weight as upstream wrote it (Python's str() of the stored value): a double (XBlock's Float,
 * what Open edX stores) as `1.0`, an integer as `1`; null when it is not a number. Structures are
 * read with promoteValues off so that a double 1.0 is told apart from an integer 1; a plain JS
 * number (promoted) is taken as a double.
 */
export function weightText(value: unknown): string | null {
  if (value instanceof Double) return formatDouble(value.value);
  if (typeof value === "number") return formatDouble(value);
  if (value instanceof Int32) return String(value.value);
  if (value instanceof Long || typeof value === "bigint") return value.toString();
  if (typeof value === "string" && /^\s*-?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$/.test(value))
    return value.trim();
  return null;
}

function settings(block: Record<string, unknown>, key: "fields" | "defaults"): Record<string, unknown> {
  const value = block[key];
  return isRecord(value) ? value : {};
}

/** A setting of the block, else the one inherited from its content library (split's `defaults`). */
function setting(block: Record<string, unknown>, name: string): unknown {
  return settings(block, "fields")[name] ?? settings(block, "defaults")[name] ?? null;
}

function blockList(structure: Document): Record<string, unknown>[] {
  return Array.isArray(structure.blocks) ? structure.blocks.filter(isRecord) : [];
}

/** Definitions (hex ids) whose XML gives the weight: problems without a weight setting. */
export function definitionsNeeded(structure: Document): string[] {
  const ids: string[] = [];
  for (const block of blockList(structure)) {
    if (block.block_type !== "problem" || setting(block, "weight") !== null) continue;
    const id = objectIdHex(block.definition);
    if (id !== null) ids.push(id);
  }
  return ids;
}

/** What a definition gives towards weights: its response-tag count, or null when it has no XML. */
export function definitionWeight(definition: Document): number | null {
  const fields = definition.fields;
  const data = isRecord(fields) ? fields.data : undefined;
  return typeof data === "string" && data !== "" ? countResponseTags(data) : null;
}

export interface CourseRows {
  rows: CellValue[][];
  /** problems with the course, for a person: one line per kind, logged as warnings */
  warnings: string[];
  /** unremarkable oddities (a problem without response tags), logged at debug level */
  notes: string[];
}

function aggregate(out: string[], items: string[], what: string): void {
  if (items.length === 0) return;
  const examples = items.slice(0, EXAMPLES).join("; ");
  const more = items.length > EXAMPLES ? `; and ${items.length - EXAMPLES} more` : "";
  out.push(`${items.length} ${what}: ${examples}${more}`);
}

/**
 * The rows of one course, one per block of its structure, in the structure's order. `weights`
 * maps definition ids (hex) to their response-tag count (null: the definition has no XML); a
 * definition absent from it was not found. Pure: problems come back as warnings.
 */
export function courseRows(
  course: CourseVersion,
  structure: Document,
  weights: ReadonlyMap<string, number | null>,
): CourseRows {
  const warnings: string[] = [];
  const notes: string[] = [];
  const blocks = blockList(structure);
  if (!Array.isArray(structure.blocks)) warnings.push("the structure has no block list; no rows");
  const n = blocks.length;
  const types: string[] = new Array(n);
  const ids: string[] = new Array(n);
  const names: (string | null)[] = new Array(n);
  const locations: string[] = new Array(n);
  const children: [string, string][][] = new Array(n);
  const valid = new Uint8Array(n);
  const childless = new Uint8Array(n);
  const index = new Map<string, number>();
  const prefix = `block-v1:${course.org}+${course.course}+${course.run}+type@`;
  const invalid: string[] = [];
  const duplicates: string[] = [];
  const badChildren: string[] = [];
  for (let i = 0; i < n; i++) {
    const block = blocks[i]!;
    const type = block.block_type;
    const id = block.block_id;
    if (typeof type !== "string" || typeof id !== "string" || type === "" || id === "") {
      invalid.push(`#${i + 1}`);
      children[i] = [];
      continue;
    }
    const key = `${type}\n${id}`;
    if (index.has(key)) {
      duplicates.push(`${type}/${id}`);
      children[i] = [];
      continue;
    }
    index.set(key, i);
    valid[i] = 1;
    types[i] = type;
    ids[i] = id;
    names[i] = text(setting(block, "display_name"));
    locations[i] = type === "course" ? course.courseId : `${prefix}${type}+block@${id}`;
    const list = settings(block, "fields").children;
    if (!Array.isArray(list) || list.length === 0) childless[i] = 1;
    const pairs: [string, string][] = [];
    if (Array.isArray(list)) {
      for (const child of list) {
        if (Array.isArray(child) && typeof child[0] === "string" && typeof child[1] === "string") {
          pairs.push([child[0], child[1]]);
        } else {
          badChildren.push(`${JSON.stringify(child)} under ${locations[i]}`);
        }
      }
    }
    children[i] = pairs;
  }
  aggregate(warnings, invalid, "blocks without block_type or block_id, skipped");
  aggregate(warnings, duplicates, "blocks listed twice in the structure, the first kept");
  aggregate(warnings, badChildren, "children that are not [type, id] pairs, ignored");

  // The root: the structure's own, when it names a course block, else the first course block.
  const rootRef = Array.isArray(structure.root) ? structure.root : [];
  let root = -1;
  if (rootRef[0] === "course" && typeof rootRef[1] === "string")
    root = index.get(`course\n${rootRef[1]}`) ?? -1;
  if (root < 0) root = types.findIndex((t, i) => valid[i] === 1 && t === "course");
  if (root < 0) warnings.push("no course block: every block is written without parent or ancestors");

  // Walk the tree from the root with an explicit stack (no recursion: any depth). A block keeps
  // the first parent that lists it; a second reference is a cycle or a block with two parents.
  const parents = new Int32Array(n).fill(-1);
  const reached = new Uint8Array(n);
  // Per ancestor type: the display name of the OUTERMOST ancestor of that type (upstream copies
  // the parent's value over its own), null for an ancestor without a name, undefined for none.
  const ancestors = ANCESTOR_TYPES.map(() => new Array<string | null | undefined>(n));
  const dangling: string[] = [];
  const cycles: string[] = [];
  const shared: string[] = [];
  const stack: number[] = [];
  if (root >= 0) {
    reached[root] = 1;
    stack.push(root);
  }
  while (stack.length > 0) {
    const p = stack.pop()!;
    for (const [childType, childId] of children[p]!) {
      const c = index.get(`${childType}\n${childId}`);
      if (c === undefined) {
        dangling.push(`${childType}/${childId} under ${locations[p]}`);
        continue;
      }
      if (reached[c] === 1) {
        let q = p;
        while (q !== -1 && q !== c) q = parents[q]!;
        (q === c ? cycles : shared).push(`${locations[c]} under ${locations[p]}`);
        continue;
      }
      reached[c] = 1;
      parents[c] = p;
      for (let t = 0; t < ANCESTOR_TYPES.length; t++) {
        const fromParent = ancestors[t]![p];
        ancestors[t]![c] =
          fromParent !== undefined ? fromParent : types[p] === ANCESTOR_TYPES[t] ? names[p] : undefined;
      }
      stack.push(c);
    }
  }
  aggregate(warnings, dangling, "children referenced but missing from the structure, skipped");
  aggregate(warnings, cycles, "references that close a cycle, ignored");
  aggregate(warnings, shared, "blocks listed by a second parent, kept under the first");

  const noDefinition: string[] = [];
  const noData: string[] = [];
  const noTags: string[] = [];
  const rows: CellValue[][] = [];
  for (let i = 0; i < n; i++) {
    if (valid[i] !== 1) continue;
    const block = blocks[i]!;
    const type = types[i]!;
    let weight: string | null = null;
    if (type === "problem") {
      const explicit = setting(block, "weight");
      if (explicit !== null) {
        weight = weightText(explicit);
        if (weight === null) noData.push(`${locations[i]} (weight ${JSON.stringify(String(explicit))})`);
      } else {
        const definition = objectIdHex(block.definition);
        const counted = definition === null ? undefined : weights.get(definition);
        if (counted === undefined) noDefinition.push(locations[i]!);
        else if (counted === null) noData.push(locations[i]!);
        else {
          weight = String(counted);
          if (counted === 0) noTags.push(locations[i]!);
        }
      }
    }
    // As upstream: a component is a block reached from the root that lists no children and is
    // not one of the ancestor types; an orphan (not reached) has no parent, ancestors or component.
    const isLeaf = reached[i] === 1 && childless[i] === 1 && !CONTAINER_TYPES.has(type);
    const parent = parents[i]!;
    rows.push([
      locations[i]!,
      course.courseId,
      course.org,
      course.course,
      course.run,
      parent >= 0 ? locations[parent]! : null,
      type,
      ids[i]!,
      names[i] ?? null,
      ancestors[0]![i] ?? null,
      ancestors[1]![i] ?? null,
      ancestors[2]![i] ?? null,
      ancestors[3]![i] ?? null,
      ancestors[4]![i] ?? null,
      isLeaf ? (names[i] ?? null) : null,
      weight,
    ]);
  }
  aggregate(warnings, noDefinition, "problems whose definition was not found, weight left empty");
  aggregate(warnings, noData, "problems without readable weight or XML, weight left empty");
  aggregate(notes, noTags, "problems without any response tag, weight 0");
  return { rows, warnings, notes };
}
// JavaScriptCore's top tier (FTL) compiled this function twice a run (an optimization given up
// and redone), 270 and 200 ms of compiling each time (BUN_JSC_reportFTLCompileTimes), and the
// allocator kept much of the compiler's memory: 2,000 courses of 300 blocks peaked at 121 to 127
// MiB, and at 100 to 106 MiB with the function kept at the tier below, in the same time (25.6
// against 26.0 s, 4 runs of each build alternated).
noFTL(courseRows);

/** org, course and run of a `course-v1:` id, split as upstream did; null when it has fewer parts. */
export function courseKeyParts(courseId: string): { org: string; course: string; run: string } | null {
  if (!courseId.startsWith("course-v1:")) return null;
  const [org, course, run] = courseId.slice("course-v1:".length).split("+");
  if (!org || !course || !run) return null;
  return { org, course, run };
}

/** A table-level problem (configuration, missing index): reported in the summary, not thrown. */
class CourseStructuresError extends PanoramaError {}

/** The CSV columns: the configured fields (a subset of COURSE_STRUCTURE_FIELDS) or all of them. */
function outputColumns(table: TableConfig): number[] {
  if (table.partition_fields.length > 0) {
    throw new CourseStructuresError(
      `${table.name}: course structures are written as one file per LMS; partition_fields (${table.partition_fields.join(", ")}) is not supported for them`,
      `remove partition_fields from the [[tables]] entry "${table.name}"`,
    );
  }
  if (table.fields === null) return COURSE_STRUCTURE_FIELDS.map((_, i) => i);
  const known: readonly string[] = COURSE_STRUCTURE_FIELDS;
  const unknown = table.fields.filter((f) => !known.includes(f.name)).map((f) => f.name);
  if (unknown.length > 0) {
    throw new CourseStructuresError(
      `${table.name}: unknown course structure field${unknown.length > 1 ? "s" : ""} ${unknown.map((u) => `"${u}"`).join(", ")} (the fields are: ${COURSE_STRUCTURE_FIELDS.join(", ")})`,
      `fix the fields of the [[tables]] entry "${table.name}"`,
    );
  }
  return table.fields.map((f) => known.indexOf(f.name));
}

async function coursesFromMysql(
  config: Config,
  table: string,
  lent: Connection | null,
): Promise<CourseVersion[]> {
  const connection = lent?.state === "authenticated" ? lent : await connect(config.mysql);
  let rows: { course_id: string; published_version: string | null }[];
  try {
    rows = await query(
      connection,
      `SELECT course_id, published_version FROM ${COURSE_INDEX_TABLE} WHERE course_id LIKE 'course-v1:%' ORDER BY course_id`,
    );
  } catch (error) {
    if ((error as { code?: string }).code === "ER_NO_SUCH_TABLE") {
      throw new CourseStructuresError(
        `${table}: MySQL ${config.mysql.database}.${COURSE_INDEX_TABLE} does not exist, ${COURSE_INDEX_IN_MONGODB}`,
        USE_MONGODB_COURSE_INDEX,
      );
    }
    throw mysqlError(error, config.mysql, `reading the course index ${COURSE_INDEX_TABLE}`);
  } finally {
    if (connection !== lent) await close(connection);
  }
  const courses: CourseVersion[] = [];
  for (const row of rows) {
    const courseId = String(row.course_id);
    const published = row.published_version ?? "";
    // A course never published has no published version: nothing learners see, nothing to write.
    if (published === "") {
      log.debug(`${table}: ${courseId}: not published; skipped`);
      continue;
    }
    const parts = courseKeyParts(courseId);
    const version = objectIdHex(published);
    if (parts === null || version === null) {
      log.warn(
        `${table}: ${courseId}: ${parts === null ? "not a course-v1:org+course+run id" : `published_version "${published}" is not an ObjectId`}; skipped`,
        { table, course_id: courseId },
      );
      continue;
    }
    courses.push({ courseId, ...parts, version });
  }
  return courses;
}

async function coursesFromMongo(db: Db, table: string): Promise<CourseVersion[]> {
  const cursor = db
    .collection("modulestore.active_versions")
    .find(
      { "versions.published-branch": { $exists: true } },
      { projection: { org: 1, course: 1, run: 1, "versions.published-branch": 1 } },
    );
  const courses: CourseVersion[] = [];
  for await (const doc of cursor) {
    const { org, course, run } = doc;
    const versions = isRecord(doc.versions) ? doc.versions : {};
    const published = versions["published-branch"];
    const courseId = `course-v1:${text(org)}+${text(course)}+${text(run)}`;
    const version = objectIdHex(published);
    if (
      typeof org !== "string" ||
      typeof course !== "string" ||
      typeof run !== "string" ||
      version === null
    ) {
      log.warn(
        `${table}: active version ${text(doc._id)} (${courseId}): org, course, run or published-branch missing or invalid; skipped`,
        { table, course_id: courseId },
      );
      continue;
    }
    courses.push({ courseId, org, course, run, version });
  }
  return courses.sort((a, b) => (a.courseId < b.courseId ? -1 : a.courseId > b.courseId ? 1 : 0));
}

/** Only what the rows need of a structure: spares the transfer of edit_info, asides and settings. */
export const STRUCTURE_PROJECTION = {
  root: 1,
  "blocks.block_type": 1,
  "blocks.block_id": 1,
  "blocks.definition": 1,
  "blocks.fields.display_name": 1,
  "blocks.fields.children": 1,
  "blocks.fields.weight": 1,
  "blocks.defaults.display_name": 1,
  "blocks.defaults.weight": 1,
};

async function fetchStructures(db: Db, versions: string[]): Promise<Map<string, Document>> {
  const found = new Map<string, Document>();
  const ids = [...new Set(versions)].map((hex) => new ObjectId(hex));
  const cursor = db
    .collection("modulestore.structures")
    .find({ _id: { $in: ids } }, { projection: STRUCTURE_PROJECTION, promoteValues: false });
  for await (const doc of cursor) {
    const id = objectIdHex(doc._id);
    if (id !== null) found.set(id, doc);
  }
  return found;
}

/** Only a definition's XML, which gives the weight. */
export const DEFINITION_PROJECTION = { "fields.data": 1 };

/** Response-tag counts of definitions, in batches; only the counts are kept, not the XML. */
async function fetchDefinitionWeights(db: Db, ids: string[]): Promise<Map<string, number | null>> {
  const weights = new Map<string, number | null>();
  const unique = [...new Set(ids)];
  for (let i = 0; i < unique.length; i += DEFINITION_BATCH) {
    const batch = unique.slice(i, i + DEFINITION_BATCH).map((hex) => new ObjectId(hex));
    const cursor = db
      .collection("modulestore.definitions")
      .find({ _id: { $in: batch } }, { projection: DEFINITION_PROJECTION });
    for await (const doc of cursor) {
      const id = objectIdHex(doc._id);
      if (id !== null) weights.set(id, definitionWeight(doc));
    }
  }
  return weights;
}

export interface CourseStructuresOptions {
  dryRun: boolean;
  /** called once the file is complete in the spool */
  onFile?: (entry: ManifestEntry) => void | Promise<void>;
  /** progress: tableStarted once, partitionDone when the file is written (tableDone is the caller's) */
  events?: Pick<ExtractEvents, "tableStarted" | "partitionDone">;
  /**
   * The extraction's MySQL connection, idle between tables, for the course index: a connection of
   * its own would be one more than `[mysql] connections`, which an account limited to that many
   * (MAX_USER_CONNECTIONS) is refused.
   */
  mysql?: Connection | null;
}

/**
 * Extract the course structures table into one spool file,
 * `<base_prefix>/<table>/<base partitions>/<table>.csv`. A bad course is logged with its id and
 * skipped. Throws (a MongodbError or MysqlError) only when a server cannot be reached or read;
 * a configuration problem comes back as the summary's error.
 */
export async function extractCourseStructures(
  config: Config,
  table: TableConfig,
  options: CourseStructuresOptions,
): Promise<TableSummary> {
  const started = performance.now();
  const summary: TableSummary = {
    table: table.name,
    rows: 0,
    files: 0,
    bytes: 0,
    seconds: 0,
    partitions: 0,
    watermark: null,
    error: null,
  };
  const finish = () => {
    summary.seconds = Math.round((performance.now() - started) / 10) / 100;
    return summary;
  };
  let columns: number[];
  try {
    columns = outputColumns(table);
  } catch (error) {
    if (!(error instanceof CourseStructuresError)) throw error;
    summary.error = error.hint ? `${error.message} (${error.hint})` : error.message;
    return finish();
  }
  const mongo = await connectMongo(config.mongodb).catch((error: unknown) => {
    // The openedx preset asks for this table; an installation without MongoDB (or one that does
    // not want course structures) should be told how to stop asking, not only what failed.
    if (isUnreachable(error)) {
      throw new MongodbError(
        error.message,
        error.code,
        `${error.hint}; to go without course structures: [extract] exclude = ["${table.name}"]`,
      );
    }
    throw error;
  });
  try {
    let courses: CourseVersion[];
    try {
      courses = config.mongodb.use_split_mongo
        ? await coursesFromMysql(config, table.name, options.mysql ?? null)
        : await coursesFromMongo(mongo.db, table.name);
    } catch (error) {
      if (error instanceof CourseStructuresError) {
        summary.error = error.hint ? `${error.message} (${error.hint})` : error.message;
        return finish();
      }
      if (error instanceof PanoramaError) throw error;
      throw mongodbError(error, config.mongodb, "reading modulestore.active_versions");
    }
    const source = config.mongodb.use_split_mongo
      ? `MySQL ${COURSE_INDEX_TABLE}`
      : "MongoDB modulestore.active_versions";
    if (courses.length === 0) {
      // As upstream: no file rather than an empty one, which would wipe the datalake's structures
      // when the index was looked for in the wrong place.
      log.warn(`${table.name}: no published course in ${source}; nothing written`, { table: table.name });
      return finish();
    }
    log.info(`${table.name}: ${courses.length} published courses in ${source}`, { table: table.name });
    options.events?.tableStarted?.(table.name, 1);
    const partitions = config.datalake.base_partitions;
    const key = objectKey({
      basePrefix: config.datalake.base_prefix,
      table: table.name,
      partitions,
      compression: config.datalake.compression,
    });
    const writer = options.dryRun
      ? SpoolWriter.discarding(key)
      : await SpoolWriter.open(spoolDir(config.state_dir), key);
    try {
      writer.write(encodeHeader(columns.map((c) => COURSE_STRUCTURE_FIELDS[c]!)));
      // Every column is text, weight included (upstream's varchar; its text is made by weightText).
      const kinds = columns.map(() => "string" as const);
      const full = columns.length === COURSE_STRUCTURE_FIELDS.length && columns.every((c, i) => c === i);
      // `[privacy] columns` naming course structure fields (a display name that holds an author's
      // name, say): replaced here as in the MySQL tables, NULL and "" kept.
      const personal = pseudonymizedColumns(config, table.name);
      const pseudonymizer =
        personal.size > 0 && config.privacy.key ? new Pseudonymizer(config.privacy.key) : null;
      const replaced = columns.flatMap((c, i) => (personal.has(COURSE_STRUCTURE_FIELDS[c]!) ? [i] : []));
      let skipped = 0;
      let largestBlocks: number | null = null;
      for (let i = 0; i < courses.length; ) {
        relieveMemory();
        const batch = courses.slice(i, i + structureBatch(largestBlocks));
        i += batch.length;
        const structures = await fetchStructures(
          mongo.db,
          batch.map((c) => c.version),
        ).catch((error: unknown) => {
          throw mongodbError(error, config.mongodb, "reading modulestore.structures");
        });
        for (const structure of structures.values()) {
          const blocks = Array.isArray(structure.blocks)
            ? structure.blocks.length
            : Object.keys(structure.blocks ?? {}).length;
          largestBlocks = Math.max(largestBlocks ?? 0, blocks);
        }
        const needed = [...structures.values()].flatMap(definitionsNeeded);
        relieveMemory();
        const weights = await fetchDefinitionWeights(mongo.db, needed).catch((error: unknown) => {
          throw mongodbError(error, config.mongodb, "reading modulestore.definitions");
        });
        for (const course of batch) {
          const structure = structures.get(course.version);
          const fields = { table: table.name, course_id: course.courseId };
          if (!structure) {
            log.warn(
              `${table.name}: ${course.courseId}: published structure ${course.version} not found in modulestore.structures; course skipped`,
              fields,
            );
            skipped++;
            continue;
          }
          let result: CourseRows;
          try {
            result = courseRows(course, structure, weights);
          } catch (error) {
            // A structure shaped in a way nobody foresaw must not cost the other courses.
            log.warn(
              `${table.name}: ${course.courseId}: unreadable structure (${messageOf(error)}); course skipped`,
              fields,
            );
            skipped++;
            continue;
          }
          for (const warning of result.warnings)
            log.warn(`${table.name}: ${course.courseId}: ${warning}`, fields);
          for (const note of result.notes) log.debug(`${table.name}: ${course.courseId}: ${note}`, fields);
          const rows = full ? result.rows : result.rows.map((row) => columns.map((c) => row[c] ?? null));
          if (pseudonymizer !== null) {
            for (const row of rows) {
              for (const i of replaced) {
                const value = row[i];
                if (typeof value === "string" && value !== "") row[i] = pseudonymizer.of(value);
              }
            }
          }
          summary.rows += rows.length;
          if (rows.length > 0) await writer.write(encodeRows(rows, kinds), rows.length);
        }
      }
      if (skipped === courses.length) {
        // Not one course could be read (the wrong [mongodb] database, a modulestore restored
        // without its structures): a file of the header alone would replace the datalake's
        // course structures with nothing. Fail the table and keep what the datalake holds.
        await writer.abort();
        summary.error =
          `${table.name}: none of the ${courses.length} published courses of ${source} has its structure in MongoDB ${mongo.db.databaseName}.modulestore.structures; nothing written, the datalake keeps its course structures ` +
          `(check [mongodb] database, or the database of uri: the modulestore's, "openedx" on Tutor, "edxapp" by default)`;
        return finish();
      }
      if (skipped > 0) {
        log.warn(`${table.name}: ${skipped} of ${courses.length} courses skipped (see above)`, {
          table: table.name,
        });
      }
      const entry = await writer.commit({ table: table.name, partitions });
      summary.bytes = entry.bytes;
      summary.partitions = 1;
      if (options.dryRun) {
        summary.planned = [{ key, rows: entry.rows, bytes: entry.bytes }];
      } else {
        summary.files = 1;
        options.events?.partitionDone?.(table.name, entry.rows);
        await options.onFile?.(entry);
      }
    } catch (error) {
      await writer.abort();
      throw error;
    }
  } finally {
    await mongo.client.close().catch(() => {});
  }
  return finish();
}
