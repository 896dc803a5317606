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

const NEWLINE = new Uint8Array([0x0a]);

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
  /** the events, one per line, uncompressed */
  body: Uint8Array;
  /** the last event time seen up to `end`, carried to the next batch for events without one */
  carried: Date | null;
}

/** YYYY-MM-DD of a time, in UTC. */
export function dayOf(time: Date): string {
  return time.toISOString().slice(0, 10);
}

export class Batcher {
  private parts: Uint8Array[] = [];
  private bytes = 0;
  private events = 0;
  private skipped = 0;
  private firstEventOffset: number | null = null;
  private time: Date | null = null;
  private day: string | null = null;
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

  get eventCount(): number {
    return this.events;
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
      const otherDay = time !== null && dayOf(time) !== this.day;
      const tooBig = this.bytes + event.length + 1 > this.maxBytes;
      if (otherDay || tooBig) closed = this.close();
    }
    if (this.events === 0) {
      this.firstEventOffset = offset;
      // An event without a time goes to the day of the events before it (DESIGN is silent; the
      // clock is the last resort, for a file whose first events have no time).
      this.time = time ?? this.carried ?? new Date();
      this.day = dayOf(this.time);
    }
    if (time !== null) this.carried = time;
    this.openedAt ??= this.now();
    this.parts.push(event.slice(), NEWLINE);
    this.bytes += event.length + 1;
    this.events++;
    this.end = end;
    return closed;
  }

  /** Close what was gathered (possibly no event: then only its end is to be committed). */
  close(): ClosedBatch {
    const time = this.time ?? this.carried ?? new Date();
    const closed: ClosedBatch = {
      start: this.start,
      end: this.end,
      firstEventOffset: this.firstEventOffset,
      time,
      day: this.day ?? dayOf(time),
      events: this.events,
      skipped: this.skipped,
      body: Buffer.concat(this.parts, this.bytes),
      carried: this.carried,
    };
    this.parts = [];
    this.bytes = 0;
    this.events = 0;
    this.skipped = 0;
    this.firstEventOffset = null;
    this.time = null;
    this.day = null;
    this.openedAt = null;
    this.start = this.end;
    return closed;
  }
}
