// Micro-benchmark of the CSV encoders (run by hand: `bun scripts/bench-csv.ts [rows]`).
// Encodes courseware_studentmodule-like rows side by side: encodeRows() on parsed values in
// 500-row batches (the fallback path; rows/s for the text alone and for text plus its UTF-8
// bytes, what a file write costs), and RawRowEncoder on the same rows as MySQL text-protocol
// payloads (the extractor's path: bytes in, bytes out).

import type { CellValue } from "../src/extract/csv.ts";
import { encodeHeader, encodeRows } from "../src/extract/csv.ts";
import { RawRowEncoder, rawPlan } from "../src/extract/raw-csv.ts";
import { rowPayload } from "../test/support/row-packet.ts";
import { STUDENTMODULE_KINDS } from "./bench-support.ts";

const TOTAL = Number(process.argv[2] ?? 1_000_000);
const BATCH = 500;
const POOL = 10_000;

const names = [
  "id",
  "module_type",
  "module_id",
  "course_id",
  "state",
  "grade",
  "max_grade",
  "done",
  "created",
  "modified",
  "student_id",
];
const kinds = STUDENTMODULE_KINDS;

// Deterministic PRNG (mulberry32) so runs are comparable.
let seed = 0x5eed;
function random(): number {
  seed = (seed + 0x6d2b79f5) | 0;
  let t = seed;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
function hexId(len: number): string {
  let s = "";
  while (s.length < len) s += Math.floor(random() * 16).toString(16);
  return s;
}
function timestamp(): string {
  const ms = Date.UTC(2024, 0, 1) + Math.floor(random() * 365 * 86_400_000);
  const micros = String(Math.floor(random() * 1_000_000)).padStart(6, "0");
  return `${new Date(ms).toISOString().slice(0, 19).replace("T", " ")}.${micros}`;
}

function makeRow(i: number): CellValue[] {
  const course = `course-v1:Org${i % 7}+CS${i % 50}x+2024_T${(i % 3) + 1}`;
  const block = hexId(32);
  const state = JSON.stringify({
    seed: 1 + (i % 20),
    input_state: { [`${block}_2_1`]: {} },
    correct_map: {
      [`${block}_2_1`]: { correctness: "correct", npoints: null, msg: "", hint: "", queuestate: null },
    },
    student_answers: { [`${block}_2_1`]: `choice_${i % 4}` },
    has_saved_answers: false,
    done: true,
    attempts: 1 + (i % 3),
    last_submission_time: "2024-03-01T12:34:56Z",
  });
  const graded = i % 4 !== 0;
  return [
    i + 1,
    "problem",
    `block-v1:Org${i % 7}+CS${i % 50}x+2024_T${(i % 3) + 1}+type@problem+block@${block}`,
    course,
    state,
    graded ? Math.floor(random() * 3) : null,
    graded ? 2 + (i % 2) * 0.5 : null,
    "na",
    timestamp(),
    timestamp(),
    String(100_000 + Math.floor(random() * 900_000)),
  ];
}

const pool: CellValue[][] = Array.from({ length: POOL }, (_, i) => makeRow(i));
const batches: CellValue[][][] = [];
for (let i = 0; i < POOL; i += BATCH) batches.push(pool.slice(i, i + BATCH));

function run(toBytes: boolean): { seconds: number; bytes: number } {
  let bytes = Buffer.byteLength(encodeHeader(names));
  const start = performance.now();
  for (let done = 0, b = 0; done < TOTAL; done += BATCH, b = (b + 1) % batches.length) {
    const text = encodeRows(batches[b]!, kinds);
    bytes += toBytes ? Buffer.from(text, "utf8").length : text.length;
  }
  return { seconds: (performance.now() - start) / 1000, bytes };
}

run(false); // warm-up: let the JIT settle before measuring
for (const toBytes of [false, true]) {
  const { seconds, bytes } = run(toBytes);
  const label = toBytes ? "text + UTF-8 bytes" : "text only        ";
  console.log(
    `${label}: ${TOTAL} rows in ${seconds.toFixed(2)} s = ${Math.round(TOTAL / seconds).toLocaleString("en-US")} rows/s` +
      ` (${Math.round(bytes / TOTAL)} B/row, ${(bytes / seconds / 1e6).toFixed(0)} MB/s)`,
  );
}

// Protocol types of the columns above: LONG, VAR_STRING x4 (utf8mb4), DOUBLE x2, VAR_STRING,
// DATETIME x2, LONG.
const fields = [3, 253, 253, 253, 253, 5, 5, 253, 12, 12, 3].map((columnType) => ({
  columnType,
  characterSet: columnType === 253 ? 224 : 63,
  flags: 0,
}));
const codes = rawPlan(fields, kinds);
if (!codes) throw new Error("no raw plan for the benchmark's columns");
// The same rows as the server sends them: every cell its text.
const payloads = pool.map((row) => rowPayload(row.map((v) => (v === null ? null : String(v)))));
function runRaw(): { seconds: number; bytes: number } {
  let bytes = 0;
  const encoder = new RawRowEncoder(codes!, (chunk) => {
    bytes += chunk.length;
  });
  const start = performance.now();
  for (let done = 0, r = 0; done < TOTAL; done++, r = r + 1 === payloads.length ? 0 : r + 1) {
    const p = payloads[r]!;
    encoder.row(p, 0, p.length);
  }
  encoder.flush();
  return { seconds: (performance.now() - start) / 1000, bytes };
}
{
  // Both encoders must write the same bytes, or the comparison means nothing.
  const parts: Buffer[] = [];
  const encoder = new RawRowEncoder(codes, (chunk) => {
    parts.push(Buffer.from(chunk));
  });
  for (const p of payloads) encoder.row(p, 0, p.length);
  encoder.flush();
  if (!Buffer.concat(parts).equals(Buffer.from(batches.map((b) => encodeRows(b, kinds)).join("")))) {
    throw new Error("RawRowEncoder and encodeRows() disagree on the benchmark's rows");
  }
}
runRaw(); // warm-up
{
  const { seconds, bytes } = runRaw();
  console.log(
    `packet bytes → CSV bytes: ${TOTAL} rows in ${seconds.toFixed(2)} s = ${Math.round(TOTAL / seconds).toLocaleString("en-US")} rows/s` +
      ` (${Math.round(bytes / TOTAL)} B/row, ${(bytes / seconds / 1e6).toFixed(0)} MB/s)`,
  );
}
