// Joining CRI records (DESIGN §8): a `P` record is continued by the next record of the same
// stream, up to an `F`. stdout and stderr interleave, so while a message of one stream is open the
// other stream's lines go on: a checkpoint is safe only where no message is open (a restart in
// the middle of one would read its end without its start). The joiner keeps every message that
// began since the last such quiet point, in the order they began, and hands them over together
// once the last one is complete: the offsets they span are then committed as one range.
import type { CriStream } from "./parse.ts";

/** A complete message: where it began in the file and its joined text (null: nothing to find). */
export interface JoinedMessage {
  start: number;
  /** the joined text, or null when there is no event in it (not CRI, or skipped as too long) */
  text: Uint8Array | null;
  /** the event, when the line that made this message already held one (not CRI) */
  event?: Uint8Array;
}

/** Messages that began since the last quiet point, complete, with the offset where they end. */
export interface JoinedGroup {
  messages: JoinedMessage[];
  end: number;
}

interface OpenMessage extends JoinedMessage {
  stream: CriStream | null;
  parts: Uint8Array[];
  length: number;
  done: boolean;
  /** grew past the size limit: its further records are read and dropped */
  tooLong: boolean;
}

export class CriJoiner {
  private messages: OpenMessage[] = [];
  private readonly open = new Map<CriStream, OpenMessage>();

  constructor(
    private readonly maxBytes: number,
    /** told once per message dropped for its size */
    private readonly onTooLong: () => void,
  ) {}

  /** Records read and not handed over yet (for the count of lines not shipped). */
  records = 0;

  /** Whether a message is open: the file's bytes since its start are not to be committed. */
  get pending(): boolean {
    return this.messages.length > 0;
  }

  /** A CRI record spanning [start, end); returns the group it completed, if it did. */
  record(
    start: number,
    end: number,
    stream: CriStream,
    partial: boolean,
    text: Uint8Array,
  ): JoinedGroup | null {
    this.records++;
    let message = this.open.get(stream);
    if (!message) {
      message = { start, text: null, stream, parts: [], length: 0, done: false, tooLong: false };
      this.messages.push(message);
      this.open.set(stream, message);
    }
    if (!message.tooLong) {
      message.length += text.length;
      if (message.length > this.maxBytes) {
        message.tooLong = true;
        message.parts = [];
        this.onTooLong();
      } else {
        // A copy when it is kept past this call: the text is a view of a read buffer that is reused.
        message.parts.push(partial || this.messages.length > 1 ? text.slice() : text);
      }
    }
    if (!partial) {
      message.done = true;
      this.open.delete(stream);
      if (!message.tooLong) message.text = join(message.parts, message.length);
      message.parts = [];
    }
    return this.groupAt(end);
  }

  /**
   * Take over the messages `from` holds open at the end of its file (the runtime went on writing
   * them into the next file, as after a kubelet rotation), as if they had begun at `start` of
   * this one: the next records of their streams here continue them.
   */
  adopt(from: CriJoiner, start: number): void {
    for (const message of from.messages) {
      message.start = start;
      this.messages.push(message);
    }
    for (const [stream, message] of from.open) this.open.set(stream, message);
    this.records += from.records;
    from.messages = [];
    from.open.clear();
    from.records = 0;
  }

  /**
   * A line that is not a CRI record, spanning [start, end), with the event it holds (or null).
   * Alone it is a group of its own; while a message is open it waits with it.
   */
  other(start: number, end: number, event: Uint8Array | null): JoinedGroup | null {
    this.records++;
    const message: OpenMessage = {
      start,
      text: null,
      stream: null,
      parts: [],
      length: 0,
      done: true,
      tooLong: false,
    };
    // Kept past this call: copied out of the read buffer.
    if (event) message.event = this.messages.length > 0 ? event.slice() : event;
    this.messages.push(message);
    return this.groupAt(end);
  }

  private groupAt(end: number): JoinedGroup | null {
    if (this.open.size > 0) return null;
    const messages: JoinedMessage[] = this.messages.map(({ start, text, event }) =>
      event ? { start, text, event } : { start, text },
    );
    this.messages = [];
    this.records = 0;
    return { messages, end };
  }
}

function join(parts: Uint8Array[], length: number): Uint8Array {
  if (parts.length === 1) return parts[0]!;
  const joined = new Uint8Array(length);
  let at = 0;
  for (const part of parts) {
    joined.set(part, at);
    at += part.length;
  }
  return joined;
}
