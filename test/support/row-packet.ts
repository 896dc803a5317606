// MySQL text-protocol row payloads built by hand, for the packet encoder's tests and benchmark.

/** A row packet's payload: each cell length-coded, null as 0xFB. */
export function rowPayload(cells: (string | Uint8Array | null)[]): Buffer {
  const parts: Buffer[] = [];
  for (const cell of cells) {
    if (cell === null) {
      parts.push(Buffer.from([0xfb]));
      continue;
    }
    const bytes = typeof cell === "string" ? Buffer.from(cell, "utf8") : Buffer.from(cell);
    const n = bytes.length;
    if (n < 251) parts.push(Buffer.from([n]));
    else if (n < 2 ** 16) parts.push(Buffer.from([0xfc, n & 255, n >> 8]));
    else if (n < 2 ** 24) parts.push(Buffer.from([0xfd, n & 255, (n >> 8) & 255, n >> 16]));
    else {
      const len = Buffer.alloc(9);
      len[0] = 0xfe;
      len.writeBigUInt64LE(BigInt(n), 1);
      parts.push(len);
    }
    parts.push(bytes);
  }
  return Buffer.concat(parts);
}
