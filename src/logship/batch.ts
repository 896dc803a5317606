// Events of one file gathered into the objects to upload (DESIGN §8): a batch is closed before
// it would pass max_file_size uncompressed bytes or before an event of another UTC day (event
// time) enters it. A batch covers a contiguous byte range of its file — lines without an event
// included — so that committing its end offset commits exactly what it holds.
//
// Its key depends only on where its first event starts and on that event's time, and where a
// batch closes depends only on the bytes (size, day) except for the last one (end of file, age):
// a batch retried after a crash starts at the same line, gets the same key and holds at least
// what the lost attempt held, so the retry overwrites the object instead of adding a twin.
import { eventTime } from "./parse.ts";

/** First size of a batch's buffer; it doubles as events come, up to the batch's size. */
const INITIAL_BUFFER = 64 * 1024;

export interface ClosedBatch {
  /** committed offset this batch starts at */
  start: number;
  /** offset just after its last line: what is committed once it is uploaded */
  end: number;
  /** offset of the line holding its first event (null when it holds none): part of the key */
  firstEventOffset: number | null;
  /** the key's time: the first event's, or the time carried from earlier events */
  time: Date;
  /** YYYY-MM-DD (UTC) of the events in it */
  day: string;
  events: number;
  /** lines (or Docker messages) without an event */
  skipped: number;
  /**
   * the events, one per line, uncompressed: a view of the batcher's buffer, valid until the
   * batch after this one is closed (copy it to keep it longer)
   */
  body: Uint8Array<ArrayBuffer>;
  /** the last event time seen up to `end`, carried to the next batch for events without one */
  carried: Date | null;
}

const DAY_MS = 86_400_000;

/** YYYY-MM-DD of a time, in UTC. */
export function dayOf(time: Date): string {
  return time.toISOString().slice(0, 10);
}

export class Batcher {
  /**
   * The events, copied in as they come (the read buffer they are cut from is reused). Two
   * buffers take turns: a closed batch's body is a view of one while the next batch fills the
   * other. Neither a copy per event nor one per batch: the garbage collector is driven by the
   * small objects of its heap and lets big backing stores pile up between its runs.
   */
  private buffer: Uint8Array<ArrayBuffer> = new Uint8Array(INITIAL_BUFFER);
  private spare: Uint8Array<ArrayBuffer> = new Uint8Array(INITIAL_BUFFER);
  private bytes = 0;
  private events = 0;
  private skipped = 0;
  private firstEventOffset: number | null = null;
  private time: Date | null = null;
  /** the day as a number (days since 1970), compared for every event without making a string */
  private dayNumber = Number.NaN;
  /** monotonic ms when the first line entered this batch, for upload_timeout */
  private openedAt: number | null = null;
  start: number;
  end: number;

  constructor(
    private readonly maxBytes: number,
    offset: number,
    /** last event time before `offset` (from the checkpoint), for events without a time */
    private carried: Date | null,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.start = offset;
    this.end = offset;
  }

  /** Whether lines entered since the last close (events or not): something to commit. */
  get pending(): boolean {
    return this.end > this.start;
  }

  /** Lines entered since the last close, events or not. */
  get lines(): number {
    return this.events + this.skipped;
  }

  /** Milliseconds since the first line entered, 0 when empty. */
  age(): number {
    return this.openedAt === null ? 0 : this.now() - this.openedAt;
  }

  /** A line (or Docker message) without an event, spanning [offset, end). */
  skip(end: number): void {
    this.openedAt ??= this.now();
    this.skipped++;
    this.end = end;
  }

  /**
   * An event whose line spans [offset, end). Returns the batch closed to make room for it (size
   * or day), or null.
   */
  add(event: Uint8Array, offset: number, end: number): ClosedBatch | null {
    const time = eventTime(event);
    let closed: ClosedBatch | null = null;
    if (this.events > 0) {
      const otherDay = time !== null && Math.floor(time.getTime() / DAY_MS) !== this.dayNumber;
      const tooBig = this.bytes + event.length + 1 > this.maxBytes;
      if (otherDay || tooBig) closed = this.close();
    }
    if (this.events === 0) {
      this.firstEventOffset = offset;
      // An event without a time goes to the day of the events before it (DESIGN is silent; the
      // clock is the last resort, for a file whose first events have no time).
      this.time = time ?? this.carried ?? new Date();
      this.dayNumber = Math.floor(this.time.getTime() / DAY_MS);
    }
    if (time !== null) this.carried = time;
    this.openedAt ??= this.now();
    this.append(event);
    this.events++;
    this.end = end;
    return closed;
  }

  /**
   * Lines that must be committed together, spanning [their first offset, end): CRI messages of
   * two streams interleaved (a checkpoint between them would split a joined line). The batch is
   * closed before them when they do not fit or begin another day, never among them: a group that
   * crosses midnight stays in the batch of its first event's day.
   */
  addGroup(items: { event: Uint8Array | null; offset: number }[], end: number): ClosedBatch | null {
    let closed: ClosedBatch | null = null;
    const first = items.find((item) => item.event !== null);
    if (first && this.events > 0) {
      const time = eventTime(first.event!);
      const otherDay = time !== null && Math.floor(time.getTime() / DAY_MS) !== this.dayNumber;
      let size = this.bytes;
      for (const item of items) if (item.event) size += item.event.length + 1;
      if (otherDay || size > this.maxBytes) closed = this.close();
    }
    for (const item of items) {
      if (item.event === null) {
        this.skip(end);
        continue;
      }
      const time = eventTime(item.event);
      if (this.events === 0) {
        this.firstEventOffset = item.offset;
        this.time = time ?? this.carried ?? new Date();
        this.dayNumber = Math.floor(this.time.getTime() / DAY_MS);
      }
      if (time !== null) this.carried = time;
      this.openedAt ??= this.now();
      this.append(item.event);
      this.events++;
    }
    this.end = end;
    return closed;
  }

  private append(event: Uint8Array): void {
    const needed = this.bytes + event.length + 1;
    if (needed > this.buffer.length) {
      const grown = new Uint8Array(Math.max(needed, Math.min(this.buffer.length * 2, this.maxBytes)));
      grown.set(this.buffer.subarray(0, this.bytes));
      this.buffer = grown;
    }
    this.buffer.set(event, this.bytes);
    this.buffer[this.bytes + event.length] = 0x0a;
    this.bytes = needed;
  }

  /** Close what was gathered (possibly no event: then only its end is to be committed). */
  close(): ClosedBatch {
    const time = this.time ?? this.carried ?? new Date();
    const closed: ClosedBatch = {
      start: this.start,
      end: this.end,
      firstEventOffset: this.firstEventOffset,
      time,
      day: dayOf(time),
      events: this.events,
      skipped: this.skipped,
      body: this.buffer.subarray(0, this.bytes),
      carried: this.carried,
    };
    this.bytes = 0;
    // An event bigger than a batch made this buffer grow past the usual size: not kept.
    const used =
      this.buffer.length > Math.max(this.maxBytes, INITIAL_BUFFER)
        ? new Uint8Array(INITIAL_BUFFER)
        : this.buffer;
    this.buffer = this.spare;
    this.spare = used;
    this.events = 0;
    this.skipped = 0;
    this.firstEventOffset = null;
    this.time = null;
    this.dayNumber = Number.NaN;
    this.openedAt = null;
    this.start = this.end;
    return closed;
  }
}
