// Micro-benchmark of the CSV encoders (run by hand: `bun scripts/bench-csv.ts [rows]`).
// Encodes courseware_studentmodule-like rows side by side: encodeRows() on parsed values in
// 500-row batches (the fallback path; rows/s for the text alone and for text plus its UTF-8
// bytes, what a file write costs), and RawRowEncoder on the same rows as MySQL text-protocol
// payloads (the extractor's path: bytes in, bytes out).

import type { CellValue } from "../src/extract/csv.ts";
import { encodeHeader, encodeRows } from "../src/extract/csv.ts";
import { RawRowEncoder, rawPlan } from "../src/extract/raw-csv.ts";
import { rowPayload } from "../test/support/row-packet.ts";
import { rng, STUDENTMODULE_KINDS, studentmoduleRow } from "./bench-support.ts";

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

const random = rng(0x5eed);

const pool: CellValue[][] = Array.from({ length: POOL }, (_, i) => studentmoduleRow(i, random));
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
