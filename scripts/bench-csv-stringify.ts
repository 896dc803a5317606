// Benchmark (run by hand) that decided csv-stringify's fate (issue 19 item 4): the CSV encoder of
// the paths that work on parsed values, encodeRows() (src/extract/csv.ts), against csv-stringify
// configured to the contract (DESIGN §5: the canonical form through a cast, quotes exactly when a
// field holds `,` `"` or `\`, backslash escapes, CRLF), on the same rows:
// - studentmodule: courseware_studentmodule rows as mysql2 parses them on the fallback path
//   (when the packet encoder cannot copy a column), in 500-row batches as streamCsv() hands them;
// - course-structures: 16 text columns, one batch per course, as course-structures.ts writes them.
// Both pools hold the adversarial values of test/support/adversarial.ts in every column kind.
// Before timing, both encoders must give the same bytes on those values (checked here) and on
// every row of every run (each run hashes its output). Each run is a process of its own, under
// GNU time for its peak RSS; the encoders alternate, and the medians are printed.
//
// csv-stringify is no dependency of panorama (this benchmark is why: README, "How extraction
// works"): install it for the run without saving it, and `npm ci` removes it again:
//
//   npm install --no-save csv-stringify@6.9.0
//   bun scripts/bench-csv-stringify.ts [--rows N] [--runs N]

import { createHash } from "node:crypto";
import { parseArgs } from "node:util";
import {
  type CellValue,
  type ColumnKind,
  canonicalForm,
  encodeRows,
  formatDouble,
} from "../src/extract/csv.ts";
import { ADVERSARIAL_STRINGS } from "../test/support/adversarial.ts";
import { measure, median, rng, STUDENTMODULE_KINDS, studentmoduleRow } from "./bench-support.ts";

const ENCODERS = ["encodeRows", "csv-stringify"] as const;
type Encoder = (typeof ENCODERS)[number];
const SHAPES = ["studentmodule", "course-structures"] as const;
type Shape = (typeof SHAPES)[number];

// --- csv-stringify, configured to the contract -------------------------------------------------

/** The part of csv-stringify's options (version 6) used here. */
interface StringifyOptions {
  delimiter: string;
  quote: string;
  escape: string;
  record_delimiter: string;
  quoted_match: RegExp;
  cast: {
    string: (value: string, context: { index: number }) => string;
    number: (value: number, context: { index: number }) => string;
    bigint: (value: bigint) => string;
    object: (value: object, context: { index: number }) => string;
  };
}
type Stringify = (records: CellValue[][], options: StringifyOptions) => string;

// Named through a variable: the type-check of scripts/ must not need the package installed.
const CSV_STRINGIFY = "csv-stringify/sync";
const { stringify } = (await import(CSV_STRINGIFY).catch(() => {
  throw new Error("csv-stringify is not installed: run `npm install --no-save csv-stringify@6.9.0` first");
})) as { stringify: Stringify };
// What encodeRows() does per kind before quoting, written as csv-stringify casts. These few value
// rules are private to csv.ts; they are repeated here so that csv.ts stays as it is.

function datetimeText(s: string): string {
  if (s.length === 19) return `${s}.000000`;
  if (s.length > 20 && s.length < 26 && s.charCodeAt(19) === 46) return s + "000000".slice(s.length - 20);
  return s;
}

function unsignedBigEndian(bytes: Uint8Array): string {
  let x = 0n;
  for (const b of bytes) x = (x << 8n) | BigInt(b);
  return x.toString();
}

const hex = (bytes: Uint8Array) =>
  Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("hex");

function stringifyOptions(kinds: ReadonlyArray<ColumnKind>): StringifyOptions {
  return {
    delimiter: ",",
    quote: '"',
    escape: "\\",
    record_delimiter: "\r\n",
    // The canonical form holds no CR or LF; it holds a backslash when the value held `\`, CR or
    // LF: such a field is quoted too. csv-stringify quotes on `,` and `"` by itself and, inside
    // quotes, escapes `"` and the escape character with the escape character.
    quoted_match: /\\/,
    cast: {
      string: (v, { index }) => {
        const kind = kinds[index];
        if (kind === "datetime") return canonicalForm(datetimeText(v));
        if (kind === "binary") return Buffer.from(v, "utf8").toString("hex");
        return canonicalForm(v);
      },
      number: (v, { index }) => {
        const kind = kinds[index];
        if (kind === "integer") {
          if (!Number.isSafeInteger(v)) throw new RangeError(`column ${index + 1}: inexact integer ${v}`);
          return String(v);
        }
        return kind === "double" ? formatDouble(v) : canonicalForm(String(v));
      },
      bigint: (v) => v.toString(),
      object: (v, { index }) => {
        const bytes = v as Uint8Array;
        return kinds[index] === "integer" ? unsignedBigEndian(bytes) : hex(bytes);
      },
    },
  };
}

// --- the rows ----------------------------------------------------------------------------------

// Deterministic PRNG (mulberry32): every process builds the same rows.

/** One row per adversarial value, every column kind holding one of its own awkward values. */
function adversarialRows(): { kinds: ColumnKind[]; rows: CellValue[][] } {
  const byKind: [ColumnKind, readonly CellValue[]][] = [
    ["string", ADVERSARIAL_STRINGS],
    ["json", [...ADVERSARIAL_STRINGS].reverse()],
    ["integer", [0, -1, 2 ** 53 - 1, "18446744073709551615", 2n ** 64n, new Uint8Array([1, 0]), null]],
    ["decimal", ["12345678901234567890.123456789", "-0.00", "0", null]],
    ["double", [0, -0, 0.1, 1.5, 1e-5, 1e16, 5e-324, -1.7976931348623157e308, 1234.5678, null]],
    ["datetime", ["2024-01-02 03:04:05", "2024-01-02 03:04:05.1", "2024-01-02 03:04:05.123456", null]],
    ["date", ["2024-01-02", "0000-00-00", null]],
    ["time", ["838:59:59", "-01:02:03.5", null]],
    ["binary", [new Uint8Array([0, 255, 16]), new Uint8Array(0), '\\ text,"', null]],
  ];
  const kinds = byKind.map(([kind]) => kind);
  const count = Math.max(...byKind.map(([, values]) => values.length));
  const rows = Array.from({ length: count }, (_, i) =>
    byKind.map(([, values]) => values[i % values.length]!),
  );
  return { kinds, rows };
}

/** courseware_studentmodule as mysql2 parses it (rowsAsArray, dateStrings, bigNumberStrings). */
function studentmodule(): { kinds: ColumnKind[]; batches: CellValue[][][] } {
  const random = rng(0x5eed);
  const kinds = STUDENTMODULE_KINDS;
  const adversarial = [...ADVERSARIAL_STRINGS];
  const rows: CellValue[][] = [];
  for (let i = 0; i < 10_000; i++) {
    const row = studentmoduleRow(i, random);
    // Every 100th row carries an adversarial value in its text columns.
    if (i % 100 === 0) {
      const odd = adversarial[(i / 100) % adversarial.length]!;
      for (const column of [1, 4, 7]) row[column] = odd;
    }
    // modified without fractions, as a DATETIME column without them reads
    row[9] = String(row[9]).slice(0, 19);
    rows.push(row);
  }
  const batches: CellValue[][][] = [];
  for (let i = 0; i < rows.length; i += 500) batches.push(rows.slice(i, i + 500));
  return { kinds, batches };
}

/** course_structures rows: 16 text columns, one batch of ~300 blocks per course. */
function courseStructures(): { kinds: ColumnKind[]; batches: CellValue[][][] } {
  const random = rng(0xc0de);
  const kinds: ColumnKind[] = Array.from({ length: 16 }, () => "string");
  const adversarial = ADVERSARIAL_STRINGS.filter((s) => s === null || s.length < 1000);
  const batches: CellValue[][][] = [];
  let n = 0;
  for (let c = 0; c < 40; c++) {
    const org = `Org${c % 5}`;
    const code = `CS${100 + c}`;
    const run = `2024_T${(c % 3) + 1}`;
    const courseId = `course-v1:${org}+${code}+${run}`;
    const location = (type: string, id: string) => `block-v1:${org}+${code}+${run}+type@${type}+block@${id}`;
    const name = (kind: string, i: number) => {
      n++;
      if (n % 50 === 0) return adversarial[(n / 50) % adversarial.length] ?? null;
      return random() < 0.1 ? `"${kind}" ${i}, part ${Math.floor(random() * 9)}` : `${kind} ${i}`;
    };
    const courseName = `Introduction to ${code}, "${run}"`;
    // location, course_id, org, course_code, course_run, parent, type, block id, display name,
    // the course's, chapter's, sequential's and vertical's names, two more, the graded weight
    const block = (
      type: string,
      id: string,
      parent: string | null,
      display: CellValue,
      path: CellValue[],
      rest: CellValue[] = [null, null, null],
    ): CellValue[] => {
      const names = [...path, ...Array(4 - path.length).fill(null)];
      return [
        type === "course" ? courseId : location(type, id),
        courseId,
        org,
        code,
        run,
        parent,
        type,
        id,
        display,
        ...names,
        ...rest,
      ];
    };
    const rows: CellValue[][] = [block("course", "course", null, courseName, [courseName])];
    for (let ch = 0; ch < 6; ch++) {
      const chapter = name("Chapter", ch);
      const chapterId = (random() * 1e16).toString(16);
      rows.push(block("chapter", chapterId, courseId, chapter, [courseName, chapter]));
      for (let sq = 0; sq < 5; sq++) {
        const sequential = name("Sequence", sq);
        const seqId = (random() * 1e16).toString(16);
        rows.push(
          block("sequential", seqId, location("chapter", chapterId), sequential, [
            courseName,
            chapter,
            sequential,
          ]),
        );
        for (let b = 0; b < 9; b++) {
          const type = b % 3 === 0 ? "problem" : b % 3 === 1 ? "html" : "video";
          const id = (random() * 1e16).toString(16);
          const component = name(type, b);
          rows.push(
            block(
              type,
              id,
              location("sequential", seqId),
              component,
              [courseName, chapter, sequential, `Unit ${b}`],
              [null, component, type === "problem" ? formatDouble(1 + (b % 2)) : null],
            ),
          );
        }
      }
    }
    batches.push(rows);
  }
  return { kinds, batches };
}

// --- one run: a process of its own -------------------------------------------------------------

function child(encoder: Encoder, shape: Shape, total: number): void {
  const { kinds, batches } = shape === "studentmodule" ? studentmodule() : courseStructures();
  const options = stringifyOptions(kinds);
  const encode =
    encoder === "encodeRows"
      ? (rows: CellValue[][]) => encodeRows(rows, kinds)
      : (rows: CellValue[][]) => stringify(rows, options);
  // Warm-up: one pass over the pool, so the JIT has settled before the clock starts.
  for (const b of batches) encode(b);
  const hash = createHash("sha256");
  let bytes = 0;
  let rows = 0;
  const started = performance.now();
  for (let b = 0; rows < total; b = b + 1 === batches.length ? 0 : b + 1) {
    // As the spool writer takes it: the text as UTF-8 bytes.
    const chunk = Buffer.from(encode(batches[b]!), "utf8");
    hash.update(chunk);
    bytes += chunk.length;
    rows += batches[b]!.length;
  }
  const seconds = (performance.now() - started) / 1000;
  console.log(JSON.stringify({ rows, seconds, bytes, sha256: hash.digest("hex") }));
}

// --- the comparison ----------------------------------------------------------------------------

const { values } = parseArgs({
  options: {
    rows: { type: "string", default: "1000000" },
    runs: { type: "string", default: "3" },
    child: { type: "string" },
    shape: { type: "string" },
  },
});
const total = Number(values.rows);

if (values.child) {
  child(values.child as Encoder, values.shape as Shape, total);
} else {
  const adversarial = adversarialRows();
  if (
    encodeRows(adversarial.rows, adversarial.kinds) !==
    stringify(adversarial.rows, stringifyOptions(adversarial.kinds))
  ) {
    throw new Error("csv-stringify and encodeRows() disagree on the adversarial values");
  }
  console.log(
    `adversarial values (${adversarial.rows.length} rows, ${adversarial.kinds.length} column kinds): same bytes`,
  );
  const runs = Number(values.runs);
  for (const shape of SHAPES) {
    const results = new Map<Encoder, { rowsPerSecond: number[]; maxRssMiB: number[]; sha256: Set<string> }>(
      ENCODERS.map((e) => [e, { rowsPerSecond: [], maxRssMiB: [], sha256: new Set() }]),
    );
    for (let run = 0; run < runs; run++) {
      // Alternate the order, so that neither encoder always runs on a machine the other warmed.
      const order = run % 2 === 0 ? ENCODERS : [...ENCODERS].reverse();
      for (const encoder of order) {
        const m = await measure(
          [process.execPath, import.meta.path, "--child", encoder, "--shape", shape, "--rows", String(total)],
          {},
          { stdout: true },
        );
        const out = JSON.parse(m.stdout!) as { rows: number; seconds: number; sha256: string };
        const r = results.get(encoder)!;
        r.rowsPerSecond.push(out.rows / out.seconds);
        r.maxRssMiB.push(m.maxRssMiB);
        r.sha256.add(out.sha256);
      }
    }
    const hashes = new Set([...results.values()].flatMap((r) => [...r.sha256]));
    if (hashes.size !== 1) throw new Error(`${shape}: the encoders wrote different bytes`);
    const fmt = new Intl.NumberFormat("en-US");
    for (const [encoder, r] of results) {
      console.log(
        `${shape.padEnd(17)} ${encoder.padEnd(13)} ${fmt.format(Math.round(median(r.rowsPerSecond))).padStart(9)} rows/s` +
          `  peak RSS ${median(r.maxRssMiB).toFixed(0)} MiB  (median of ${runs}; runs: ${r.rowsPerSecond
            .map((x) => fmt.format(Math.round(x)))
            .join(", ")} rows/s)`,
      );
    }
    console.log(`${shape}: same bytes from both (sha256 ${[...hashes][0]!.slice(0, 16)}…)`);
  }
}
