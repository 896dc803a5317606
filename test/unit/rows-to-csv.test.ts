// The WebAssembly row encoder (src/extract/wasm/) against the reference, RawRowEncoder: random
// rows over every code the module encodes, fed as mysql2 hands packets over and as socket reads
// cut anywhere; the rows it hands back; the end of the rows; and the module is its C source.
import { expect, test } from "bun:test";
import { join } from "node:path";
import { RawRowEncoder, rawPlan } from "../../src/extract/raw-csv.ts";
import { BatchRowEncoder, RoutingRefused } from "../../src/extract/wasm/rows-to-csv.ts";
import { rowPayload } from "../support/row-packet.ts";

const FIELDS = [
  { columnType: 3, characterSet: 63, flags: 0 }, // INT: COPY
  { columnType: 253, characterSet: 224, flags: 0 }, // VARCHAR: TEXT
  { columnType: 12, characterSet: 63, flags: 0 }, // DATETIME
  { columnType: 5, characterSet: 63, flags: 0 }, // DOUBLE
  { columnType: 253, characterSet: 63, flags: 0 }, // VARBINARY: HEX
  { columnType: 3, characterSet: 63, flags: 0x40 }, // INT ZEROFILL: UNPADDED
  { columnType: 252, characterSet: 224, flags: 0 }, // TEXT
];
const KINDS = ["integer", "string", "datetime", "double", "binary", "integer", "string"] as const;
const CODES = rawPlan(FIELDS, [...KINDS])!;

function rng(seed: number): () => number {
  let s = seed;
  return () => {
    s = (s + 0x6d2b79f5) | 0;
    let t = Math.imul(s ^ (s >>> 15), s | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const DOUBLES = [
  "1",
  "0",
  "-0",
  "0.5",
  "-12.25",
  "0.0001",
  "0.00001",
  "1e-7",
  "123456789012345",
  "1234567890123456",
  "0.30000000000000004",
  "1.5e300",
  "10",
  "0.10",
  "007",
  "2.50",
];
const DATETIMES = [
  "2024-01-02 03:04:05",
  "2024-01-02 03:04:05.5",
  "2024-01-02 03:04:05.123456",
  "9999-12-31 23:59:59.99",
];
const TEXT_PIECES = [
  "a",
  "é",
  "😀",
  ",",
  '"',
  "\\",
  "\r",
  "\n",
  "block-v1:Org+CS+T+type@problem",
  '{"k": [1, 2]}',
  " ",
];

function randomRow(random: () => number): (string | Uint8Array | null)[] {
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(random() * xs.length)]!;
  const text = (max: number) => {
    let s = "";
    const n = Math.floor(random() ** 3 * max);
    for (let i = 0; i < n; i++) s += pick(TEXT_PIECES);
    return s;
  };
  const maybe = <T>(v: T) => (random() < 0.1 ? null : v);
  return [
    String(Math.floor(random() * 1e9) - 5e8),
    maybe(text(random() < 0.05 ? 3000 : 40)),
    maybe(pick(DATETIMES)),
    maybe(pick(DOUBLES)),
    maybe(Uint8Array.from({ length: Math.floor(random() * 20) }, () => Math.floor(random() * 256))),
    maybe(String(Math.floor(random() * 1000)).padStart(6, "0")),
    maybe(text(random() < 0.02 ? 30_000 : 200)),
  ];
}

/** Row packets, 4-byte headers included, sequence ids counting up. */
function packets(rows: (string | Uint8Array | null)[][]): Buffer {
  return Buffer.concat(
    rows.map((row, i) => {
      const payload = rowPayload(row);
      const header = Buffer.from([
        payload.length & 255,
        (payload.length >> 8) & 255,
        payload.length >> 16,
        (i + 2) & 255,
      ]);
      return Buffer.concat([header, payload]);
    }),
  );
}

function reference(bytes: Buffer): string {
  const out: Buffer[] = [];
  const encoder = new RawRowEncoder(CODES, (b) => void out.push(Buffer.from(b)));
  for (let at = 0; at < bytes.length; ) {
    const end = at + 4 + (bytes[at]! | (bytes[at + 1]! << 8) | (bytes[at + 2]! << 16));
    encoder.row(bytes, at + 4, end);
    at = end;
  }
  encoder.flush();
  return Buffer.concat(out).toString("utf8");
}

function batch(): { encoder: BatchRowEncoder; text: () => string; rows: () => number } {
  const out: Buffer[] = [];
  let counted = 0;
  const flushTo = (b: Uint8Array, n: number) => {
    out.push(Buffer.from(b));
    counted += n;
  };
  const encoder = new BatchRowEncoder(CODES, flushTo, new RawRowEncoder(CODES, flushTo));
  return { encoder, text: () => Buffer.concat(out).toString("utf8"), rows: () => counted };
}

test("the module encodes every code of the plan but BIT and pseudonyms", () => {
  expect(BatchRowEncoder.covers(CODES)).toBe(true);
  expect(BatchRowEncoder.covers(Uint8Array.from([0, 1, 6]))).toBe(false); // BIT
  expect(BatchRowEncoder.covers(Uint8Array.from([0, 7]))).toBe(false); // pseudonym
});

test("random rows, as socket reads cut anywhere: the reference's bytes and row count", () => {
  const random = rng(7);
  const rows = Array.from({ length: 3000 }, () => randomRow(random));
  const bytes = packets(rows);
  const expected = reference(bytes);
  for (const maxPiece of [1, 3, 17, 700, 70_000, bytes.length]) {
    const { encoder, text, rows: counted } = batch();
    let handedBack = 0;
    for (let at = 0; at < bytes.length; ) {
      const n = maxPiece === 1 ? 1 : 1 + Math.floor(random() * maxPiece);
      if (encoder.stream(bytes.subarray(at, at + n)) !== null) handedBack++;
      at += n;
    }
    expect(handedBack).toBe(0);
    encoder.flush();
    expect(counted()).toBe(rows.length);
    expect(encoder.rows).toBe(rows.length);
    const got = text();
    expect(got.length).toBe(expected.length);
    expect(got === expected).toBe(true);
    encoder.release();
  }
}, 30_000);

test("random rows, as mysql2 hands the packets of one read over, and one it put together", () => {
  const random = rng(11);
  const rows = Array.from({ length: 500 }, () => randomRow(random));
  const bytes = packets(rows);
  const { encoder, text } = batch();
  let at = 0;
  for (let i = 0; i < rows.length; i++) {
    const end = at + 4 + (bytes[at]! | (bytes[at + 1]! << 8) | (bytes[at + 2]! << 16));
    if (i % 100 === 50) {
      // A packet read in two pieces: mysql2 copies it into a buffer of its own, length unset.
      const own = Buffer.alloc(end - at);
      bytes.copy(own, 4, at + 4, end);
      encoder.packet(own, 0, 4, own.length);
    } else encoder.packet(bytes, at, at + 4, end);
    at = end;
  }
  encoder.flush();
  expect(encoder.rows).toBe(rows.length);
  expect(text() === reference(bytes)).toBe(true);
  encoder.release();
});

test("the end of the rows: what follows goes back, header and all, and nothing after it is encoded", () => {
  const random = rng(3);
  const rows = Array.from({ length: 50 }, () => randomRow(random));
  const eof = Buffer.from([0x07, 0, 0, 0x99, 0xfe, 0, 0, 0x22, 0, 0, 0]);
  const error = Buffer.from([0x05, 0, 0, 0x9a, 0xff, 0x15, 0x04, 0x23, 0x48]);
  for (const end of [eof, error]) {
    const bytes = Buffer.concat([packets(rows), end, Buffer.from("next")]);
    for (const cut of [5, bytes.length - end.length - 6, bytes.length - end.length + 2]) {
      const { encoder, text } = batch();
      expect(encoder.stream(bytes.subarray(0, cut))).toBeNull();
      const rest = encoder.stream(bytes.subarray(cut));
      expect(rest && Buffer.from(rest).equals(Buffer.concat([end, Buffer.from("next")]))).toBe(true);
      encoder.flush();
      expect(encoder.rows).toBe(rows.length);
      expect(text() === reference(packets(rows))).toBe(true);
      encoder.release();
    }
  }
});

test("a packet larger than the module's input area, and a row whose CSV outgrows its output area", () => {
  const rows = [
    ["1", "x".repeat(3_000_000), null, "1", null, null, "y"],
    ["2", '"'.repeat(200_000), null, "0.1", null, null, null],
    ["3", "z", null, null, null, null, "\\".repeat(100_000)],
  ];
  const bytes = packets(rows);
  const { encoder, text } = batch();
  for (let at = 0; at < bytes.length; at += 65_536)
    expect(encoder.stream(bytes.subarray(at, at + 65_536))).toBeNull();
  encoder.flush();
  expect(encoder.rows).toBe(3);
  expect(text() === reference(bytes)).toBe(true);
  encoder.release();
});

test("the committed module is what rows-to-csv.c compiles to", () => {
  const check = Bun.spawnSync(
    ["bash", join(import.meta.dir, "..", "..", "scripts", "build-wasm.sh"), "--check"],
    {
      stderr: "pipe",
      stdout: "pipe",
    },
  );
  expect(check.stderr.toString()).not.toContain("is not what");
  expect(check.exitCode).toBe(0);
}, 120_000);

// Routing (partition-scan.ts): each row's first cell names its partition and is not written; each
// partition's CSV is the reference's for its own rows, in their order.
const KEYS: (string | null)[] = ["course-v1:A+B+C", "ünï😀", "", null, "k".repeat(300), "x"];

function routedRows(random: () => number, count: number): (string | Uint8Array | null)[][] {
  return Array.from({ length: count }, () => [
    KEYS[Math.floor(random() * KEYS.length)]!,
    ...randomRow(random),
  ]);
}

function routed(keys: (string | null)[] = KEYS): {
  encoder: BatchRowEncoder;
  parts: Buffer[][];
  counted: () => number;
} {
  const parts: Buffer[][] = keys.map(() => []);
  let counted = 0;
  const reference = new RawRowEncoder(CODES, () => {
    throw new Error("a routed row went to flushTo");
  });
  let referencePart = -1;
  const referenceOut = new RawRowEncoder(CODES, (b, n) => {
    parts[referencePart]!.push(Buffer.from(b));
    counted += n;
  });
  const encoder = new BatchRowEncoder(
    CODES,
    () => {
      throw new Error("a routed row went to flushTo");
    },
    reference,
    {
      keys: keys.map((k) => (k === null ? null : Buffer.from(k))),
      deliver: (part, csv, rows) => {
        parts[part]!.push(Buffer.from(csv));
        counted += rows;
      },
      reference: (part, buffer, start, end) => {
        referencePart = part;
        referenceOut.row(buffer, start, end);
        referenceOut.flush();
      },
    },
  );
  return { encoder, parts, counted: () => counted };
}

test("routed rows, as socket reads cut anywhere: each partition's rows as the reference encodes them", () => {
  const random = rng(19);
  const rows = routedRows(random, 3000);
  const expected = KEYS.map((key) =>
    reference(packets(rows.filter((r) => r[0] === key).map((r) => r.slice(1)))),
  );
  expect(expected.every((text) => text.length > 0)).toBe(true);
  for (const maxPiece of [1, 17, 700, 70_000]) {
    const { encoder, parts, counted } = routed();
    const bytes = packets(rows);
    for (let at = 0; at < bytes.length; ) {
      const n = maxPiece === 1 ? 1 : 1 + Math.floor(random() * maxPiece);
      expect(encoder.stream(bytes.subarray(at, at + n))).toBeNull();
      at += n;
    }
    encoder.flush();
    expect(counted()).toBe(rows.length);
    const got = parts.map((p) => Buffer.concat(p).toString("utf8"));
    for (const [i, text] of got.entries()) expect(text === expected[i]).toBe(true);
    encoder.release();
  }
}, 30_000);

test("routed rows as mysql2 hands them over, one put together in its own buffer among them", () => {
  const random = rng(23);
  const rows = routedRows(random, 400);
  const bytes = packets(rows);
  const { encoder, parts } = routed();
  let at = 0;
  for (let i = 0; i < rows.length; i++) {
    const end = at + 4 + (bytes[at]! | (bytes[at + 1]! << 8) | (bytes[at + 2]! << 16));
    if (i % 50 === 25) {
      const own = Buffer.alloc(end - at);
      bytes.copy(own, 4, at + 4, end);
      encoder.packet(own, 0, 4, own.length);
    } else encoder.packet(bytes, at, at + 4, end);
    at = end;
  }
  encoder.flush();
  for (const [i, key] of KEYS.entries()) {
    const text = Buffer.concat(parts[i]!).toString("utf8");
    expect(text === reference(packets(rows.filter((r) => r[0] === key).map((r) => r.slice(1))))).toBe(true);
  }
  encoder.release();
});

test("a routed row of a partition not listed is refused, by the module and by the reference", () => {
  const random = rng(29);
  const listed = KEYS.filter((k) => k !== "x");
  const rows = routedRows(random, 200).filter((r) => r[0] !== "x");
  const stray = ["X", ...randomRow(random)];
  for (const own of [false, true]) {
    const { encoder } = routed(listed);
    const bytes = packets([...rows, stray]);
    if (own) {
      // the stray row as a packet mysql2 put together: the reference routes it
      const at = packets(rows).length;
      const copy = Buffer.alloc(bytes.length - at);
      bytes.copy(copy, 4, at + 4);
      encoder.stream(bytes.subarray(0, at));
      expect(() => encoder.packet(copy, 0, 4, copy.length)).toThrow(RoutingRefused);
    } else expect(() => encoder.stream(bytes)).toThrow(RoutingRefused);
    encoder.release();
  }
});
