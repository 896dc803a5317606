// CSV straight from the bytes of MySQL text-protocol rows: the same output as encodeRows() on the
// values mysql2 would have parsed, without making a JS string of every cell and then encoding it
// back to UTF-8 (that round trip and its garbage were most of the cost of extraction).
//
// Byte-level work is exact here because the CSV specials (`,` `"` `\` CR LF) are ASCII, and in
// UTF-8 an ASCII byte never occurs inside a multi-byte character. Columns this module does not
// know how to copy exactly (BIT, ZEROFILL integers, GEOMETRY, a configured kind that disagrees
// with the server's type) make rawPlan() answer null: the caller then uses mysql2's row parser.
import { PSEUDONYM_LENGTH, type Pseudonymizer } from "../privacy/pseudonym.ts";
import { type ColumnKind, formatDouble } from "./csv.ts";

/** What the encoder needs of a column definition (mysql2's ColumnDefinition has these). */
export interface RawField {
  columnType: number;
  characterSet: number;
  flags: number;
}

// Protocol type codes (include/mysql_com.h, enum_field_types).
const T = {
  DECIMAL: 0,
  TINY: 1,
  SHORT: 2,
  LONG: 3,
  FLOAT: 4,
  DOUBLE: 5,
  TIMESTAMP: 7,
  LONGLONG: 8,
  INT24: 9,
  DATE: 10,
  TIME: 11,
  DATETIME: 12,
  YEAR: 13,
  NEWDATE: 14,
  VARCHAR: 15,
  TIMESTAMP2: 17,
  DATETIME2: 18,
  TIME2: 19,
  JSON: 245,
  NEWDECIMAL: 246,
  ENUM: 247,
  SET: 248,
  TINY_BLOB: 249,
  MEDIUM_BLOB: 250,
  LONG_BLOB: 251,
  BLOB: 252,
  VAR_STRING: 253,
  STRING: 254,
} as const;
const BIT = 16;
/** the type of a NULL literal: the empty columns of a layout (every cell NULL) */
const NULL_TYPE = 6;
const BINARY_CHARSET = 63;
const ZEROFILL_FLAG = 0x40;

const INTEGER_TYPES = new Set<number>([T.TINY, T.SHORT, T.LONG, T.LONGLONG, T.INT24, T.YEAR]);
const TEXT_TYPES = new Set<number>([
  T.VARCHAR,
  T.ENUM,
  T.SET,
  T.TINY_BLOB,
  T.MEDIUM_BLOB,
  T.LONG_BLOB,
  T.BLOB,
  T.VAR_STRING,
  T.STRING,
]);

// How one cell's bytes become CSV.
/** server text that never needs quoting: integers, DECIMAL, DATE, TIME */
const COPY = 0;
/** a string: copied, or quoted and escaped when it holds a CSV special */
const TEXT = 1;
/** DATETIME/TIMESTAMP: the server's text with exactly six fractional digits */
const DATETIME = 2;
/** FLOAT/DOUBLE: shortest round-trip text laid out like Python's repr */
const DOUBLE = 3;
/** bytes as lower-case hex */
const HEX = 4;
/** ZEROFILL integer text ("00042", YEAR "0000"): the number, as mysql2 reads it */
const UNPADDED = 5;
/** BIT(n): big-endian bytes, written as the unsigned number */
const BITS = 6;
/** a personal value: its pseudonym (DESIGN §11), which never needs quoting */
const PSEUDONYM = 7;

/** Columns whose values are written as pseudonyms, and who makes them. */
export interface PseudonymColumns {
  /** column indexes */
  columns: ReadonlyArray<number>;
  pseudonymizer: Pseudonymizer;
}

/**
 * The plan with the pseudonymized columns' codes replaced: their bytes as the server sent them
 * (the value's canonical source form) go to the HMAC, before any CSV quoting.
 */
export function withPseudonyms(codes: Uint8Array, pseudonyms: PseudonymColumns | null): Uint8Array {
  if (!pseudonyms) return codes;
  const out = codes.slice();
  for (const i of pseudonyms.columns) out[i] = PSEUDONYM;
  return out;
}

/** One code per column, or null when some column needs mysql2's own parsing. */
export function rawPlan(
  fields: ReadonlyArray<RawField>,
  kinds: ReadonlyArray<ColumnKind>,
): Uint8Array | null {
  if (fields.length !== kinds.length) return null;
  const codes = new Uint8Array(fields.length);
  for (let i = 0; i < fields.length; i++) {
    const code = rawCode(fields[i]!, kinds[i]!);
    if (code === null) return null;
    codes[i] = code;
  }
  return codes;
}

function rawCode(field: RawField, kind: ColumnKind): number | null {
  const type = field.columnType;
  if (type === NULL_TYPE) return COPY;
  const binary = field.characterSet === BINARY_CHARSET;
  switch (kind) {
    case "integer":
      if (type === BIT) return BITS;
      if (!INTEGER_TYPES.has(type)) return null;
      // mysql2 reads ZEROFILL text (YEAR is always ZEROFILL) as a number, dropping the zeros.
      return field.flags & ZEROFILL_FLAG ? UNPADDED : COPY;
    case "decimal":
      return type === T.NEWDECIMAL || type === T.DECIMAL ? COPY : null;
    case "date":
      return type === T.DATE || type === T.NEWDATE ? COPY : null;
    case "time":
      return type === T.TIME || type === T.TIME2 ? COPY : null;
    case "datetime":
      return type === T.DATETIME || type === T.DATETIME2 || type === T.TIMESTAMP || type === T.TIMESTAMP2
        ? DATETIME
        : null;
    case "double":
      return type === T.DOUBLE || type === T.FLOAT ? DOUBLE : null;
    case "binary":
      return TEXT_TYPES.has(type) ? HEX : null;
    case "string":
    case "json":
      // MySQL's JSON type says "binary" but is UTF-8 text; other binary strings arrive as bytes.
      if (type === T.JSON) return TEXT;
      if (TEXT_TYPES.has(type)) return binary ? HEX : TEXT;
      return null;
  }
}

const COMMA = 0x2c;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const CR = 0x0d;
const LF = 0x0a;
const R = 0x72;
const N = 0x6e;
const DOT = 0x2e;
const ZERO = 0x30;
const NULL_CELL = 0xfb;

/** Bytes that make a string need quoting (and, for `\` CR LF, rewriting). */
const SPECIAL = new Uint8Array(256);
for (const c of [COMMA, QUOTE, BACKSLASH, CR, LF]) SPECIAL[c] = 1;
const HEX_DIGITS = new TextEncoder().encode("0123456789abcdef");

/**
 * Encodes rows into one reused buffer. `flushTo` receives a view of the bytes, valid only during
 * the call (the sink copies them), and the number of rows they complete.
 */
export class RawRowEncoder {
  private buffer: Buffer;
  private used = 0;
  private rowsInBuffer = 0;
  rows = 0;
  /** room a row may need beyond its own bytes for pseudonyms longer than their values */
  private readonly pseudonymBytes: number;

  constructor(
    private readonly codes: Uint8Array,
    private readonly flushTo: (bytes: Buffer, rows: number) => void,
    private readonly chunkBytes = 1 << 16,
    private readonly pseudonymizer: Pseudonymizer | null = null,
  ) {
    this.buffer = Buffer.allocUnsafe(chunkBytes);
    this.pseudonymBytes = codes.filter((c) => c === PSEUDONYM).length * PSEUDONYM_LENGTH;
    if (this.pseudonymBytes > 0 && !pseudonymizer)
      throw new Error("pseudonymized columns need a pseudonymizer");
  }

  /** Hand over what is buffered. */
  flush(): void {
    if (this.used === 0) return;
    const rows = this.rowsInBuffer;
    const bytes = this.buffer.subarray(0, this.used);
    this.used = 0;
    this.rowsInBuffer = 0;
    this.flushTo(bytes, rows);
  }

  /** One row packet's payload, `src[start..end)`: length-coded cells, 0xFB for NULL. */
  row(src: Buffer, start: number, end: number): void {
    const codes = this.codes;
    const width = codes.length;
    // Worst case: every byte of a string escaped to 4 (`\` → `\\\\`), quotes, separators,
    // DATETIME padding, CRLF.
    const bound = 4 * (end - start) + 9 * width + 2 + this.pseudonymBytes;
    if (this.used + bound > this.buffer.length) {
      this.flush();
      // A huge row gets a buffer of its own; the next ordinary row goes back to the usual size.
      if (bound > this.buffer.length) this.buffer = Buffer.allocUnsafe(bound);
      else if (this.buffer.length > this.chunkBytes && bound <= this.chunkBytes) {
        this.buffer = Buffer.allocUnsafe(this.chunkBytes);
      }
    }
    const out = this.buffer;
    let o = this.used;
    let p = start;
    for (let i = 0; i < width; i++) {
      if (i > 0) out[o++] = COMMA;
      let len = src[p++]!;
      if (len === NULL_CELL) continue;
      if (len > NULL_CELL) {
        if (len === 0xfc) {
          len = src[p]! | (src[p + 1]! << 8);
          p += 2;
        } else if (len === 0xfd) {
          len = src[p]! | (src[p + 1]! << 8) | (src[p + 2]! << 16);
          p += 3;
        } else {
          len =
            (src[p]! | (src[p + 1]! << 8) | (src[p + 2]! << 16)) +
            src[p + 3]! * 2 ** 24 +
            src[p + 4]! * 2 ** 32;
          p += 8;
        }
      }
      const s = p;
      const e = p + len;
      p = e;
      if (len === 0) continue;
      switch (codes[i]) {
        case TEXT: {
          let q = s;
          while (q < e && SPECIAL[src[q]!] === 0) q++;
          if (q === e) {
            for (let k = s; k < e; k++) out[o++] = src[k]!;
            break;
          }
          out[o++] = QUOTE;
          for (let k = s; k < q; k++) out[o++] = src[k]!;
          for (let k = q; k < e; k++) {
            const c = src[k]!;
            if (SPECIAL[c] === 0 || c === COMMA) {
              out[o++] = c;
            } else if (c === QUOTE) {
              out[o++] = BACKSLASH;
              out[o++] = QUOTE;
            } else if (c === BACKSLASH) {
              // canonical `\\`, each escaped inside quotes
              out[o++] = BACKSLASH;
              out[o++] = BACKSLASH;
              out[o++] = BACKSLASH;
              out[o++] = BACKSLASH;
            } else {
              // canonical `\r` / `\n`, its backslash escaped inside quotes
              out[o++] = BACKSLASH;
              out[o++] = BACKSLASH;
              out[o++] = c === CR ? R : N;
            }
          }
          out[o++] = QUOTE;
          break;
        }
        case COPY:
          for (let k = s; k < e; k++) out[o++] = src[k]!;
          break;
        case DATETIME: {
          for (let k = s; k < e; k++) out[o++] = src[k]!;
          // "YYYY-MM-DD HH:MM:SS", then its fractional digits padded to six
          if (len === 19) out[o++] = DOT;
          const digits = len === 19 ? 0 : len > 20 && len < 26 && src[s + 19] === DOT ? len - 20 : 6;
          for (let k = digits; k < 6; k++) out[o++] = ZERO;
          break;
        }
        case DOUBLE: {
          o += out.write(formatDouble(Number.parseFloat(src.toString("latin1", s, e))), o, "latin1");
          break;
        }
        case UNPADDED: {
          let k = s;
          while (k < e - 1 && src[k] === ZERO) k++;
          for (; k < e; k++) out[o++] = src[k]!;
          break;
        }
        case BITS: {
          let x = 0n;
          for (let k = s; k < e; k++) x = (x << 8n) | BigInt(src[k]!);
          o += out.write(x.toString(), o, "latin1");
          break;
        }
        case PSEUDONYM:
          o += out.write(this.pseudonymizer!.of(src.subarray(s, e)), o, "latin1");
          break;
        case HEX:
          for (let k = s; k < e; k++) {
            const c = src[k]!;
            out[o++] = HEX_DIGITS[c >> 4]!;
            out[o++] = HEX_DIGITS[c & 15]!;
          }
          break;
      }
    }
    out[o++] = CR;
    out[o++] = LF;
    this.used = o;
    this.rowsInBuffer++;
    this.rows++;
  }
}
