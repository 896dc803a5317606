// `panorama log-ship`, the output side (DESIGN §8, §9; Fluent Bit's out_s3): the lines a
// FileFollower (follower.ts) reads are parsed (the event found; Docker and CRI parts joined),
// given pseudonyms, gathered into batches per file (size, day, age), uploaded under keys derived
// from the file and offset (retried), and only then committed back to the follower, one batch at
// a time per file, so a file's checkpoint never passes a batch that is not stored.
import type { Config } from "../config/types.ts";
import { JobError, messageOf, report } from "../errors.ts";
import { log, SaidOnce } from "../log.ts";
import { pseudonymizedLogFields } from "../privacy/fields.ts";
import { Pseudonymizer } from "../privacy/pseudonym.ts";
import { Batcher, type ClosedBatch } from "./batch.ts";
import { CriJoiner, type JoinedGroup } from "./cri.ts";
import { EventPseudonyms } from "./event-pseudonyms.ts";
import {
  FileFollower,
  type FollowedFile,
  type FollowOptions,
  type LineReceiver,
  MAX_LINE_BYTES,
} from "./follower.ts";
import { criEvent, dockerEvent, type ParsedLine, parseLine } from "./parse.ts";
import type { Line } from "./tail.ts";
import { batchKey, createLogSink, type LogSink, partitionOf, type TrackingLogPartition } from "./upload.ts";

/** What `--dry-run` shows for the id of a file not shipped before. */
export const NEW_FILE_ID = "<new-file-id>";

/** How many uncompressed bytes shipped between two requests for a garbage collection. */
const GC_EVERY_BYTES = 2 * 1024 * 1024;

export interface ShipOptions extends FollowOptions {
  /** keep tailing until `signal` aborts (a service); else read every file to its end and return */
  follow?: boolean;
  /** read and parse everything, print the keys that would be uploaded, write nothing */
  dryRun?: boolean;
  /** stops --follow: what is buffered is uploaded and checkpointed, then shipLogs returns */
  signal?: AbortSignal;
  /** where objects go; default: the configured target */
  sink?: LogSink;
  /** --follow: how often files are looked at when fs.watch says nothing */
  pollMs?: number;
  /** --follow: first delay between attempts at an upload that failed (doubles up to a minute) */
  retryMs?: number;
  /** each day partition when this run first uploads into it (to register it in the catalog) */
  onPartition?: (partition: TrackingLogPartition) => void | Promise<void>;
  /** --follow: after each look at the files (the service's figures, for the metrics textfile) */
  onPass?: () => void;
  /** --dry-run output; default stdout */
  print?: (line: string) => void;
}

export interface ShipResult {
  /** false when an upload (or a file) failed: what was not uploaded stays uncommitted */
  ok: boolean;
  objects: number;
  events: number;
  /** lines without an event */
  skipped: number;
  /** uncompressed bytes of the events uploaded */
  bytes: number;
  /** the day partitions this run uploaded into, in day order */
  partitions: TrackingLogPartition[];
}

/** What is read from a file and not committed yet: its batch and the messages being joined. */
interface Shipping {
  file: FollowedFile;
  batcher: Batcher;
  /** a Docker message split over several lines, not complete yet */
  docker: { start: number; parts: string[]; length: number } | null;
  /** the rest of an over-long Docker message is being skipped */
  dockerSkipping: boolean;
  /** CRI records joined into messages (made at the first CRI record) */
  cri: CriJoiner | null;
  /** lines of the batch being uploaded (not committed yet) */
  inFlight: number;
  /**
   * The rotated file whose open CRI messages this one's first records continue: committed to
   * `end` with the batch that holds the group they complete (`groupEnd`, once complete).
   */
  continues: { earlier: Shipping; end: number; groupEnd: number | null } | null;
}

export class LogShipper implements LineReceiver {
  private readonly follower: FileFollower;
  /** per followed file; a file whose content the follower replaced starts anew */
  private readonly shipping = new WeakMap<FollowedFile, Shipping>();
  private readonly days = new Set<string>();
  private readonly said = new SaidOnce();
  private readonly result: ShipResult = {
    ok: true,
    objects: 0,
    events: 0,
    skipped: 0,
    bytes: 0,
    partitions: [],
  };
  /** what fail() said last */
  private lastFailure: string | null = null;
  /** bytes shipped since the last collectGarbage() */
  private sinceCollection = 0;
  /** personal fields replaced before an event enters a batch (DESIGN §11); null when off */
  private readonly pseudonyms: EventPseudonyms | null;

  constructor(
    private readonly config: Config,
    /** null for --dry-run, which uploads nothing */
    private readonly sink: LogSink | null,
    private readonly options: ShipOptions = {},
  ) {
    this.pseudonyms = config.privacy.key
      ? new EventPseudonyms(pseudonymizedLogFields(config), new Pseudonymizer(config.privacy.key))
      : null;
    this.follower = new FileFollower(config, this, options);
    options.signal?.addEventListener("abort", () => this.stop(), { once: true });
    if (options.signal?.aborted) this.follower.stop();
  }

  private get dryRun(): boolean {
    return this.options.dryRun === true;
  }

  /** --follow: finish what is buffered, then return. */
  stop(): void {
    this.follower.stop();
  }

  /** Read every file to its end, upload everything complete, checkpoint. */
  async once(): Promise<ShipResult> {
    try {
      await this.follower.pass(true);
    } catch (error) {
      this.fail(error);
    } finally {
      this.closeFollower();
    }
    return this.finish();
  }

  /** Keep tailing until stop(); then upload what is buffered and checkpoint. */
  async follow(): Promise<ShipResult> {
    const poll = this.options.pollMs ?? 1000;
    try {
      while (!this.follower.stopped) {
        await this.follower.pass(false);
        this.options.onPass?.();
        await this.follower.waitForChange(poll);
      }
      for (const file of this.follower.followed) await this.flush(file);
    } catch (error) {
      this.fail(error);
    } finally {
      // The time of the last pass, for the next start to tell what came while it was down.
      this.closeFollower();
    }
    return this.finish();
  }

  private fail(error: unknown): void {
    this.result.ok = false;
    // The last save failing as the run's own failure did (state_dir full) is not said twice.
    const message = messageOf(error);
    if (message === this.lastFailure) return;
    this.lastFailure = message;
    report(error);
  }

  /** Closes the files and saves the checkpoints: a save that fails fails the run, said. */
  private closeFollower(): void {
    try {
      this.follower.close();
    } catch (error) {
      this.fail(error);
    }
  }

  private finish(): ShipResult {
    if (this.follower.failed) this.result.ok = false;
    this.result.partitions = [...this.days].sort().map((day) => partitionOf(this.config, day));
    const { objects, events, skipped, bytes } = this.result;
    const verb = this.dryRun ? "would upload" : "uploaded";
    log.info(`log-ship: ${verb} ${events} events in ${objects} objects`, { objects, events, skipped, bytes });
    return this.result;
  }

  /** The state of `file`, made at its first line (from its checkpoint). */
  private of(file: FollowedFile): Shipping {
    let t = this.shipping.get(file);
    if (!t) {
      const { offset, last_event_time } = file.cp;
      const carried = last_event_time ? new Date(last_event_time) : null;
      t = {
        file,
        batcher: new Batcher(this.config.logs.max_file_size, offset, carried),
        docker: null,
        dockerSkipping: false,
        cri: null,
        inFlight: 0,
        continues: null,
      };
      this.shipping.set(file, t);
    }
    return t;
  }

  line(file: FollowedFile, line: Line): Promise<void> | undefined {
    const t = this.of(file);
    // What the rotated file holds before its open line is stored first: its checkpoint then
    // moves past that line in one step, when the joined line is stored from this file.
    const earlier = line.start === 0 ? this.endedOpen(t) : undefined;
    if (earlier?.batcher.pending) return this.flush(earlier.file).then(() => this.line(file, line));
    const closed = this.add(t, line);
    return closed ? this.ship(t, closed) : undefined;
  }

  /** Uploads what is due: everything when `final`, else a batch `upload_timeout` old. */
  async caughtUp(file: FollowedFile, final: boolean): Promise<void> {
    const t = this.of(file);
    const due = t.batcher.pending && t.batcher.age() >= this.config.logs.upload_timeout * 1000;
    if (final || due) await this.flush(file);
  }

  pending(file: FollowedFile): boolean {
    return this.shipping.get(file)?.batcher.pending ?? false;
  }

  unshippedLines(file: FollowedFile): number {
    const t = this.shipping.get(file);
    if (!t) return 0;
    return t.batcher.lines + t.inFlight + (t.docker?.parts.length ?? 0) + (t.cri?.records ?? 0);
  }

  /** A line into its file's batch; returns the batch it closed, to ship before the next line. */
  private add(t: Shipping, line: Line): ClosedBatch | null {
    if (line.bytes === null) {
      this.said.warn(
        `long:${t.file.cp.path}`,
        `${t.file.cp.path}: a line longer than ${MAX_LINE_BYTES} bytes was skipped`,
      );
      if (t.cri?.pending) return this.joined(t, t.cri.other(line.start, line.end, null));
      return this.record(t, line.start, line.end, null);
    }
    const parsed = parseLine(line.bytes, this.config.logs.format);
    if (parsed.kind === "docker") return this.dockerPart(t, line, parsed);
    if (t.docker) {
      // A Docker message cut short by a line that is not one: what there was of it is skipped.
      const start = t.docker.start;
      t.docker = null;
      this.record(t, start, line.start, null);
    }
    t.dockerSkipping = false;
    if (parsed.kind === "cri") return this.criPart(t, line, parsed);
    const event = parsed.kind === "event" ? parsed.event : null;
    // While a CRI message is open, other lines wait with it: they are committed together.
    if (t.cri?.pending) return this.joined(t, t.cri.other(line.start, line.end, event));
    return this.record(t, line.start, line.end, event);
  }

  /** CRI splits long lines into `P` records: join them (cri.ts) before looking for the event. */
  private criPart(t: Shipping, line: Line, part: Extract<ParsedLine, { kind: "cri" }>): ClosedBatch | null {
    t.cri ??= new CriJoiner(MAX_LINE_BYTES, () =>
      this.said.warn(
        `long:${t.file.cp.path}`,
        `${t.file.cp.path}: a message longer than ${MAX_LINE_BYTES} bytes was skipped`,
      ),
    );
    if (line.start === 0 && !t.cri.pending) this.continueRotated(t);
    return this.joined(t, t.cri.record(line.start, line.end, part.stream, part.partial, part.text));
  }

  /**
   * A file's first CRI record: when a rotated file of the same log ended with a message open
   * (containerd writes the rest of a line cut by a kubelet rotation into the new file), this
   * file's records continue it. Both files' checkpoints move in the one save that commits the
   * joined message, so a crash in between ships it again under the same key, not twice.
   */
  private continueRotated(t: Shipping): void {
    const earlier = this.endedOpen(t);
    if (!earlier?.cri) return;
    t.cri!.adopt(earlier.cri, 0);
    t.continues = { earlier, end: earlier.file.splitter.position, groupEnd: null };
  }

  /** The rotated file of `t`'s log that ended with a CRI message open, read to its end. */
  private endedOpen(t: Shipping): Shipping | undefined {
    return this.follower.followed
      .map((file) => this.shipping.get(file))
      .findLast((e) => e?.cri?.pending && this.follower.precedes(e.file, t.file));
  }

  /** Joined messages into the batch: one alone as a line, several as one range to commit. */
  private joined(t: Shipping, group: JoinedGroup | null): ClosedBatch | null {
    if (group === null) return null;
    if (t.continues && t.continues.groupEnd === null) t.continues.groupEnd = group.end;
    const items = group.messages.map((m) => {
      const event = m.event ?? (m.text ? criEvent(m.text) : null);
      return { offset: m.start, event };
    });
    if (items.length === 1) return this.record(t, items[0]!.offset, group.end, items[0]!.event);
    for (const item of items) if (item.event === null) this.result.skipped++;
    return t.batcher.addGroup(
      items.map((item) => ({ offset: item.offset, event: item.event && this.shippable(item.event) })),
      group.end,
    );
  }

  /** Docker splits long messages over several wrappers: join them before looking for the event. */
  private dockerPart(
    t: Shipping,
    line: Line,
    part: Extract<ParsedLine, { kind: "docker" }>,
  ): ClosedBatch | null {
    if (t.dockerSkipping) {
      t.dockerSkipping = part.partial;
      return this.record(t, line.start, line.end, null);
    }
    const message = t.docker ?? { start: line.start, parts: [], length: 0 };
    message.parts.push(part.log);
    message.length += part.log.length;
    if (!part.partial) {
      t.docker = null;
      return this.record(t, message.start, line.end, dockerEvent(message.parts.join("")));
    }
    if (message.length <= MAX_LINE_BYTES) {
      t.docker = message;
      return null;
    }
    this.said.warn(
      `long:${t.file.cp.path}`,
      `${t.file.cp.path}: a message longer than ${MAX_LINE_BYTES} bytes was skipped`,
    );
    t.docker = null;
    t.dockerSkipping = true;
    return this.record(t, message.start, line.end, null);
  }

  private record(t: Shipping, start: number, end: number, event: Uint8Array | null): ClosedBatch | null {
    if (event === null) {
      this.result.skipped++;
      t.batcher.skip(end);
      return null;
    }
    return t.batcher.add(this.shippable(event), start, end);
  }

  /** The event as it leaves the host: with pseudonyms in place of personal values (DESIGN §11). */
  private shippable(event: Uint8Array): Uint8Array {
    return this.pseudonyms ? this.pseudonyms.rewrite(event) : event;
  }

  async flush(file: FollowedFile): Promise<void> {
    const t = this.of(file);
    if (t.batcher.pending) await this.ship(t, t.batcher.close());
  }

  /** Upload a closed batch, then commit its end. A batch without events only commits. */
  private async ship(t: Shipping, batch: ClosedBatch): Promise<void> {
    t.inFlight = batch.events + batch.skipped;
    if (batch.events === 0 || batch.firstEventOffset === null) {
      this.commit(t, batch, false);
      return;
    }
    if (this.dryRun) {
      // A new file's id is random, drawn when it is first shipped: a dry run shows where it goes.
      const fileId = this.follower.savedFileId(t.file) ?? NEW_FILE_ID;
      const key = batchKey(this.config, fileId, batch.firstEventOffset, batch.time);
      (this.options.print ?? ((s) => process.stdout.write(s)))(
        `upload\t${key}\t${batch.events} events\t${batch.body.length} bytes\n`,
      );
    } else {
      const key = batchKey(this.config, this.follower.fileId(t.file), batch.firstEventOffset, batch.time);
      // Bun's own gzip, not node:zlib's: same bytes, without loading that module (memory).
      await this.put(key, Bun.gzipSync(batch.body, { level: 6 }));
      log.debug(`uploaded ${key}`, { key, events: batch.events, bytes: batch.body.length });
    }
    this.result.objects++;
    this.collectGarbage(batch.body.length);
    this.result.events += batch.events;
    this.result.bytes += batch.body.length;
    this.commit(t, batch, true);
    if (!this.days.has(batch.day)) {
      this.days.add(batch.day);
      if (!this.dryRun) await this.options.onPartition?.(partitionOf(this.config, batch.day));
    }
  }

  /**
   * Every few MiB shipped, ask for a collection (asynchronous) and for the allocator to give
   * back freed pages. Left to itself, the collector paces itself on the live heap (large once
   * the database drivers are loaded) and lets the per-line garbage and the gzip buffers pile up,
   * the more so on a busy host: measured on a 1 GB backlog, this keeps the peak some 50 MB lower
   * for no measurable CPU.
   */
  private collectGarbage(bytes: number): void {
    this.sinceCollection += bytes;
    if (this.sinceCollection < GC_EVERY_BYTES) return;
    this.sinceCollection = 0;
    Bun.gc(false);
  }

  private commit(t: Shipping, batch: ClosedBatch, uploaded: boolean): void {
    t.inFlight = 0;
    const continued = t.continues;
    if (continued?.groupEnd != null && batch.end >= continued.groupEnd) {
      // Saved with this file's commit: the rotated file's open message is in this batch.
      const { file } = continued.earlier;
      const carried = file.cp.last_event_time ? new Date(file.cp.last_event_time) : null;
      this.follower.commit(file, continued.end, carried, false);
      t.continues = null;
    }
    this.follower.commit(t.file, batch.end, batch.carried, uploaded);
  }

  /**
   * --once: a failure (after the client's own retries) ends the run. --follow: try again with
   * backoff until it works or the shipper stops; nothing is committed meanwhile.
   */
  private async put(key: string, body: Uint8Array): Promise<void> {
    const sink = this.sink;
    if (!sink) throw new Error("no target to upload to");
    const first = this.options.retryMs ?? 1000;
    for (let attempt = 0; ; attempt++) {
      try {
        await sink.put(key, body);
        return;
      } catch (error) {
        if (!this.options.follow || this.follower.stopped) {
          throw new JobError(
            `upload of ${key} to ${sink.description} failed: ${messageOf(error)}`,
            "nothing after the last uploaded batch was committed: the next run sends it again",
          );
        }
        const delay = Math.min(60_000, first * 2 ** Math.min(attempt, 10)) * (0.5 + Math.random() / 2);
        log.warn(
          `upload of ${key} failed: ${messageOf(error)}; trying again in ${Math.round(delay / 1000)} s`,
        );
        await this.follower.sleep(delay, false);
      }
    }
  }
}

/**
 * Ship the configured tracking logs once (cron) or until `options.signal` aborts (service).
 * The caller holds the log-ship lock.
 */
export async function shipLogs(config: Config, options: ShipOptions = {}): Promise<ShipResult> {
  const sink = options.sink ?? (options.dryRun ? null : createLogSink(config));
  const shipper = new LogShipper(config, sink, options);
  return options.follow ? shipper.follow() : shipper.once();
}
