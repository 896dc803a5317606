// Row packets to CSV in WebAssembly (rows-to-csv.c): the consecutive row packets mysql2 parsed out
// of one socket read are copied once into the module's memory and encoded there in one call,
// instead of byte by byte in the JIT (3 to 4 times faster on courseware_studentmodule). The
// output is exactly RawRowEncoder's, which stays the reference and encodes what the module
// hands back: a row with a cell it does not encode, a packet mysql2 had to put together from
// two reads.
import type { RawRowEncoder } from "../raw-csv.ts";
import { ROWS_TO_CSV_WASM } from "./rows-to-csv.wasm.ts";

/** The codes the module encodes (raw-csv.ts: COPY, TEXT, DATETIME, DOUBLE, HEX, UNPADDED). */
const MODULE_CODES = new Set([0, 1, 2, 3, 4, 5]);
/** rows-to-csv.c's stop reasons */
const DONE = 0;
const OUTPUT_FULL = 1;
const REFERENCE_ROW = 2;
const NOT_A_ROW = 3;

interface Exports {
  memory: WebAssembly.Memory;
  result: WebAssembly.Global;
  init(): void;
  encode(
    input: number,
    length: number,
    output: number,
    capacity: number,
    codes: number,
    width: number,
  ): number;
  index_parts(parts: number, count: number, table: number, size: number): void;
  encode_routed(
    input: number,
    length: number,
    codes: number,
    width: number,
    parts: number,
    table: number,
    size: number,
    nullPart: number,
  ): number;
}

/**
 * Rows routed by their first cell (partition-scan.ts): `keys` are the partitions' values as the
 * server sends them (null: NULL); the first cell is not written, the codes are the others'.
 */
export interface RowRoute {
  keys: (Uint8Array | null)[];
  /** CSV of `rows` rows of partition `part` (a view: copy it during the call) */
  deliver(part: number, csv: Uint8Array, rows: number): void;
  /** a row of partition `part` for the reference encoder: its other cells, buffer[start..end) */
  reference(part: number, buffer: Buffer, start: number, end: number): void;
}

/** A routed row whose partition was not listed, or a plan the module does not encode. */
export class RoutingRefused extends Error {}

/** Each partition's buffer in the module (rows-to-csv.c's Part): 256 of them keep 4 MiB. */
const PART_BYTES = 16 * 1024;
const PART_FULL = 4;
const NOT_LISTED = 5;

let compiled: WebAssembly.Module | null = null;
/**
 * Instances no encoder uses: making one costs milliseconds (its memory is reserved and mapped),
 * as much as encoding a partition of a few thousand rows, so they are kept and reused.
 */
const idle: Exports[] = [];

/** The module's own data and stack live below this; the encoder's buffers start here. */
const BASE = 1 << 16;
const OUTPUT_BYTES = 1 << 18;
/** input copied in at most this much at a time (a larger packet grows it) */
const INPUT_BYTES = 1 << 20;
const PAGE = 1 << 16;
/** The module reads up to 15 bytes past a cell (16 at a time): memory it may read after the input. */
const OVERREAD = 16;

const header = (b: Uint8Array, at: number): number => b[at]! | (b[at + 1]! << 8) | (b[at + 2]! << 16);

export class BatchRowEncoder {
  private readonly wasm: Exports;
  private heap: Uint8Array;
  /** the same memory, for the reference encoder */
  private heapBuffer: Buffer;
  /** bytes of an incomplete packet at the start of the input area (stream()) */
  private carry = 0;
  private result: Uint32Array;
  private readonly codesAt = BASE;
  private readonly outputAt: number;
  private readonly inputAt: number;
  private inputBytes = INPUT_BYTES;
  private encoded = 0;
  // The run of consecutive packets waiting in mysql2's read buffer.
  private pending: Uint8Array | null = null;
  private pendingStart = 0;
  private pendingEnd = 0;

  /** Whether the module encodes every column of this plan (no pseudonym, no BIT column). */
  static covers(codes: Uint8Array): boolean {
    return codes.every((c) => MODULE_CODES.has(c));
  }

  /** routed: the Part records (6 numbers each), the lookup table, each part's index by key */
  private parts: Uint32Array | null = null;
  private partsAt = 0;
  private tableAt = 0;
  private tableSize = 0;
  private nullPart = -1;
  private readonly partByKey = new Map<string, number>();

  constructor(
    private readonly codes: Uint8Array,
    private readonly flushTo: (bytes: Uint8Array, rows: number) => void,
    /** encodes the rows handed back, into the same flushTo */
    private readonly reference: RawRowEncoder,
    /** rows routed to partitions by their first cell, instead of flushTo */
    private readonly route: RowRoute | null = null,
  ) {
    const reused = idle.pop();
    if (reused) this.wasm = reused;
    else {
      compiled ??= new WebAssembly.Module(Buffer.from(ROWS_TO_CSV_WASM, "base64"));
      this.wasm = new WebAssembly.Instance(compiled, {}).exports as unknown as Exports;
      this.wasm.init();
    }
    let at = this.codesAt + Math.ceil(codes.length / 16) * 16;
    if (route) {
      const count = route.keys.length;
      this.partsAt = at;
      this.tableSize = 2 ** Math.ceil(Math.log2(Math.max(2, count * 2)));
      this.tableAt = this.partsAt + count * 24;
      at = this.tableAt + this.tableSize * 4;
      const keysAt = at;
      at += route.keys.reduce((n, key) => n + (key?.length ?? 0), 0);
      at = Math.ceil(at / 16) * 16;
      const buffersAt = at;
      at += count * PART_BYTES;
      this.reserve(at);
      this.layOutParts(route.keys, keysAt, buffersAt);
    }
    this.outputAt = at;
    this.inputAt = this.outputAt + OUTPUT_BYTES;
    this.reserve(this.inputAt + this.inputBytes + OVERREAD);
    // A reused instance may have grown for a large packet: its input area is as large.
    this.inputBytes = this.wasm.memory.buffer.byteLength - this.inputAt - OVERREAD;
    this.heap = new Uint8Array(this.wasm.memory.buffer);
    this.heapBuffer = Buffer.from(this.wasm.memory.buffer);
    this.result = new Uint32Array(this.wasm.memory.buffer, this.wasm.result.value as number, 5);
    this.heap.set(codes, this.codesAt);
  }

  /** rows encoded so far, by the module and the reference */
  get rows(): number {
    return this.encoded + this.reference.rows;
  }

  /**
   * A row packet mysql2 parsed: `buffer[start..offset)` its 4-byte header, `buffer[offset..end)`
   * its payload. Nothing is encoded yet while the packets follow one another in one buffer.
   */
  packet(buffer: Uint8Array, start: number, offset: number, end: number): void {
    if (buffer === this.pending && start === this.pendingEnd) {
      this.pendingEnd = end;
      return;
    }
    this.encodePending();
    // A packet read in pieces comes in a buffer of its own whose length bytes mysql2 left unset.
    if (offset !== start + 4 || header(buffer, start) !== end - offset) {
      this.referencePayload(buffer as Buffer, offset, end);
      return;
    }
    this.pending = buffer;
    this.pendingStart = start;
    this.pendingEnd = end;
  }

  /** Encode and hand over everything received. */
  flush(): void {
    this.encodePending();
    if (this.parts) for (let i = 0; i < this.route!.keys.length; i++) this.flushPart(i);
  }

  /** Write the keys and Part records, and have the module index them. */
  private layOutParts(keys: (Uint8Array | null)[], keysAt: number, buffersAt: number): void {
    const heap = new Uint8Array(this.wasm.memory.buffer);
    const parts = new Uint32Array(this.wasm.memory.buffer, this.partsAt, keys.length * 6);
    let keyAt = keysAt;
    keys.forEach((key, i) => {
      if (key === null) this.nullPart = i;
      else {
        heap.set(key, keyAt);
        this.partByKey.set(Buffer.from(key).toString("latin1"), i);
      }
      // NULL's part has no key (NO_PART): the module finds it as nullPart, never by value.
      parts.set([keyAt, key?.length ?? 0xffffffff, buffersAt + i * PART_BYTES, PART_BYTES, 0, 0], i * 6);
      keyAt += key?.length ?? 0;
    });
    heap.fill(0, this.tableAt, this.tableAt + this.tableSize * 4);
    this.wasm.index_parts(this.partsAt, keys.length, this.tableAt, this.tableSize);
    this.parts = parts;
  }

  /** Hand part `i`'s buffered rows to the route; false when it had none. */
  private flushPart(i: number): boolean {
    const parts = this.parts!;
    const used = parts[i * 6 + 4]!;
    if (used === 0) return false;
    const at = parts[i * 6 + 2]!;
    this.route!.deliver(i, this.heap.subarray(at, at + used), parts[i * 6 + 5]!);
    parts[i * 6 + 4] = 0;
    parts[i * 6 + 5] = 0;
    return true;
  }

  /** The query is over: its instance goes back to the pool (the encoder must not be used again). */
  release(): void {
    // One that grew for a huge row is left to the garbage collector.
    if (idle.length < 4 && this.wasm.memory.buffer.byteLength <= 4 << 20) idle.push(this.wasm);
  }

  /**
   * Bytes read from the socket, continuing the packet stream after the packets given so far:
   * rows are encoded, an incomplete packet at the end waits for the next call. At the first
   * packet that is not a row (the end of the rows, an error, a row split in several packets),
   * returns the bytes from that packet on, its header included, for mysql2's parser; else null.
   */
  stream(chunk: Uint8Array): Uint8Array | null {
    this.encodePending();
    let from = 0;
    while (from < chunk.length) {
      if (this.carry === this.inputBytes) {
        // One packet larger than the input area: make room for all of it.
        this.inputBytes = header(this.heap, this.inputAt) + 4;
        this.reserve(this.inputAt + this.inputBytes + OVERREAD);
      }
      const n = Math.min(chunk.length - from, this.inputBytes - this.carry);
      this.heap.set(chunk.subarray(from, from + n), this.inputAt + this.carry);
      from += n;
      const length = this.carry + n;
      const used = this.encodeInput(length);
      if (used < 0) {
        const at = this.inputAt - used - 1;
        const rest = new Uint8Array(this.inputAt + length - at + chunk.length - from);
        rest.set(this.heap.subarray(at, this.inputAt + length));
        rest.set(chunk.subarray(from), this.inputAt + length - at);
        this.carry = 0;
        return rest;
      }
      this.heap.copyWithin(this.inputAt, this.inputAt + used, this.inputAt + length);
      this.carry = length - used;
    }
    return null;
  }

  private encodePending(): void {
    const buffer = this.pending;
    if (buffer === null) return;
    this.pending = null;
    let from = this.pendingStart;
    const to = this.pendingEnd;
    while (from < to) {
      const length = Math.min(to - from, this.inputBytes);
      this.heap.set(buffer.subarray(from, from + length), this.inputAt);
      const used = this.encodeInput(length);
      if (used === 0) {
        // One packet larger than the input area: make room for it.
        this.inputBytes = header(buffer, from) + 4;
        this.reserve(this.inputAt + this.inputBytes + OVERREAD);
        continue;
      }
      // mysql2 gave these as rows: anything the module does not take is the reference's.
      from += used < 0 ? this.referenceRow(-used - 1) : used;
    }
  }

  /**
   * Encode the packets in the input area's first `length` bytes. Returns the bytes used (an
   * incomplete packet may remain), or -(position + 1) of a packet that is not a row.
   */
  private encodeInput(length: number): number {
    if (this.parts) return this.encodeRouted(length);
    const { wasm } = this;
    let at = 0;
    for (;;) {
      const why = wasm.encode(
        this.inputAt + at,
        length - at,
        this.outputAt,
        OUTPUT_BYTES,
        this.codesAt,
        this.codes.length,
      );
      const consumed = this.result[0]!;
      const written = this.result[1]!;
      const rows = this.result[2]!;
      at += consumed;
      if (written > 0) {
        this.encoded += rows;
        this.flushTo(this.heap.subarray(this.outputAt, this.outputAt + written), rows);
      }
      if (why === DONE) return at;
      if (why === NOT_A_ROW) return -at - 1;
      if (why === OUTPUT_FULL && consumed > 0) continue;
      // A row for the reference (or one whose CSV would not fit the output area).
      at = this.referenceRow(at);
    }
  }

  /** encodeInput() for routed rows: into each partition's buffer in the module. */
  private encodeRouted(length: number): number {
    let at = 0;
    for (;;) {
      const why = this.wasm.encode_routed(
        this.inputAt + at,
        length - at,
        this.codesAt,
        this.codes.length,
        this.partsAt,
        this.tableAt,
        this.tableSize,
        this.nullPart,
      );
      at += this.result[0]!;
      this.encoded += this.result[2]!;
      const part = this.result[4]!;
      if (why === DONE) return at;
      if (why === NOT_A_ROW) return -at - 1;
      if (why === NOT_LISTED) throw new RoutingRefused("a row of a partition not listed");
      // A full buffer is written out; a row that does not fit an empty one, or that the module
      // hands back, goes to the reference after what its partition already has.
      if (this.flushPart(part) && why === PART_FULL) continue;
      if (why !== PART_FULL && why !== REFERENCE_ROW) throw new Error(`rows-to-csv: stop ${why}`);
      at = this.referenceRow(at);
    }
  }

  /** The reference encodes the row packet at input position `at`; returns the position after it. */
  private referenceRow(at: number): number {
    const start = this.inputAt + at;
    const end = start + 4 + header(this.heap, start);
    this.referencePayload(this.heapBuffer, start + 4, end);
    return end - this.inputAt;
  }

  /** A row payload for the reference: into flushTo, or routed by its first cell. */
  private referencePayload(buffer: Buffer, start: number, end: number): void {
    if (!this.parts) {
      this.reference.row(buffer, start, end);
      this.reference.flush();
      return;
    }
    let p = start;
    let length = buffer[p++]!;
    let part = this.nullPart;
    if (length !== 0xfb) {
      if (length === 0xfc) {
        length = buffer[p]! | (buffer[p + 1]! << 8);
        p += 2;
      } else if (length > 0xfb) throw new RoutingRefused("a partition value of 64 KiB or more");
      part = this.partByKey.get(buffer.toString("latin1", p, p + length)) ?? -1;
      p += length;
    }
    if (part < 0) throw new RoutingRefused("a row of a partition not listed");
    this.flushPart(part);
    this.route!.reference(part, buffer, p, end);
  }

  private reserve(bytes: number): void {
    const memory = this.wasm.memory;
    if (memory.buffer.byteLength >= bytes) return;
    memory.grow(Math.ceil((bytes - memory.buffer.byteLength) / PAGE));
    this.heap = new Uint8Array(memory.buffer);
    this.heapBuffer = Buffer.from(memory.buffer);
    this.result = new Uint32Array(memory.buffer, this.wasm.result.value as number, 5);
    // A view of memory that grew reads as empty: its length is the route's.
    if (this.parts) this.parts = new Uint32Array(memory.buffer, this.partsAt, this.route!.keys.length * 6);
  }
}
