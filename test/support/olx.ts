// Turns an OLX export (Open Learning XML: course.xml → course/<run>.xml → chapter → sequential →
// vertical → components, each either inline or a pointer `<type url_name="x"/>` to `<type>/x.xml`)
// into the documents the split modulestore keeps for it: a course index (the MySQL row of
// split_modulestore_django_splitmodulestorecourseindex, or a modulestore.active_versions
// document), one structure (`modulestore.structures`: root plus a flat list of blocks with their
// children as [type, id] pairs) and the definitions (`modulestore.definitions`: a problem's XML in
// fields.data). Generic in its reading of OLX but only as complete as the fixtures need: settings
// are reduced to display_name and weight, and HTML bodies are not carried.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { type Document, Double, ObjectId } from "mongodb";

// ---- a small XML reader: elements, attributes, entities, comments, CDATA; keeps source offsets ----

export interface XmlElement {
  name: string;
  attributes: Record<string, string>;
  children: XmlElement[];
  /** offsets in the source: the start tag's `<`, the end of the start tag, the end tag's `<`, the end */
  start: number;
  innerStart: number;
  innerEnd: number;
  end: number;
}

const ENTITIES: Record<string, string> = { lt: "<", gt: ">", amp: "&", quot: '"', apos: "'" };

function decodeEntities(text: string): string {
  return text.replace(/&(#x[0-9a-fA-F]+|#[0-9]+|[a-zA-Z]+);/g, (whole, name: string) => {
    if (name.startsWith("#x")) return String.fromCodePoint(Number.parseInt(name.slice(2), 16));
    if (name.startsWith("#")) return String.fromCodePoint(Number.parseInt(name.slice(1), 10));
    return ENTITIES[name] ?? whole;
  });
}

/** The root element of an XML document. */
export function parseXml(source: string, file = "<xml>"): XmlElement {
  let pos = 0;
  const stack: XmlElement[] = [];
  let root: XmlElement | null = null;
  const fail = (what: string): never => {
    throw new Error(`${file}: ${what} at offset ${pos}`);
  };
  while (pos < source.length) {
    const lt = source.indexOf("<", pos);
    if (lt < 0) break;
    pos = lt;
    if (source.startsWith("<!--", pos)) {
      pos = source.indexOf("-->", pos) + 3;
      if (pos < 3) fail("unterminated comment");
    } else if (source.startsWith("<![CDATA[", pos)) {
      pos = source.indexOf("]]>", pos) + 3;
      if (pos < 3) fail("unterminated CDATA");
    } else if (source.startsWith("<?", pos) || source.startsWith("<!", pos)) {
      pos = source.indexOf(">", pos) + 1;
      if (pos < 1) fail("unterminated declaration");
    } else if (source.startsWith("</", pos)) {
      const gt = source.indexOf(">", pos);
      const name = source.slice(pos + 2, gt).trim();
      const open = stack.pop() ?? fail(`unexpected </${name}>`);
      if (open.name !== name) fail(`</${name}> closes <${open.name}>`);
      open.innerEnd = pos;
      open.end = gt + 1;
      pos = gt + 1;
    } else {
      const tag = /^<([A-Za-z_][\w.:-]*)/.exec(source.slice(pos, pos + 200)) ?? fail("bad tag");
      const element: XmlElement = {
        name: tag[1]!,
        attributes: {},
        children: [],
        start: pos,
        innerStart: 0,
        innerEnd: 0,
        end: 0,
      };
      pos += tag[0].length;
      const attribute = /\s*([A-Za-z_][\w.:-]*)\s*=\s*("([^"]*)"|'([^']*)')/y;
      for (;;) {
        attribute.lastIndex = pos;
        const m = attribute.exec(source);
        if (!m) break;
        element.attributes[m[1]!] = decodeEntities(m[3] ?? m[4] ?? "");
        pos = attribute.lastIndex;
      }
      const close = /\s*(\/?)>/y;
      close.lastIndex = pos;
      const c = close.exec(source) ?? fail(`bad start tag <${element.name}>`);
      pos = close.lastIndex;
      element.innerStart = pos;
      const parent = stack[stack.length - 1];
      if (parent) parent.children.push(element);
      else if (root === null) root = element;
      else fail("a second root element");
      if (c[1] === "/") {
        element.innerEnd = pos;
        element.end = pos;
      } else {
        stack.push(element);
      }
    }
  }
  if (stack.length > 0) fail(`<${stack[stack.length - 1]!.name}> is not closed`);
  return root ?? fail("no root element");
}

// ---- OLX → split modulestore ----

/** Blocks whose child elements are blocks; the children of any other element are its own content. */
const CONTAINERS = new Set([
  "course",
  "chapter",
  "sequential",
  "vertical",
  "library_content",
  "library",
  "split_test",
  "conditional",
]);
/** Child elements of a course that configure it rather than being blocks. */
const NOT_BLOCKS = new Set(["wiki", "textbook"]);

export interface SplitBlock {
  block_type: string;
  block_id: string;
  definition: ObjectId;
  fields: { display_name?: string; children?: [string, string][]; weight?: Double };
  defaults: { display_name?: string };
  edit_info: Document;
}

export interface SplitStructure {
  _id: ObjectId;
  root: [string, string];
  schema_version: number;
  edited_on: Date;
  blocks: SplitBlock[];
}

export interface SplitDefinition {
  _id: ObjectId;
  block_type: string;
  fields: { data?: string };
  schema_version: number;
}

export interface SplitCourse {
  /** course-v1:org+course+run, or library-v1:org+library for a library */
  id: string;
  org: string;
  course: string;
  run: string;
  isLibrary: boolean;
  structure: SplitStructure;
  definitions: SplitDefinition[];
  /** the problems of the OLX as read from their files: block id → XML with the root's attributes */
  problemXml: Map<string, string>;
}

interface Reader {
  dir: string;
  structure: SplitStructure;
  definitions: SplitDefinition[];
  problemXml: Map<string, string>;
  libraries: Map<string, SplitCourse>;
  seen: Set<string>;
}

function readElementFile(
  dir: string,
  type: string,
  urlName: string,
): { element: XmlElement; source: string } {
  const file = join(dir, type, `${urlName}.xml`);
  const source = readFileSync(file, "utf8");
  return { element: parseXml(source, file), source };
}

/** A `<type url_name="x"/>` with nothing else, whose definition lives in `<type>/x.xml`. */
function pointerTarget(dir: string, element: XmlElement): string | null {
  const names = Object.keys(element.attributes);
  const urlName = element.attributes.url_name;
  if (!urlName || names.length !== 1 || element.children.length > 0) return null;
  return existsSync(join(dir, element.name, `${urlName}.xml`)) ? urlName : null;
}

/**
 * Add the block of `element` (and, iteratively, its descendants) to the structure; returns its
 * [type, id]. The OLX nesting is shallow, so this recursion is bounded by the file layout.
 */
function addBlock(reader: Reader, element: XmlElement, source: string, id: string): [string, string] {
  const type = element.name;
  const key = `${type}/${id}`;
  if (reader.seen.has(key)) throw new Error(`${reader.dir}: block ${key} appears twice`);
  reader.seen.add(key);
  const definition: SplitDefinition = {
    _id: new ObjectId(),
    block_type: type,
    fields: {},
    schema_version: 1,
  };
  const block: SplitBlock = {
    block_type: type,
    block_id: id,
    definition: definition._id,
    fields: {},
    defaults: {},
    edit_info: {
      edited_on: reader.structure.edited_on,
      edited_by: 3,
      previous_version: null,
      update_version: reader.structure._id,
      source_version: null,
    },
  };
  const { display_name: displayName, weight } = element.attributes;
  if (displayName !== undefined) block.fields.display_name = displayName;
  reader.structure.blocks.push(block);
  reader.definitions.push(definition);
  if (type === "problem") {
    if (weight !== undefined && weight !== "" && weight !== "null")
      block.fields.weight = new Double(Number(weight));
    // The definition keeps the problem's content; its settings (the root's attributes) are fields.
    const inner = source.slice(element.innerStart, element.innerEnd);
    definition.fields.data = `<problem>${inner}</problem>`;
    reader.problemXml.set(id, source.slice(element.start, element.end));
  }
  if (CONTAINERS.has(type)) {
    const children: [string, string][] = [];
    let n = 0;
    for (const child of element.children) {
      if (NOT_BLOCKS.has(child.name)) continue;
      const target = pointerTarget(reader.dir, child);
      if (target !== null) {
        const file = readElementFile(reader.dir, child.name, target);
        children.push(addBlock(reader, file.element, file.source, target));
      } else {
        const childId = child.attributes.url_name ?? `${id}_${child.name}_${n}`;
        children.push(addBlock(reader, child, source, childId));
      }
      n++;
    }
    block.fields.children = children;
    if (type === "library_content") inheritFromLibrary(reader, element, block);
  }
  return [type, id];
}

/**
 * The children of a library_content block are copies of a library's blocks: Open edX keeps the
 * library's settings (display_name...) in the copies' `defaults`. The export does not say which
 * copy comes from which library block; they are paired in order, which is how the fixture's
 * export lists them.
 */
function inheritFromLibrary(reader: Reader, element: XmlElement, block: SplitBlock): void {
  const library = reader.libraries.get(element.attributes.source_library_id ?? "");
  if (!library) return;
  const libraryRoot = library.structure.blocks.find((b) => b.block_type === "library");
  const sources = libraryRoot?.fields.children ?? [];
  (block.fields.children ?? []).forEach(([type, id], i) => {
    const source = sources[i];
    const copy = reader.structure.blocks.find((b) => b.block_type === type && b.block_id === id);
    const original = source && library.structure.blocks.find((b) => b.block_id === source[1]);
    if (copy && original?.fields.display_name !== undefined) {
      copy.defaults.display_name = original.fields.display_name;
    }
  });
}

function newStructure(root: [string, string]): SplitStructure {
  return {
    _id: new ObjectId(),
    root,
    schema_version: 1,
    edited_on: new Date("2024-03-01T10:00:00Z"),
    blocks: [],
  };
}

/**
 * An exported course directory (holding course.xml) as split modulestore documents.
 * `libraries`: libraries read with olxLibrary(), for library_content blocks that draw on them.
 */
export function olxCourse(dir: string, libraries: SplitCourse[] = []): SplitCourse {
  const pointer = parseXml(readFileSync(join(dir, "course.xml"), "utf8"), join(dir, "course.xml"));
  const { org, course, url_name: run } = pointer.attributes;
  if (!org || !course || !run) throw new Error(`${dir}/course.xml: org, course and url_name are needed`);
  const reader: Reader = {
    dir,
    structure: newStructure(["course", "course"]),
    definitions: [],
    problemXml: new Map(),
    libraries: new Map(libraries.map((l) => [l.id, l])),
    seen: new Set(),
  };
  const file = readElementFile(dir, "course", run);
  addBlock(reader, file.element, file.source, "course");
  return {
    id: `course-v1:${org}+${course}+${run}`,
    org,
    course,
    run,
    isLibrary: false,
    structure: reader.structure,
    definitions: reader.definitions,
    problemXml: reader.problemXml,
  };
}

/** An exported content library directory (holding library.xml) as split modulestore documents. */
export function olxLibrary(dir: string): SplitCourse {
  const file = join(dir, "library.xml");
  const source = readFileSync(file, "utf8");
  const element = parseXml(source, file);
  const { org, library } = element.attributes;
  if (!org || !library) throw new Error(`${file}: org and library are needed`);
  const reader: Reader = {
    dir,
    structure: newStructure(["library", "library"]),
    definitions: [],
    problemXml: new Map(),
    libraries: new Map(),
    seen: new Set(),
  };
  addBlock(reader, element, source, "library");
  return {
    id: `library-v1:${org}+${library}`,
    org,
    course: library,
    run: "library",
    isLibrary: true,
    structure: reader.structure,
    definitions: reader.definitions,
    problemXml: reader.problemXml,
  };
}

// ---- course index: MySQL (Open edX Maple and later) or MongoDB (before) ----

/** The course index table as edx-platform's split_modulestore_django migration 0001 creates it. */
export const COURSE_INDEX_DDL = `CREATE TABLE split_modulestore_django_splitmodulestorecourseindex (
  id INT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  objectid VARCHAR(24) NOT NULL UNIQUE,
  course_id VARCHAR(255) NOT NULL UNIQUE,
  org VARCHAR(255) NOT NULL,
  draft_version VARCHAR(24) NOT NULL,
  published_version VARCHAR(24) NOT NULL,
  library_version VARCHAR(24) NOT NULL,
  wiki_slug VARCHAR(255) NOT NULL,
  base_store VARCHAR(20) NOT NULL,
  edited_on DATETIME(6) NOT NULL,
  last_update DATETIME(6) NOT NULL,
  edited_by_id INT NULL,
  KEY org_idx (org),
  KEY wiki_slug_idx (wiki_slug)
) CHARSET utf8mb4`;

export interface CourseIndexRow {
  objectid: string;
  course_id: string;
  org: string;
  draft_version: string;
  published_version: string;
  library_version: string;
  wiki_slug: string;
  base_store: string;
  edited_on: string;
  last_update: string;
  edited_by_id: number | null;
}

/** The course index row of a course or library; `publishedVersion` overrides the structure id. */
export function courseIndexRow(item: SplitCourse, publishedVersion?: string): CourseIndexRow {
  const version = publishedVersion ?? item.structure._id.toHexString();
  return {
    objectid: new ObjectId().toHexString(),
    course_id: item.id,
    org: item.org,
    draft_version: item.isLibrary ? "" : version,
    published_version: item.isLibrary ? "" : version,
    library_version: item.isLibrary ? version : "",
    wiki_slug: `${item.org}.${item.course}.${item.run}`,
    base_store: "mongodb",
    edited_on: "2024-03-01 10:00:00.000000",
    last_update: "2024-03-01 10:00:00.000000",
    edited_by_id: 3,
  };
}

/** The same index as a modulestore.active_versions document (Open edX before Maple). */
export function activeVersionDoc(item: SplitCourse, publishedVersion?: ObjectId): Document {
  const version = publishedVersion ?? item.structure._id;
  return {
    _id: new ObjectId(),
    org: item.org,
    course: item.course,
    run: item.run,
    edited_by: 3,
    edited_on: new Date("2024-03-01T10:00:00Z"),
    last_update: new Date("2024-03-01T10:00:00Z"),
    schema_version: 1,
    search_targets: { wiki_slug: `${item.org}.${item.course}.${item.run}` },
    versions: item.isLibrary
      ? { library: version }
      : { "draft-branch": version, "published-branch": version },
  };
}
