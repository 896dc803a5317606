// Personal fields of a tracking event replaced by their pseudonyms (DESIGN §11). Only the values
// of the listed field paths change: every other byte of the event is copied as it came, so the
// event stays the JSON (or almost-JSON: Python writes NaN) the LMS wrote. The event is walked as
// bytes, like eventTime() does, rather than parsed: this runs for every event.
import type { Pseudonymizer } from "../privacy/pseudonym.ts";
import { equalsAt, stringEnd } from "./parse.ts";

const OPEN = 0x7b; // {
const CLOSE = 0x7d; // }
const OPEN_ARRAY = 0x5b;
const CLOSE_ARRAY = 0x5d;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: false, ignoreBOM: true });

/** One key of the field paths: its bytes, whether a path ends here, and the keys below it. */
interface PathNode {
  key: Uint8Array;
  leaf: boolean;
  children: PathNode[];
}

/** Pseudonyms are the same for the same value: usernames and IPs repeat from event to event. */
const CACHE_ENTRIES = 4096;

export class EventPseudonyms {
  private readonly root: PathNode = { key: new Uint8Array(), leaf: false, children: [] };
  private readonly cache = new Map<string, Uint8Array>();

  /** `fields`: dotted paths ("context.username") of string values to replace. */
  constructor(
    fields: readonly string[],
    private readonly pseudonymizer: Pseudonymizer,
  ) {
    for (const field of fields) {
      let node = this.root;
      for (const key of field.split(".")) {
        const bytes = encoder.encode(key);
        let child = node.children.find((c) => equalsAt(bytes, 0, bytes.length, c.key));
        if (!child) {
          child = { key: bytes, leaf: false, children: [] };
          node.children.push(child);
        }
        node = child;
      }
      node.leaf = true;
    }
  }

  /** The event with its personal values replaced; the same array when it holds none. */
  rewrite(event: Uint8Array): Uint8Array {
    const found: number[] = [];
    // The node of each open object whose keys may lead to a field path (null: none can).
    const nodes: (PathNode | null)[] = [];
    const isObject: boolean[] = [];
    let depth = -1;
    let keyNext = false;
    // The node a key just read leads to: it applies to the value that follows.
    let pending: PathNode | null = this.root;
    for (let i = 0; i < event.length; ) {
      const b = event[i]!;
      if (b === QUOTE) {
        const end = stringEnd(event, i);
        if (end < 0) break;
        if (keyNext) {
          keyNext = false;
          const node = depth >= 0 ? nodes[depth]! : null;
          pending = node ? childFor(node, event, i + 1, end) : null;
        } else {
          // A string value: replaced when its key ends a path and it is not empty.
          if (pending?.leaf && end > i + 1) found.push(i, end);
          pending = null;
        }
        i = end + 1;
        continue;
      }
      if (b === OPEN || b === OPEN_ARRAY) {
        depth++;
        const object = b === OPEN;
        isObject[depth] = object;
        nodes[depth] = object && pending && pending.children.length > 0 ? pending : null;
        keyNext = object;
        pending = null;
      } else if (b === CLOSE || b === CLOSE_ARRAY) {
        depth--;
        pending = null;
      } else if (b === COMMA) {
        keyNext = depth >= 0 && isObject[depth] === true;
        pending = null;
      }
      i++;
    }
    if (found.length === 0) return event;
    return this.replace(event, found);
  }

  /** The event with the strings at `found` ([open quote, close quote] pairs) replaced. */
  private replace(event: Uint8Array, found: number[]): Uint8Array {
    const pieces: Uint8Array[] = [];
    let length = 0;
    let from = 0;
    for (let k = 0; k < found.length; k += 2) {
      const start = found[k]! + 1;
      const end = found[k + 1]!;
      const kept = event.subarray(from, start);
      const pseudonym = this.pseudonymOf(event, start, end);
      pieces.push(kept, pseudonym);
      length += kept.length + pseudonym.length;
      from = end;
    }
    const rest = event.subarray(from);
    pieces.push(rest);
    length += rest.length;
    const out = new Uint8Array(length);
    let o = 0;
    for (const piece of pieces) {
      out.set(piece, o);
      o += piece.length;
    }
    return out;
  }

  /** The pseudonym of the JSON string's content [start, end): its decoded value's UTF-8 bytes. */
  private pseudonymOf(event: Uint8Array, start: number, end: number): Uint8Array {
    const raw = event.subarray(start, end);
    // One character per byte: two different byte strings (even invalid UTF-8) never share a key.
    const cacheKey = Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString("latin1");
    const cached = this.cache.get(cacheKey);
    if (cached) return cached;
    // Escapes (\u00e9, \") are decoded first: the value, not its spelling, is what is keyed.
    const value = raw.includes(BACKSLASH) ? decodedString(event, start, end) : raw;
    const pseudonym = encoder.encode(this.pseudonymizer.of(value));
    if (this.cache.size >= CACHE_ENTRIES) this.cache.clear();
    this.cache.set(cacheKey, pseudonym);
    return pseudonym;
  }
}

function decodedString(event: Uint8Array, start: number, end: number): string | Uint8Array {
  try {
    return JSON.parse(decoder.decode(event.subarray(start - 1, end + 1))) as string;
  } catch {
    return event.subarray(start, end);
  }
}

function childFor(node: PathNode, bytes: Uint8Array, start: number, end: number): PathNode | null {
  for (const child of node.children) if (equalsAt(bytes, start, end, child.key)) return child;
  return null;
}
