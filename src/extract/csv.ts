// Which bytes a row becomes (DESIGN §5): the CSV that Athena's OpenCSVSerde (opencsv 2.x rules,
// escape `\`, quote `"`, records split on line ends) reads back as each value's canonical form.
// Pure and batch-oriented: the extractor hands over a few hundred rows at a time and gets one
// string back, because per-row and per-field allocations dominate the cost of CSV encoding.

/** How a column's values are written; derived from the MySQL type by columnKind(). */
export type ColumnKind =
  | "string"
  | "integer"
  | "decimal"
  | "double"
  | "datetime"
  | "date"
  | "time"
  | "json"
  | "binary";

/**
 * A value as the MySQL reader delivers it (mysql2 with dateStrings, supportBigNumbers and
 * bigNumberStrings): server text for integers, DECIMAL, temporal types and JSON; JS numbers for
 * small integers and FLOAT/DOUBLE; bigint when a caller has one; bytes for binary types and BIT.
 */
export type CellValue = string | number | bigint | Uint8Array | null;

const KIND_BY_TYPE: Readonly<Record<string, ColumnKind>> = {
  int: "integer",
  integer: "integer",
  tinyint: "integer",
  smallint: "integer",
  mediumint: "integer",
  bigint: "integer",
  year: "integer",
  bit: "integer",
  bool: "integer",
  boolean: "integer",
  serial: "integer",
  decimal: "decimal",
  numeric: "decimal",
  dec: "decimal",
  fixed: "decimal",
  float: "double",
  double: "double",
  real: "double",
  datetime: "datetime",
  timestamp: "datetime",
  date: "date",
  time: "time",
  json: "json",
  binary: "binary",
  varbinary: "binary",
  tinyblob: "binary",
  blob: "binary",
  mediumblob: "binary",
  longblob: "binary",
};

/**
 * The kind of a MySQL column type. Accepts information_schema's DATA_TYPE ("int") as well as a
 * full COLUMN_TYPE ("int(11) unsigned", "datetime(6)", "enum('a','b')"), in any case. Text types,
 * enum, set and anything unknown are strings.
 */
export function columnKind(mysqlType: string): ColumnKind {
  const base = /^\s*([a-z]+)/i.exec(mysqlType)?.[1]?.toLowerCase() ?? "";
  return KIND_BY_TYPE[base] ?? "string";
}

// Everything that makes a string field need quoting: the canonical form of a value holding `\`,
// CR or LF contains a backslash, so one test decides both "rewrite" and "quote".
const NEEDS_QUOTING = /[,"\\\r\n]/;
const CANONICAL_SPECIALS = /[\\\r\n]/g;

function canonicalChar(c: string): string {
  return c === "\\" ? "\\\\" : c === "\r" ? "\\r" : "\\n";
}

/**
 * The value Athena reads back for a string: `\` → `\\`, CR → `\r`, LF → `\n` (two characters
 * each), in one left-to-right pass.
 */
export function canonicalForm(s: string): string {
  return s.replace(CANONICAL_SPECIALS, canonicalChar);
}

/** A string as one CSV field (without the separator). */
function stringField(s: string): string {
  return NEEDS_QUOTING.test(s) ? quotedField(s) : s;
}

const CANONICAL_TEST = /[\\\r\n]/;

function quotedField(s: string): string {
  // Most quoted values (JSON) hold quotes and commas but no backslash or line break: one native
  // test spares them three passes.
  if (!CANONICAL_TEST.test(s)) return `"${s.replaceAll('"', '\\"')}"`;
  // Canonical form, then `\` and `"` escaped inside quotes. `\` goes first so the backslashes
  // introduced by the later replacements are not escaped twice. Chained replaceAll with string
  // patterns measured faster in Bun than one regex replace with a callback.
  return `"${s.replaceAll("\\", "\\\\\\\\").replaceAll("\r", "\\\\r").replaceAll("\n", "\\\\n").replaceAll('"', '\\"')}"`;
}

/**
 * FLOAT/DOUBLE text: the shortest digits that read back to the same number, laid out like
 * Python's repr() so files stay byte-identical to upstream's (which wrote Python floats):
 * `1.0`, `-0.0`, `0.0001`, `1e-05`, `1e+16`, `5e-324`. Java's Double.parseDouble (Athena's
 * CAST(x AS DOUBLE)) reads all of these. Non-finite values cannot come from MySQL; they are
 * written the way Java spells them, not as Python's `inf`/`nan` which Java rejects.
 */
export function formatDouble(n: number): string {
  if (!Number.isFinite(n)) return Number.isNaN(n) ? "NaN" : n > 0 ? "Infinity" : "-Infinity";
  if (n === 0) return Object.is(n, -0) ? "-0.0" : "0.0";
  const a = n < 0 ? -n : n;
  // Python's repr switches to exponent form below 1e-4 and from 1e16; JS's String() only below
  // 1e-6 and from 1e21, so inside Python's range String() already has the same text.
  if (a >= 1e-4 && a < 1e16) {
    const s = String(n);
    return Number.isInteger(n) ? `${s}.0` : s;
  }
  // toExponential() without an argument gives the same shortest digits as String().
  const s = n.toExponential();
  const e = s.indexOf("e");
  const exp = s.slice(e + 2);
  return `${s.slice(0, e + 2)}${exp.length < 2 ? `0${exp}` : exp}`;
}

/** DATETIME/TIMESTAMP server text with exactly 6 fractional digits. */
function datetimeText(s: string): string {
  const len = s.length;
  if (len === 19) return `${s}.000000`;
  // "YYYY-MM-DD HH:MM:SS.f" .. "YYYY-MM-DD HH:MM:SS.fffff"
  if (len > 20 && len < 26 && s.charCodeAt(19) === 46) return s + "000000".slice(len - 20);
  return s;
}

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("hex");
}

/** BIT(n) arrives as big-endian bytes; as an integer column it is written as the number. */
function unsignedBigEndian(bytes: Uint8Array): string {
  let x = 0n;
  for (const b of bytes) x = (x << 8n) | BigInt(b);
  return x.toString();
}

function integerFromNumber(n: number, column: number): string {
  // A JS number beyond 2^53 has already lost digits: refuse rather than write a wrong value.
  if (!Number.isSafeInteger(n)) {
    throw new RangeError(
      `integer column ${column + 1} received the JS number ${n}, which is not an exact integer; ` +
        "the MySQL reader must deliver large integers as strings (bigNumberStrings)",
    );
  }
  return String(n);
}

// Numeric codes so the per-cell dispatch compares small integers, not strings.
const STRING = 0;
const INTEGER = 1;
const DECIMAL = 2;
const DOUBLE = 3;
const DATETIME = 4;
const OTHER_TEXT = 5; // date, time: the server's text
const BINARY = 6;

const CODE_BY_KIND: Readonly<Record<ColumnKind, number>> = {
  string: STRING,
  json: STRING,
  integer: INTEGER,
  decimal: DECIMAL,
  double: DOUBLE,
  datetime: DATETIME,
  date: OTHER_TEXT,
  time: OTHER_TEXT,
  binary: BINARY,
};

function cellField(v: string | number | bigint | Uint8Array, code: number, column: number): string {
  if (typeof v === "string") {
    if (code === DATETIME) return stringField(datetimeText(v));
    // A binary column that arrived decoded is still written as hex, so the column's contract holds.
    if (code === BINARY) return Buffer.from(v, "utf8").toString("hex");
    // Server text of every other kind is written as is; stringField() keeps the row intact
    // should a text ever hold a separator.
    return stringField(v);
  }
  if (typeof v === "number") {
    if (code === INTEGER) return integerFromNumber(v, column);
    if (code === DOUBLE) return formatDouble(v);
    return stringField(String(v));
  }
  if (typeof v === "bigint") return v.toString();
  return code === INTEGER ? unsignedBigEndian(v) : hex(v);
}

/** The header row: field names, then CRLF. */
export function encodeHeader(names: ReadonlyArray<string>): string {
  return `${names.map(stringField).join(",")}\r\n`;
}

/**
 * A batch of rows as CSV text, each row ending with CRLF. `kinds[i]` describes column i; every
 * row must have exactly kinds.length values. NULL and the empty string are both an empty field.
 */
export function encodeRows(
  rows: ReadonlyArray<ReadonlyArray<CellValue>>,
  kinds: ReadonlyArray<ColumnKind>,
): string {
  const width = kinds.length;
  const codes = kinds.map((k) => CODE_BY_KIND[k]);
  let out = "";
  for (let r = 0; r < rows.length; r++) {
    const row = rows[r]!;
    if (row.length !== width) {
      throw new RangeError(`row ${r + 1} of the batch has ${row.length} values, expected ${width}`);
    }
    for (let i = 0; i < width; i++) {
      if (i > 0) out += ",";
      const v = row[i];
      if (v === null || v === undefined) continue;
      const code = codes[i]!;
      if (code === STRING && typeof v === "string") {
        // The hot path: most cells are plain strings that need nothing.
        if (v.length > 0) out += NEEDS_QUOTING.test(v) ? quotedField(v) : v;
      } else {
        out += cellField(v, code, i);
      }
    }
    out += "\r\n";
  }
  return out;
}
