// The tail input (DESIGN §8; Fluent Bit's in_tail): which files to read (logs.paths, the
// rotated files that came while log-ship was down), where each one is now (renamed, copied by
// copytruncate, compressed, truncated, its inode reused, removed), and its offsets database
// (checkpoint.ts: identity, committed offset, losses). It reads each file from its read position
// and hands out its complete lines, with their offsets, to a LineReceiver (the shipper, ship.ts);
// an offset is committed only when the receiver says everything before it is stored.
import {
  closeSync,
  type FSWatcher,
  fstatSync,
  lstatSync,
  openSync,
  readlinkSync,
  readSync,
  realpathSync,
  type Stats,
  watch as watchDir,
} from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import type { Config } from "../config/types.ts";
import { JobError, messageOf, report } from "../errors.ts";
import { log, SaidOnce } from "../log.ts";
import {
  addedLoss,
  type FileCheckpoint,
  findByInode,
  type LogLoss,
  readCheckpointState,
  writeCheckpointState,
} from "./checkpoint.ts";
import { contentChunks, sameUpToShorter } from "./content.ts";
import { type GzipMeasure, gunzipChunks, gzipKind, gzipPrefix, hasGzipName, measureGzip } from "./gzip.ts";
import {
  checkFingerprint,
  type FileInfo,
  FilePrefix,
  fstatFile,
  type Line,
  LineSplitter,
  namesOf,
  oldestFirst,
  readAt,
  readPrefix,
  resolveLogPatterns,
  rotationCandidates,
  sameFile,
  sha256Hex,
  statFile,
  TailWindow,
  tailLength,
  whyNoMatch,
  whyNotAFile,
} from "./tail.ts";

/** checkedSize of a file this run has not opened yet. */
const NOT_LOOKED_AT = -2;
const CHUNK_BYTES = 1024 * 1024;
/** Longer lines (or Docker messages) are skipped rather than held in memory. */
export const MAX_LINE_BYTES = 16 * 1024 * 1024;
/** --follow: at most this often a pass, however busy the writer (fs.watch fires on each write). */
const MIN_PASS_GAP_MS = 100;
/**
 * The time a pass starts is recorded this much earlier: file times come from the kernel's coarse
 * clock, which may lag the one Date.now() reads, and a file written as the pass starts must count
 * as written after it.
 */
const CLOCK_SLACK_MS = 2000;
/** A `.gz` file left cut short longer than this is not being written any more: said as a warning. */
const STALE_GZIP_MS = 60_000;
const UNREADABLE_HINT =
  "check logs.paths in the configuration, and that the user log-ship runs as (cron's, or the service's) can read the file and its directories";

export interface FollowOptions {
  /** keep tailing (a service): a file that failed is read again; else read every file to its end */
  follow?: boolean;
  /** write no checkpoint */
  dryRun?: boolean;
  /**
   * Also read the rotated files (plain or `.gz`) that match no checkpoint and are older than the
   * last run (or there was none): another shipper's history, left alone by default.
   */
  backfill?: boolean;
}

/** A file being read: its checkpoint (committed state) and how far it was read past it. */
export interface FollowedFile {
  cp: FileCheckpoint;
  fd: number | null;
  splitter: LineSplitter;
  /** size when the content was last checked (the fingerprint is checked again when it changes) */
  checkedSize: number;
  /** its name is gone: read what the open descriptor still holds, upload, then forget it */
  gone: boolean;
  /** its inode holds another file now (its checkpoint's dev and ino name no file of it) */
  inodeTaken: boolean;
  /** the bytes read last: the tail of a commit, and what the file must still hold */
  window: TailWindow;
}

/**
 * Where the lines go (the shipper): each complete line of a file with its offsets, and when the
 * follower needs what was read from a file stored (before it drops or replaces its content).
 */
export interface LineReceiver {
  /** A complete line of `file`; a promise when the next one must wait for it (an upload). */
  line(file: FollowedFile, line: Line): Promise<void> | undefined;
  /** `file` was read as far as it goes for now (`final`: to be stored whole, it ends here). */
  caughtUp(file: FollowedFile, final: boolean): Promise<void>;
  /** Store everything complete read from `file` and commit it. */
  flush(file: FollowedFile): Promise<void>;
  /** Whether lines read from `file` wait to be stored. */
  pending(file: FollowedFile): boolean;
  /** Lines read from `file` and not committed (batched, being stored, being joined). */
  unshippedLines(file: FollowedFile): number;
}

/** A file beside a tracked one that holds its bytes: a copytruncate copy, or compressed. */
interface Copy {
  info: FileInfo;
  fd: number;
  gzip: FileCheckpoint["gzip"];
}

/** A file not tracked, opened to tell whether it holds a tracked file's content. */
interface Candidate {
  info: FileInfo;
  fd: number;
  gzip: boolean;
  /** its first bytes, uncompressed */
  prefix: FilePrefix;
}

/** A log's live path, where losses are counted: the first name of its files. */
function logOf(cp: FileCheckpoint): string {
  return join(dirname(cp.path), cp.base);
}

/** Whether a checkpointed file is known by a rotated name (not its first one). */
function isRotated(cp: FileCheckpoint): boolean {
  return cp.path !== logOf(cp);
}

/**
 * A new file id: its identity and a random nonce. Its device, inode and first bytes alone may be
 * another file's later: compressing a rotation frees an inode that the next new file is given,
 * and tracking events often start with the same kilobyte; the same id would overwrite its objects.
 */
function fileIdOf(cp: FileCheckpoint): string {
  const replaced = cp.replaced_id ? `:${cp.replaced_id}` : "";
  const identity = `${cp.dev}:${cp.ino}:${cp.fingerprint}:${cp.fingerprint_length}${replaced}`;
  return sha256Hex(`${identity}:${crypto.randomUUID()}`).slice(0, 12);
}

/** The bytes of the open file just before `offset`, as many as a tail holds. */
function plainBefore(fd: number, offset: number): Uint8Array {
  const length = tailLength(offset);
  return readAt(fd, offset - length, length);
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.length).equals(b);
}

/**
 * The open file, or why it could not be opened (`vanished`: no file has that name any more,
 * renamed or removed since it was listed: a rotation under way, not a file that cannot be read).
 */
function openOrWhy(path: string): number | { why: string; vanished: boolean } {
  let fd: number;
  try {
    fd = openSync(path, "r");
  } catch (error) {
    return { why: messageOf(error), vanished: (error as NodeJS.ErrnoException).code === "ENOENT" };
  }
  const why = plantedLink(path, fstatSync(fd).uid);
  if (why === null) return fd;
  closeSync(fd);
  return { why, vanished: false };
}

/**
 * Why a symbolic link on the way from `path` to the opened file (owned by `fileUid`) is not
 * followed: one whose owner is neither root (the kubelet's /var/log/containers links), this
 * process's user, nor the file's owner. The LMS's user, who writes the log directory, could
 * otherwise plant tracking.log -> a file only root reads, and a run as root would ship it.
 */
function plantedLink(path: string, fileUid: number): string | null {
  const self = process.geteuid?.();
  let current = path;
  for (let links = 0; links < MAX_LINKS; links++) {
    let link: Stats;
    let target: string;
    try {
      link = lstatSync(current);
      if (!link.isSymbolicLink()) return null;
      target = readlinkSync(current);
    } catch {
      return null;
    }
    if (link.uid !== 0 && link.uid !== self && link.uid !== fileUid) {
      return `the symbolic link ${current} (of uid ${link.uid}) names a file of uid ${fileUid}: not followed, as another user may have planted it (make the link as root or as the file's owner)`;
    }
    current = resolve(dirname(current), target);
  }
  return null;
}

function realPath(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    return path;
  }
}

/** How many symbolic links livePath() follows, as the kernel does (ELOOP beyond). */
const MAX_LINKS = 40;

/**
 * Where the file `path` names lives: its symbolic links followed, even to a name that is
 * missing now (between a rotation's two steps), its directory's too. On a Kubernetes node,
 * `/var/log/containers/<pod>_<ns>_<container>-<id>.log` links to
 * `/var/log/pods/<ns>_<pod>_<uid>/<container>/0.log`, beside which the rotated files are.
 */
function livePath(path: string): string {
  let current = path;
  for (let links = 0; links < MAX_LINKS; links++) {
    let target: string;
    try {
      target = readlinkSync(current);
    } catch {
      // not a symbolic link, or missing
      break;
    }
    current = resolve(dirname(current), target);
  }
  return join(realPath(dirname(current)), basename(current));
}

export class FileFollower {
  private readonly files: FollowedFile[] = [];
  private readonly buffer = new Uint8Array(CHUNK_BYTES);
  private readonly watchers = new Map<string, FSWatcher>();
  private readonly said = new SaidOnce();
  /** --once: a configured file could not be read (said; the run fails at its end) */
  failed = false;
  private dirty = false;
  /**
   * An upload was committed in memory but its checkpoint could not be saved (state_dir full):
   * no other upload until it is, or a crash would find several batches stored past the saved
   * offsets, which the next run batches differently and so sends again under other keys.
   */
  private uploadUnsaved = false;
  /**
   * Rotated files written after this time (ms) and matching no checkpoint came while log-ship
   * was down; null before the first run (all rotated files are history).
   */
  private lastRun: number | null;
  /** this pass could not take every new rotated file: the last run's time is kept */
  private deferred = false;
  /** tracked files whose inode was found but could not be opened, this pass */
  private readonly unopenable = new Set<FollowedFile>();
  private readonly losses: Record<string, LogLoss>;
  /** gzip files found cut short, by device:inode, with their size then */
  private readonly incomplete = new Map<string, number>();
  private stopping = false;
  private changed = false;
  private wake: (() => void) | null = null;

  constructor(
    private readonly config: Config,
    private readonly receiver: LineReceiver,
    private readonly options: FollowOptions = {},
  ) {
    const state = readCheckpointState(config.state_dir);
    for (const cp of state.files) this.files.push(this.track(cp, null));
    const lastRun = state.last_run ? Date.parse(state.last_run) : Number.NaN;
    this.lastRun = Number.isFinite(lastRun) ? lastRun : null;
    this.losses = state.losses ?? {};
  }

  /** The files followed now. */
  get followed(): readonly FollowedFile[] {
    return this.files;
  }

  get stopped(): boolean {
    return this.stopping;
  }

  private track(cp: FileCheckpoint, fd: number | null): FollowedFile {
    return {
      cp,
      fd,
      splitter: new LineSplitter(cp.offset, MAX_LINE_BYTES),
      // A gzip file does not change: its size was checked when it was read whole. A file not
      // opened yet has not been looked at by this run.
      checkedSize: cp.gzip && fd !== null ? cp.gzip.size : fd === null ? NOT_LOOKED_AT : -1,
      gone: false,
      inodeTaken: false,
      window: new TailWindow(),
    };
  }

  /** Stop reading: a pass under way ends after the file it reads (--follow). */
  stop(): void {
    this.stopping = true;
    this.wake?.();
  }

  /** --follow: waits between passes, until fs.watch reports a change or `pollMs` passed. */
  async waitForChange(pollMs: number): Promise<void> {
    this.watch();
    await this.sleep(MIN_PASS_GAP_MS, false);
    if (!this.changed) await this.sleep(Math.max(0, pollMs - MIN_PASS_GAP_MS), true);
    this.changed = false;
  }

  /** The id `file` ships under once saved; null for a file not shipped before (drawn at its first upload). */
  savedFileId(file: FollowedFile): string | null {
    return file.cp.file_id;
  }

  /**
   * The id the object keys of `file` derive from: fixed, and saved, before its first upload
   * (a crash must not give the same batch another key).
   */
  fileId(file: FollowedFile): string {
    if (this.uploadUnsaved) this.save();
    if (file.cp.file_id === null) {
      file.cp.file_id = fileIdOf(file.cp);
      try {
        this.save();
      } catch (error) {
        // Not saved, not used: after a crash another id would key the same lines again.
        file.cp.file_id = null;
        throw error;
      }
    }
    return file.cp.file_id;
  }

  /**
   * Whether `earlier` is a rotated file of the same log as `next`, read to its end: the runtime
   * writes no more to it, and a line it left open goes on at the start of `next` (containerd
   * reopening the log when the kubelet rotates it).
   */
  precedes(earlier: FollowedFile, next: FollowedFile): boolean {
    if (earlier === next || earlier.fd === null || !isRotated(earlier.cp)) return false;
    if (logOf(earlier.cp) !== logOf(next.cp)) return false;
    const end = earlier.cp.gzip ? earlier.cp.gzip.content : fstatFile(earlier.fd, earlier.cp.path).size;
    return earlier.splitter.position >= end;
  }

  /**
   * Everything of `file` before `end` is stored (`uploaded`: in an object; else it held no
   * event): its checkpoint moves there, written at once after an upload.
   */
  commit(file: FollowedFile, end: number, carried: Date | null, uploaded: boolean): void {
    file.cp.offset = end;
    const tail = file.window.before(end);
    if (tail) file.cp.tail = sha256Hex(tail);
    else delete file.cp.tail;
    file.cp.last_event_time = carried?.toISOString() ?? null;
    this.dirty = true;
    if (!uploaded) return;
    file.cp.last_upload = new Date().toISOString();
    this.uploadUnsaved = true;
    this.save();
  }

  /** Closes the files and watchers; saves the checkpoints with the time of this run. */
  close(): void {
    for (const watcher of this.watchers.values()) watcher.close();
    this.watchers.clear();
    for (const t of this.files) {
      if (t.fd !== null) closeSync(t.fd);
      t.fd = null;
    }
    // Saved even when nothing was uploaded: the time of this run, for the next one to tell
    // what came while it was down, and what was read and not shipped, to count what is lost.
    this.save();
  }

  private save(): void {
    if (this.options.dryRun) return;
    for (const t of this.files) {
      // Unknown while the content is to be checked again (after a truncation or a move). A file
      // this run did not look at (its copy was being made) keeps what the last run saw: dropping
      // it would make its removal look like a loss.
      if (t.checkedSize >= 0) {
        t.cp.size_seen = t.splitter.position;
        t.cp.lines_seen = this.unshippedLines(t);
      } else if (t.checkedSize !== NOT_LOOKED_AT) {
        delete t.cp.size_seen;
        delete t.cp.lines_seen;
      }
    }
    writeCheckpointState(this.config.state_dir, {
      files: this.files.map((t) => t.cp),
      ...(this.lastRun !== null ? { last_run: new Date(this.lastRun).toISOString() } : {}),
      ...(Object.keys(this.losses).length > 0 ? { losses: this.losses } : {}),
    });
    this.dirty = false;
    this.uploadUnsaved = false;
  }

  /** Lines read from `t` and not committed: batched, being uploaded, or not complete yet. */
  private unshippedLines(t: FollowedFile): number {
    const partial = t.splitter.position > t.splitter.lineStart ? 1 : 0;
    return this.receiver.unshippedLines(t) + partial;
  }

  /**
   * One look at every file: where it is now, new ones, what was appended, handed to the
   * receiver (`final`: each file ends here for this run).
   */
  async pass(final: boolean): Promise<void> {
    const started = Date.now();
    this.deferred = false;
    this.unopenable.clear();
    // By inode first, every file: one whose inode another file took is dropped before any
    // file looks for its copy among the names beside it.
    for (const t of [...this.files]) await this.guard(t, () => this.openByInode(t));
    for (const t of [...this.files]) await this.guard(t, () => this.locate(t));
    await this.discover();
    if (!this.deferred) {
      this.lastRun = started - CLOCK_SLACK_MS;
    }
    for (const t of [...this.files]) {
      await this.guard(t, async () => {
        await this.read(t);
        await this.receiver.caughtUp(t, final || t.gone);
        if (t.gone) await this.finishGone(t);
      });
      if (this.stopping && !final) break;
    }
    if (this.dirty) this.saveOrWarn();
  }

  /**
   * --follow: checkpoints that cannot be saved (state_dir full) are saved again at the next
   * pass, and no upload happens meanwhile (fileId): the service waits instead of ending.
   */
  private saveOrWarn(): void {
    if (!this.options.follow || this.stopping) {
      this.save();
      return;
    }
    try {
      this.save();
    } catch (error) {
      const message = `${messageOf(error)}; log-ship saves its checkpoints again at the next pass and uploads nothing meanwhile`;
      this.said.warn(message, message);
    }
  }

  /**
   * --once: any error ends the run. --follow: a file that failed (unreadable, state not
   * writable) is read again from its checkpoint on the next pass, so nothing is skipped; once
   * stopping, the error ends the run (what was not uploaded stays uncommitted).
   */
  private async guard(t: FollowedFile, work: () => Promise<void>): Promise<void> {
    if (!this.options.follow) return work();
    try {
      await work();
    } catch (error) {
      if (this.stopping) throw error;
      const message = `${t.cp.path}: ${messageOf(error)}; reading it again from its checkpoint`;
      this.said.warn(message, message, "error");
      const index = this.files.indexOf(t);
      if (t.fd !== null) closeSync(t.fd);
      if (index >= 0) this.files[index] = this.track({ ...t.cp }, null);
    }
  }

  /**
   * A file from the checkpoint, by its inode: at its path or renamed beside it (opened), or
   * unopenable (kept), or its inode now holds another file under a rotated name (marked: the
   * other file is new, DESIGN §8; locate() looks for a copy of the deleted one). An open file:
   * still at its path, renamed beside it, or gone.
   */
  private async openByInode(t: FollowedFile): Promise<void> {
    if (t.fd !== null) {
      this.followRename(t);
      return;
    }
    const found = findByInode(t.cp);
    if (!found) return;
    const fd = openOrWhy(found.path);
    if (typeof fd !== "number") {
      // Kept: forgetting it would ship it again from its start once it can be read. Renamed or
      // removed since it was found: looked for again next pass.
      this.unopenable.add(t);
      if (!fd.vanished) this.unreadable(`open:${found.path}`, `cannot open ${found.path}: ${fd.why}`);
      return;
    }
    const info = fstatFile(fd, found.path);
    if (!sameFile(info, t.cp)) {
      closeSync(fd);
      return;
    }
    const prefix = t.cp.gzip ? await gzipPrefix(fd) : FilePrefix.of(fd);
    // Under its first name, other first bytes are a truncation (checkContent); under a rotated
    // name (or compressed), the file was deleted and its inode given to a new one (copytruncate
    // removing the oldest copy first, savelog).
    const reused =
      !this.stillHolds(t, prefix, fd, info) && (isRotated(t.cp) || found.path !== t.cp.path || !!t.cp.gzip);
    if (t.cp.fingerprint_length > 0 && reused) {
      closeSync(fd);
      log.info(`${found.path} is a new file on the inode of ${t.cp.path}, which was deleted`, {
        path: found.path,
      });
      // Not forgotten yet: a compressed copy of it may be beside it (locate).
      t.inodeTaken = true;
      return;
    }
    if (found.path !== t.cp.path) this.moved(t, found.path);
    t.fd = fd;
    if (t.cp.gzip) t.checkedSize = info.size;
  }

  /**
   * Whether the file on `t`'s inode still holds what was shipped of `t`: its first bytes, and
   * (plain) the bytes before the offset. A new file given a freed inode may start alike.
   */
  private stillHolds(t: FollowedFile, prefix: FilePrefix, fd: number, info: FileInfo): boolean {
    if (!prefix.matches(t.cp)) return false;
    if (t.cp.gzip) return true;
    const offset = t.cp.offset;
    return info.size >= offset && this.sameBefore(t, offset, () => plainBefore(fd, offset));
  }

  /** A file not found by its inode: finished from its copy (plain or compressed), else gone. */
  private async locate(t: FollowedFile): Promise<void> {
    if (t.fd === null) {
      if (this.unopenable.has(t)) return;
      const before = rotationCandidates(t.cp.path, t.cp.base);
      const copy = await this.findCopy(t, t.cp.offset);
      if (copy === "wait") return;
      if (!copy && this.rotating(t, before)) return;
      if (!copy) {
        this.lose(t, t.inodeTaken ? "was deleted" : "is gone (deleted, or compressed after rotation)");
        this.forget(t);
        return;
      }
      log.info(`${t.cp.path}: reading the rest of it from its copy ${copy.info.path}`, {
        path: copy.info.path,
      });
      this.switchTo(t, copy);
    }
    await this.checkContent(t);
  }

  /**
   * A tracked file removed for good: said calmly when everything read from it was shipped
   * (logrotate deleting or compressing a rotation: the usual case), else a warning with the
   * lines lost, counted for `status`.
   */
  private lose(t: FollowedFile, what: string): void {
    // Empty when last seen: nothing read, nothing to tell it by.
    if (t.cp.offset === 0 && t.cp.fingerprint_length === 0) return;
    const seen = t.cp.size_seen;
    if (seen !== undefined && t.cp.offset >= seen && isRotated(t.cp)) {
      log.info(`${t.cp.path} was removed after all ${seen} bytes seen in it were shipped`, {
        path: t.cp.path,
      });
      return;
    }
    if (seen !== undefined && t.cp.offset >= seen) {
      // Live when last seen, then rotated and removed while log-ship was down: what was written
      // to it since can be neither read nor counted.
      log.warn(
        `${t.cp.path} ${what} while log-ship was down, before its next rotation was seen: the lines written to it after the last run are lost`,
        { path: t.cp.path, committed: t.cp.offset },
      );
      this.addLoss(t, null);
      return;
    }
    if (seen === undefined) {
      log.warn(`${t.cp.path} ${what} before log-ship finished it`, {
        path: t.cp.path,
        committed: t.cp.offset,
      });
      this.addLoss(t, null);
      return;
    }
    const bytes = seen - t.cp.offset;
    const lines = t.cp.lines_seen ?? 0;
    log.warn(
      `${t.cp.path} ${what} before log-ship finished it: ${lines} line(s) (${bytes} bytes) seen in it were not shipped`,
      { path: t.cp.path, committed: t.cp.offset, lines, bytes },
    );
    this.addLoss(t, { lines, bytes });
  }

  /** Counted per log for `status`: a removed file, with the lines and bytes lost (null: unknown). */
  private addLoss(t: FollowedFile, lost: { lines: number; bytes: number } | null): void {
    const name = logOf(t.cp);
    this.losses[name] = addedLoss(this.losses[name], lost);
    this.dirty = true;
  }

  /** An open file: still at its path, renamed beside it (rotation), or gone. */
  private followRename(t: FollowedFile): void {
    const found = findByInode(t.cp);
    if (found) {
      if (found.path !== t.cp.path) this.moved(t, found.path);
      return;
    }
    if (!t.gone) log.info(`${t.cp.path} was deleted: reading what is left of it, then forgetting it`);
    t.gone = true;
  }

  private moved(t: FollowedFile, path: string): void {
    log.info(`${t.cp.path} was rotated to ${path}: finishing it`, { path });
    t.cp.path = path;
    this.dirty = true;
  }

  /**
   * The open file must still hold what was read from it: same first bytes, not shorter than
   * the read position. Otherwise it was truncated (copytruncate) or is another file on a reused
   * inode. A gzip file does not change: it was checked when opened.
   */
  private async checkContent(t: FollowedFile): Promise<void> {
    const fd = t.fd!;
    if (t.cp.gzip) return;
    const size = fstatFile(fd, t.cp.path).size;
    if (size === t.checkedSize) return;
    const position = t.splitter.position;
    const check = checkFingerprint(fd, t.cp);
    if (check.matches && size >= position && this.sameBefore(t, position, () => plainBefore(fd, position))) {
      if (check.longer) {
        Object.assign(t.cp, check.longer);
        this.dirty = true;
      }
      t.checkedSize = size;
      return;
    }
    const before = rotationCandidates(t.cp.path, t.cp.base);
    const copy = await this.findCopy(t, position);
    // Its copy is being compressed, or the names changed while it was looked for (a rotation
    // under way): read nothing of the new content until the next pass has looked again.
    if (copy === "wait" || (!copy && this.rotating(t, before))) {
      t.checkedSize = -1;
      return;
    }
    if (copy) {
      log.info(`${t.cp.path} was truncated after a copy: finishing the copy ${copy.info.path}`, {
        path: copy.info.path,
      });
      this.switchTo(t, copy);
      return;
    }
    // Lines an earlier run read and did not ship (nothing read since) were in the old content.
    const seen = t.cp.size_seen ?? 0;
    const readNow = t.splitter.position > t.cp.offset || this.receiver.pending(t);
    const lost =
      !readNow && seen > t.cp.offset ? { lines: t.cp.lines_seen ?? 0, bytes: seen - t.cp.offset } : null;
    const unshipped = lost
      ? `; ${lost.lines} line(s) (${lost.bytes} bytes) seen in it before were not shipped`
      : "";
    log.warn(`${t.cp.path} was truncated or replaced: reading it again from its start${unshipped}`, {
      path: t.cp.path,
      read: t.splitter.position,
      size,
      ...lost,
    });
    if (lost) this.addLoss(t, lost);
    // What was read before is still a true record of events: upload it first.
    await this.receiver.flush(t);
    const index = this.files.indexOf(t);
    const cp = this.newCheckpoint(t.cp.path, fstatFile(fd, t.cp.path), FilePrefix.of(fd), t.cp.base);
    // Its keys must differ from the old content's, even when it starts with the same bytes.
    const replaced = t.cp.file_id ?? t.cp.replaced_id;
    if (replaced) cp.replaced_id = replaced;
    const fresh = this.track(cp, fd);
    if (index >= 0) this.files[index] = fresh;
    this.dirty = true;
  }

  /**
   * A file beside `t` (not tracked itself) that starts with the bytes `t` was read from and
   * holds at least `minSize` bytes: the copy copytruncate left, or `t` compressed (`.gz`, its
   * uncompressed bytes). Opened. "wait": such a `.gz` is being written, look again next time.
   */
  private async findCopy(t: FollowedFile, minSize: number): Promise<Copy | "wait" | null> {
    if (t.cp.fingerprint_length === 0) return null;
    let wait = false;
    for (const candidate of rotationCandidates(t.cp.path, t.cp.base)) {
      if (sameFile(candidate, t.cp) || this.isTracked(candidate)) continue;
      const compressed = hasGzipName(candidate.path);
      if (!compressed && candidate.size < minSize) continue;
      const fd = openOrWhy(candidate.path);
      if (typeof fd !== "number") continue;
      const copy = await this.copyOf(t, candidate, fd, minSize);
      if (copy === "wait") wait = true;
      if (copy && copy !== "wait") return copy;
      closeSync(fd);
    }
    return wait ? "wait" : null;
  }

  private async copyOf(
    t: FollowedFile,
    candidate: FileInfo,
    fd: number,
    minSize: number,
  ): Promise<Copy | "wait" | null> {
    const info = fstatFile(fd, candidate.path);
    if (!sameFile(info, candidate)) return null;
    const kind = hasGzipName(info.path) ? gzipKind(fd) : "plain";
    if (kind === "empty") return Date.now() - info.mtimeMs < STALE_GZIP_MS ? "wait" : null;
    if (kind === "plain") {
      const copy =
        info.size >= minSize &&
        FilePrefix.of(fd).matches(t.cp) &&
        this.sameBefore(t, minSize, () => plainBefore(fd, minSize));
      return copy ? { info, fd, gzip: undefined } : null;
    }
    const prefix = await gzipPrefix(fd);
    if (!prefix.matches(t.cp)) {
      // Too little of it written yet to tell: gzip may be compressing `t`.
      if (prefix.bytes.length >= t.cp.fingerprint_length) return null;
      if (Date.now() - info.mtimeMs >= STALE_GZIP_MS) return null;
      return (await this.measureGzip(fd, info)).complete ? null : "wait";
    }
    const measured = await this.measureGzip(fd, info, minSize);
    if (!measured.complete) return "wait";
    if (measured.content < minSize || !this.sameBefore(t, minSize, () => measured.before)) return null;
    return { info, fd, gzip: { size: info.size, content: measured.content } };
  }

  /**
   * Whether a file holds, just before `offset`, the bytes `t` read there (`found`: those bytes,
   * null when it holds fewer): compared with the bytes read last, or with the checkpoint's tail.
   * True when neither is known (a checkpoint written before tails were kept).
   */
  private sameBefore(t: FollowedFile, offset: number, found: () => Uint8Array | null): boolean {
    if (offset === 0) return true;
    const known = t.window.before(offset);
    if (known) {
      const bytes = found();
      return bytes !== null && equalBytes(bytes, known);
    }
    if (offset !== t.cp.offset || !t.cp.tail) return true;
    const bytes = found();
    return bytes !== null && bytes.length === tailLength(offset) && sha256Hex(bytes) === t.cp.tail;
  }

  /**
   * A gzip file's uncompressed size, read whole. One found cut short is not read again while
   * its size stays the same (--follow looks every second).
   */
  private async measureGzip(fd: number, info: FileInfo, at = 0): Promise<GzipMeasure> {
    const id = `${info.dev}:${info.ino}`;
    if (this.incomplete.get(id) === info.size) return { complete: false, why: "unchanged" };
    const measured = await measureGzip(fd, at);
    if (measured.complete) {
      this.incomplete.delete(id);
    } else {
      this.incomplete.set(id, info.size);
      this.incompleteGzip(info, measured.why);
    }
    return measured;
  }

  /** A `.gz` file cut short: being written (logrotate compressing), or left so (said). */
  private incompleteGzip(info: FileInfo, why: string): void {
    if (Date.now() - info.mtimeMs < STALE_GZIP_MS) {
      log.info(`${info.path} is not a complete gzip file yet (${why}): read once it is`, { path: info.path });
    } else {
      this.said.warn(
        `gzip:${info.path}`,
        `${info.path} is not a complete gzip file (${why}) and has not changed for a minute: its lines cannot be read`,
      );
    }
  }

  /** Go on reading `t` at the same position in its copy; its keys stay the same (file_id). */
  private switchTo(t: FollowedFile, copy: Copy): void {
    if (t.fd !== null) closeSync(t.fd);
    t.fd = copy.fd;
    t.cp.path = copy.info.path;
    t.cp.dev = copy.info.dev;
    t.cp.ino = copy.info.ino;
    t.inodeTaken = false;
    if (copy.gzip) t.cp.gzip = copy.gzip;
    else delete t.cp.gzip;
    // Just checked: it starts with the bytes read, and holds at least as many.
    t.checkedSize = copy.info.size;
    this.dirty = true;
  }

  /**
   * Whether `t`, looked for among the names beside it (listed as `before`) and not found, may
   * still be there: the names changed meanwhile (a rotation under way: its file renamed, its
   * copy not listed yet), or it is there under a name the search started too early to see.
   * Then it is looked for again next pass, never taken for gone.
   */
  private rotating(t: FollowedFile, before: FileInfo[]): boolean {
    const after = rotationCandidates(t.cp.path, t.cp.base);
    if (namesOf(before) !== namesOf(after)) return true;
    return t.fd === null && !t.inodeTaken && after.some((f) => sameFile(f, t.cp));
  }

  /**
   * Whether a file starting with `prefix` is a copy of `t`, whole or being made (copytruncate
   * copying, gzip compressing): it starts with the bytes `t` was read from, or it is shorter
   * than those and they start with it.
   */
  private startsLike(prefix: FilePrefix, t: FollowedFile): boolean {
    if (t.cp.fingerprint_length === 0) return false;
    if (prefix.matches(t.cp)) return true;
    const length = prefix.bytes.length;
    if (length === 0 || length >= t.cp.fingerprint_length || t.fd === null || t.cp.gzip) return false;
    return Buffer.from(readPrefix(t.fd, length)).equals(prefix.bytes);
  }

  /**
   * Whether `file` (not tracked itself) holds the content of a tracked file, whole or being
   * made: copytruncate's copy, or a tracked file compressed. Starting with the same bytes is not
   * enough (DESIGN §8): tracking events start with long `context` fields, so a new file often
   * starts like an earlier one.
   */
  private async holdsTrackedContent(file: Candidate): Promise<boolean> {
    for (const t of this.files) if (await this.holdsContentOf(file, t)) return true;
    return false;
  }

  private async holdsContentOf(file: Candidate, t: FollowedFile): Promise<boolean> {
    if (!this.startsLike(file.prefix, t)) return false;
    // `t` is open under the name it was rotated to: a file under its first name is the one
    // created after the rotation (copies and compressed files get rotated names).
    if (t.fd !== null && !t.gone && isRotated(t.cp) && realPath(file.info.path) === logOf(t.cp)) return false;
    // Its bytes at hand (open, and checked this pass to hold what was read): byte for byte.
    // Unless it was truncated since it was checked (copytruncate between this pass's check and
    // now) and holds new lines: then those differ from the copy, which is judged as below by
    // what was read, else it would be shipped again from its start as a new file.
    if (t.fd !== null && t.checkedSize >= 0) {
      const same = await sameUpToShorter(contentChunks(t.fd, !!t.cp.gzip), contentChunks(file.fd, file.gzip));
      if (same || t.cp.gzip || this.holdsWhatWasRead(t, t.fd)) return same;
    }
    // Else what its checkpoint keeps of it: the bytes before its offset, once the file holds as
    // many (a copy still being made holds fewer: its first bytes decide until it is made).
    const offset = t.cp.offset;
    if (!file.gzip) {
      return file.info.size < offset || this.sameBefore(t, offset, () => plainBefore(file.fd, offset));
    }
    const measured = await this.measureGzip(file.fd, file.info, offset);
    if (!measured.complete || measured.content < offset) return true;
    return this.sameBefore(t, offset, () => measured.before);
  }

  /** Whether the open plain file `t` still starts with its first bytes and holds what was read. */
  private holdsWhatWasRead(t: FollowedFile, fd: number): boolean {
    const position = t.splitter.position;
    return (
      fstatFile(fd, t.cp.path).size >= position &&
      checkFingerprint(fd, t.cp).matches &&
      this.sameBefore(t, position, () => plainBefore(fd, position))
    );
  }

  private isTracked(file: { dev: string; ino: string }): boolean {
    return this.files.some((t) => !t.inodeTaken && sameFile(t.cp, file));
  }

  /**
   * A deleted file read to its end: its compressed copy, when logrotate made one, is followed
   * instead (else it would look like a file never seen); a copy being written is waited for.
   */
  private async finishGone(t: FollowedFile): Promise<void> {
    const before = rotationCandidates(t.cp.path, t.cp.base);
    const copy = await this.findCopy(t, t.splitter.position);
    if (copy === "wait") return;
    if (!copy && this.rotating(t, before)) return;
    if (!copy) {
      this.forget(t);
      return;
    }
    log.info(`${t.cp.path} was compressed to ${copy.info.path}: following that`, { path: copy.info.path });
    this.switchTo(t, copy);
    t.gone = false;
  }

  private newCheckpoint(path: string, info: FileInfo, prefix: FilePrefix, base?: string): FileCheckpoint {
    const real = realPath(path);
    return {
      path: real,
      base: base ?? basename(real),
      dev: info.dev,
      ino: info.ino,
      ...prefix.fingerprint,
      offset: 0,
      last_upload: null,
      file_id: null,
      last_event_time: null,
    };
  }

  /**
   * Configured files not tracked yet are read from their start, after the rotated files beside
   * them that came while log-ship was down. A configured path with nothing to read (missing,
   * not a file, a glob matching no file) is said (see unreadable()), unless the file it named
   * was rotated away and is being finished: its successor is not created yet.
   */
  private async discover(): Promise<void> {
    for (const { pattern, glob, paths } of resolveLogPatterns(this.config.logs)) {
      // Rotated files of a missing file too: the name may be between a rotation's two steps.
      if (!glob) await this.discoverRotated(pattern);
      let files = 0;
      for (const path of paths) {
        const why = whyNotAFile(path);
        if (why === null) {
          files++;
          if (glob) await this.discoverRotated(path);
          await this.discoverFile(path, null);
        } else if (glob && why.missing) {
          // A link whose file is between a rotation's two steps: what was rotated beside it.
          await this.discoverRotated(path);
        } else if (!glob && !(why.missing && this.rotatedAway(pattern, false))) {
          // A glob may match directories; a plain path must be a file.
          this.unreadable(`path:${path}`, `${path} (in logs.paths) ${why.reason}`);
        }
      }
      if (glob && files === 0 && !this.rotatedAway(pattern, paths)) {
        const why = whyNoMatch(pattern);
        this.unreadable(
          `path:${pattern}`,
          `${pattern} (in logs.paths) matches no file${why ? `: ${why.reason}` : ""}`,
        );
      }
    }
  }

  /**
   * The rotated files beside `path` (plain or `.gz`) that match no checkpoint and were written
   * after the last run: they came (and were rotated) while log-ship was down. Shipped from
   * their start, oldest first. Older ones are history another shipper sent, unless --backfill.
   * A symbolic link is followed: the rotated files are beside the file it links to.
   */
  private async discoverRotated(path: string): Promise<void> {
    const since = this.options.backfill ? Number.NEGATIVE_INFINITY : this.lastRun;
    if (since === null) return;
    const live = livePath(path);
    const listed = rotationCandidates(live, basename(live));
    const rotated = listed
      .filter((c) => c.path !== live && c.mtimeMs > since && !this.isTracked(c))
      .sort(oldestFirst(live));
    for (const file of rotated) await this.discoverFile(file.path, basename(live));
    // Rotated while being looked at: a file renamed between the listing and its turn may have
    // been missed. This pass's time is not recorded, so the next pass looks from the same time.
    if (namesOf(listed) !== namesOf(rotationCandidates(live, basename(live)))) this.deferred = true;
  }

  /**
   * A file to read from its start, unless it is tracked or a copy of a tracked file (being
   * copied by copytruncate, or compressed). `base`: the live file's name, for a rotated file.
   */
  private async discoverFile(path: string, base: string | null): Promise<void> {
    const seen = statFile(path);
    if (!seen || this.isTracked(seen)) return;
    const fd = openOrWhy(path);
    if (typeof fd !== "number") {
      // Renamed or removed since it was listed (a rotation under way): the next pass (or run)
      // finds it under its new name, from this pass's time on.
      if (base !== null || fd.vanished) this.deferred = true;
      if (!fd.vanished) this.unreadable(`open:${path}`, `cannot open ${path}: ${fd.why}`);
      return;
    }
    const info = fstatFile(fd, path);
    const kind = hasGzipName(path) ? gzipKind(fd) : "plain";
    const prefix = kind === "gzip" ? await gzipPrefix(fd) : FilePrefix.of(fd);
    const isCopy = await this.holdsTrackedContent({ info, fd, gzip: kind === "gzip", prefix });
    const empty = base !== null && (kind === "empty" || (kind === "plain" && info.size === 0));
    if (this.isTracked(info) || isCopy || empty || kind === "empty") {
      closeSync(fd);
      return;
    }
    let gzip: FileCheckpoint["gzip"];
    if (kind === "gzip") {
      const measured = await this.measureGzip(fd, info);
      if (!measured.complete) {
        // Written after this pass started: its time is past this run's, the next run takes it.
        closeSync(fd);
        return;
      }
      gzip = { size: info.size, content: measured.content };
    }
    const cp = this.newCheckpoint(path, info, prefix, base ?? undefined);
    if (gzip) cp.gzip = gzip;
    if (base === null) log.info(`following ${path}`, { path });
    else log.info(`${path} was written while log-ship was not running: shipping it from its start`, { path });
    const t = this.track(cp, fd);
    // Just looked at: its first bytes are the fingerprint.
    t.checkedSize = info.size;
    this.files.push(t);
    this.dirty = true;
  }

  /**
   * Whether a followed file had a name `pattern` names before it was rotated away (it keeps its
   * first base name, in the same directory): between the rename and the creation of the new
   * file, the name is missing but nothing is lost. `matched`: the names a glob matches now (a
   * link among them may name the followed file's first name).
   */
  private rotatedAway(pattern: string, matched: string[] | false): boolean {
    const matcher = matched ? new Bun.Glob(pattern) : null;
    // livePath is realPath where the file is, and follows a link to where it is not.
    const names = new Set([pattern, livePath(pattern), ...(matched || []).map(livePath)]);
    // A compressed file is a rotation older than the one logrotate creates the new file after.
    return this.files.some((t) => {
      const first = logOf(t.cp);
      return isRotated(t.cp) && !t.cp.gzip && (names.has(first) || matcher?.match(first));
    });
  }

  /**
   * A configured file with nothing to read. --once (cron) fails at the end, after the other
   * files are shipped: exit 0 would look like success while nothing ships. --follow (a service)
   * warns and keeps looking: the file may appear later. Once per path per run either way.
   */
  private unreadable(id: string, message: string): void {
    if (this.options.follow) {
      this.said.warn(id, `${message}: it is shipped as soon as it can be read (${UNREADABLE_HINT})`);
      return;
    }
    if (!this.said.first(id)) return;
    this.failed = true;
    report(new JobError(`${message}: it is not shipped`, UNREADABLE_HINT));
  }

  private forget(t: FollowedFile): void {
    if (t.fd !== null) closeSync(t.fd);
    t.fd = null;
    const index = this.files.indexOf(t);
    if (index >= 0) this.files.splice(index, 1);
    this.dirty = true;
  }

  /** What was appended since the last read, line by line, into batches. */
  private async read(t: FollowedFile): Promise<void> {
    const fd = t.fd;
    if (fd === null) return;
    if (t.cp.gzip) return this.readGzip(t, fd, t.cp.gzip.content);
    const size = fstatFile(fd, t.cp.path).size;
    while (t.splitter.position < size && !(this.stopping && this.options.follow)) {
      const position = t.splitter.position;
      const n = readSync(fd, this.buffer, 0, Math.min(CHUNK_BYTES, size - position), position);
      if (n === 0) break;
      // Truncated while being read (copytruncate)? Then these bytes may be the new content's:
      // drop them, and let the next pass find the copy.
      const check = checkFingerprint(fd, t.cp, position + n);
      const truncated =
        fstatFile(fd, t.cp.path).size < position + n ||
        !check.matches ||
        !this.sameBefore(t, position, () => plainBefore(fd, position));
      if (truncated) {
        t.checkedSize = -1;
        break;
      }
      // The fingerprint grows with what was read (up to its length), before anything of it is
      // committed: a short one would take any file starting alike for this one.
      if (check.longer) {
        Object.assign(t.cp, check.longer);
        this.dirty = true;
      }
      // Read on from a checkpoint: the bytes before it (just checked) join the window, so that
      // the next commit keeps a tail even when it falls within TAIL_BYTES of this one.
      if (position > 0 && !t.window.before(position)) {
        t.window.push(plainBefore(fd, position), position - tailLength(position));
      }
      t.window.push(this.buffer.subarray(0, n), position);
      for (const line of t.splitter.split(this.buffer.subarray(0, n))) {
        // Synchronous per line (no promise per line): only a closed batch waits for its upload.
        const closing = this.receiver.line(t, line);
        if (closing) await closing;
      }
    }
  }

  /**
   * A gzip file read whole (it was checked complete, and does not change): its uncompressed
   * bytes from the read position on. Decompressed from the start each time: offsets count
   * uncompressed bytes, and a gzip stream cannot be entered in the middle.
   */
  private async readGzip(t: FollowedFile, fd: number, content: number): Promise<void> {
    if (t.splitter.position >= content) return;
    let at = 0;
    for await (const chunk of gunzipChunks(fd)) {
      const end = at + chunk.length;
      t.window.push(chunk, at);
      if (end > t.splitter.position) {
        for (const line of t.splitter.split(chunk.subarray(t.splitter.position - at))) {
          const closing = this.receiver.line(t, line);
          if (closing) await closing;
        }
      }
      at = end;
      if (this.stopping && this.options.follow) break;
    }
  }

  /** Waits `ms`, less when stopped or (with `onChange`) when fs.watch reports a change. */
  sleep(ms: number, onChange: boolean): Promise<void> {
    if (this.stopping || (onChange && this.changed)) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.wake = null;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.wake = () => {
        if (onChange || this.stopping) done();
      };
    });
  }

  /** fs.watch on the directories of the followed files; polling covers what it misses. */
  private watch(): void {
    const dirs = new Set(this.files.map((t) => dirname(t.cp.path)));
    for (const path of this.config.logs.paths) dirs.add(dirname(path));
    for (const [dir, watcher] of this.watchers) {
      if (dirs.has(dir)) continue;
      watcher.close();
      this.watchers.delete(dir);
    }
    for (const dir of dirs) {
      if (this.watchers.has(dir)) continue;
      try {
        const watcher = watchDir(dir, () => {
          this.changed = true;
          this.wake?.();
        });
        watcher.on("error", () => {
          watcher.close();
          this.watchers.delete(dir);
        });
        this.watchers.set(dir, watcher);
      } catch {
        // no such directory (yet), or no inotify: polling finds the changes
      }
    }
  }
}
