// The content checksum of the unchanged probe (unchanged-probe.ts) for a table without the
// cheap signature (no auto-increment key, or no timestamp every save updates): the server hashes
// the columns the plan reads, row by row, and sends back only the row count and a 64-bit sum of
// the hashes, per partition. No row leaves the server. A plain SELECT is a consistent,
// non-locking read under InnoDB; CHECKSUM TABLE is not used: it locks the table against the
// LMS's writes on MySQL, and hashes columns panorama never reads (auth_user.password).
import { ident } from "./mysql.ts";

/**
 * Added to the sum for each row whose hash is NULL (its concatenated values exceed the server's
 * max_allowed_packet): the sum of n hashes below 2^64 stays below it for any table (n < 5·10^10),
 * so a sum this large says some row was not hashed, and the probe is not trusted.
 */
const UNHASHED = `1${"0".repeat(30)}`;

/**
 * The hash of one row: MD5 of the values as bytes (CAST AS BINARY: columns of different
 * collations never meet, and JSON is its text) joined by a NUL byte, then which of them are NULL
 * (NULL differs from ''). Joined, not length-prefixed: LENGTH and CONCAT per column tripled the
 * server's time (3.5 s against 1.2 s on 1 M courseware_studentmodule rows with CRC32; 2.6 s with
 * this MD5). Only a NUL byte moving across a column boundary, all else equal, keeps the hash;
 * `full_every`'s read catches even that.
 */
export function rowHash(columns: string[]): string {
  const values = columns.map((name) => `CAST(${ident(name)} AS BINARY)`);
  const nulls = columns.map((name) => `ISNULL(${ident(name)})`);
  return `MD5(CONCAT_WS(X'00', ${values.join(", ")}, CONCAT(${nulls.join(", ")})))`;
}

/**
 * The aggregates of the checksum, `n` (rows) and `s` (the sum of the rows' first 64 hash bits),
 * both as text (exact whatever their size). The hash is referenced once: each reference costs a
 * whole MD5 per row (a derived table computing it once is merged back into the query).
 */
export function checksumMeasures(columns: string[]): string {
  const first64 = `CAST(CONV(LEFT(${rowHash(columns)}, 16), 16, 10) AS DECIMAL(20, 0))`;
  return `CAST(COUNT(*) AS CHAR) AS n, CAST(SUM(COALESCE(${first64}, ${UNHASHED})) AS CHAR) AS s`;
}

/** A signature of the checksum's `n` and `s`; null when some row could not be hashed. */
export function checksumSignature(n: unknown, s: unknown): string | null {
  const sum = s === null || s === undefined ? "0" : String(s);
  if (BigInt(sum) >= BigInt(UNHASHED)) return null;
  return `md5:${String(n)}/${sum}`;
}
