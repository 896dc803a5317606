// The tail input's file handling: which files the config names (paths and globs minus
// excludes), what identifies a file (device, inode, fingerprint of its first bytes, the bytes
// just before its offset), where a rotated file went (a name beside it starting with its base
// name), and lines cut from chunks.
import { type BigIntStats, fstatSync, readdirSync, readSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import type { LogsConfig } from "../config/types.ts";

/** How many first bytes of a file identify it (with device and inode). */
export const FINGERPRINT_BYTES = 1024;
/**
 * How many bytes just before a checkpoint's offset it keeps a hash of: after a truncation, a
 * file may start with the same bytes again (every line of a log may begin alike) and regrow past
 * the offset; the bytes before the offset tell the new content from the one read.
 */
export const TAIL_BYTES = 4096;

export interface FileInfo {
  path: string;
  dev: string;
  ino: string;
  size: number;
  /** last modification, ms since 1970 */
  mtimeMs: number;
}

const GLOB_CHARS = /[*?[\]{}]/;
// Rotations compressed with another tool than gzip cannot be read (DESIGN §8 reads `.gz` only).
const UNREADABLE_COMPRESSED = /\.(bz2|xz|zst|lz4|zip|Z)$/;
// The kubelet compresses a rotated container log into `<name>.tmp`, then renames it `<name>.gz`:
// gzip bytes under a name that is not a `.gz` one, to be read once it has its `.gz` name.
const BEING_COMPRESSED = /\.tmp$/;

// Bigint stats: a device or inode number may not fit in a double.
function infoOf(path: string, st: BigIntStats): FileInfo {
  return {
    path,
    dev: String(st.dev),
    ino: String(st.ino),
    size: Number(st.size),
    mtimeMs: Number(st.mtimeMs),
  };
}

/** A regular file at `path` (symbolic links followed), or null. */
export function statFile(path: string): FileInfo | null {
  try {
    const st = statSync(path, { bigint: true, throwIfNoEntry: false });
    if (!st?.isFile()) return null;
    return infoOf(path, st);
  } catch {
    // not readable (a dangling link, no permission): as if absent
    return null;
  }
}

/** The open file `fd`, known as `path`, as it is now (its size grows as it is written). */
export function fstatFile(fd: number, path: string): FileInfo {
  return infoOf(path, fstatSync(fd, { bigint: true }));
}

export function sameFile(a: { dev: string; ino: string }, b: { dev: string; ino: string }): boolean {
  return a.dev === b.dev && a.ino === b.ino;
}

function expand(pattern: string): string[] {
  if (!GLOB_CHARS.test(pattern)) return [pattern];
  const segments = pattern.split("/");
  const first = segments.findIndex((s) => GLOB_CHARS.test(s));
  const base = segments.slice(0, first).join("/") || "/";
  try {
    return [
      ...new Bun.Glob(segments.slice(first).join("/")).scanSync({
        cwd: base,
        absolute: true,
        onlyFiles: false,
        followSymlinks: true,
        dot: true,
      }),
    ];
  } catch {
    // a base directory that does not exist (yet) matches nothing
    return [];
  }
}

/**
 * Why a glob in `logs.paths` matches no file, when a directory on its way cannot be listed by
 * this user (the glob then silently sees nothing there) or its fixed directory does not exist
 * (`missing`), as whyNotAFile() says of a path; null when the directories are there and
 * readable, and simply hold no matching file.
 */
export function whyNoMatch(pattern: string): { missing: boolean; reason: string } | null {
  const segments = pattern.split("/");
  const first = segments.findIndex((s) => GLOB_CHARS.test(s));
  if (first < 0) return null;
  const base = segments.slice(0, first).join("/") || "/";
  const baseProblem = unlistable(base);
  if (baseProblem) return baseProblem;
  // The directories each leading part of the glob names, shortest first: the first one that
  // cannot be listed hides everything below it.
  for (let end = first + 1; end < segments.length; end++) {
    for (const dir of expand(segments.slice(0, end).join("/"))) {
      const problem = isDirectory(dir) ? unlistable(dir) : null;
      if (problem) return problem;
    }
  }
  return null;
}

/** Whether `path` is a directory (false when it cannot even be looked at). */
function isDirectory(path: string): boolean {
  try {
    return statSync(path, { throwIfNoEntry: false })?.isDirectory() ?? false;
  } catch {
    return false;
  }
}

/** Why this user cannot list directory `dir` (for a person), or null when it can. */
function unlistable(dir: string): { missing: boolean; reason: string } | null {
  try {
    readdirSync(dir);
    return null;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOENT") return { missing: true, reason: `its directory ${dir} does not exist` };
    const why = code === "EACCES" ? "by this user (EACCES)" : `(${code ?? (error as Error).message})`;
    return { missing: false, reason: `its directory ${dir} cannot be listed ${why}` };
  }
}

/** One entry of `logs.paths` and what it names now, minus `logs.exclude`. */
export interface LogPattern {
  pattern: string;
  /** it has glob characters: it may match any number of files, directories included */
  glob: boolean;
  paths: string[];
}

/** Each entry of `logs.paths` with the paths it names now (globs expanded), minus `logs.exclude`. */
export function resolveLogPatterns(logs: LogsConfig): LogPattern[] {
  const excludes = logs.exclude.map((x) => (GLOB_CHARS.test(x) ? new Bun.Glob(x) : x));
  const excluded = (path: string) =>
    excludes.some((x) => (typeof x === "string" ? x === path : x.match(path)));
  return logs.paths.map((pattern) => ({
    pattern,
    glob: GLOB_CHARS.test(pattern),
    paths: expand(pattern).filter((path) => !excluded(path)),
  }));
}

/** The files `logs.paths` names now (globs expanded), minus `logs.exclude`, sorted. */
export function resolveLogPaths(logs: LogsConfig): string[] {
  return [...new Set(resolveLogPatterns(logs).flatMap((p) => p.paths))].sort();
}

/** Why `path` is not a regular file (symbolic links followed), for a person; null when it is one. */
export function whyNotAFile(path: string): { missing: boolean; reason: string } | null {
  try {
    const st = statSync(path, { throwIfNoEntry: false });
    if (!st) return { missing: true, reason: "does not exist" };
    if (st.isFile()) return null;
    return { missing: false, reason: st.isDirectory() ? "is a directory" : "is not a regular file" };
  } catch (error) {
    return { missing: false, reason: `cannot be looked at: ${(error as Error).message}` };
  }
}

/** The first `length` bytes of an open file (fewer when it is shorter). */
export function readPrefix(fd: number, length: number): Uint8Array {
  const buffer = new Uint8Array(length);
  let got = 0;
  while (got < length) {
    const n = readSync(fd, buffer, got, length - got, got);
    if (n === 0) break;
    got += n;
  }
  return buffer.subarray(0, got);
}

/** Bun's hasher rather than node:crypto's, whose module alone costs megabytes of memory. */
export function sha256Hex(bytes: Uint8Array | string): string {
  return new Bun.CryptoHasher("sha256").update(bytes).digest("hex");
}

export interface Fingerprint {
  fingerprint: string;
  fingerprint_length: number;
}

/**
 * The first FINGERPRINT_BYTES of an open file, read once to be compared with any number of
 * fingerprints: each length is hashed once, however many fingerprints have it.
 */
export class FilePrefix {
  private readonly hashes = new Map<number, string>();

  /** `bytes`: the file's first FINGERPRINT_BYTES (fewer when it is shorter), uncompressed */
  constructor(readonly bytes: Uint8Array) {}

  /** The first bytes of a plain (not compressed) open file. */
  static of(fd: number): FilePrefix {
    return new FilePrefix(readPrefix(fd, FINGERPRINT_BYTES));
  }

  /** sha256 of these bytes, with their length. */
  get fingerprint(): Fingerprint {
    return { fingerprint: sha256Hex(this.bytes), fingerprint_length: this.bytes.length };
  }

  /** Whether the file starts with the bytes `known` was taken from. */
  matches(known: Fingerprint): boolean {
    const length = known.fingerprint_length;
    if (this.bytes.length < length) return false;
    let hash = this.hashes.get(length);
    if (hash === undefined) {
      hash = sha256Hex(this.bytes.subarray(0, length));
      this.hashes.set(length, hash);
    }
    return hash === known.fingerprint;
  }
}

/**
 * Whether the open file still starts with the bytes `known` was taken from; when it does and
 * has grown, the longer fingerprint (up to FINGERPRINT_BYTES, and to `upTo`: the bytes read
 * from it) to store instead.
 */
export function checkFingerprint(
  fd: number,
  known: Fingerprint,
  upTo = FINGERPRINT_BYTES,
): { matches: boolean; longer: Fingerprint | null } {
  const prefix = FilePrefix.of(fd);
  if (!prefix.matches(known)) return { matches: false, longer: null };
  const length = Math.min(prefix.bytes.length, upTo);
  const longer =
    length > known.fingerprint_length ? new FilePrefix(prefix.bytes.subarray(0, length)).fingerprint : null;
  return { matches: true, longer };
}

/** `length` bytes of an open file from `position` (fewer at its end). */
export function readAt(fd: number, position: number, length: number): Uint8Array {
  const buffer = new Uint8Array(length);
  let got = 0;
  while (got < length) {
    const n = readSync(fd, buffer, got, length - got, position + got);
    if (n === 0) break;
    got += n;
  }
  return buffer.subarray(0, got);
}

/** How many bytes before `offset` a tail holds: TAIL_BYTES, fewer near the start. */
export function tailLength(offset: number): number {
  return Math.min(TAIL_BYTES, offset);
}

/** How many bytes read last a TailWindow keeps: a commit falls this far behind the reading. */
const WINDOW_BYTES = 64 * 1024;

/**
 * The bytes read last from a file, for the tail of a checkpoint (committed at a line end behind
 * the read position) and to tell whether the file still holds them (truncated and regrown?).
 */
export class TailWindow {
  private bytes = new Uint8Array(0);
  /** offset just after the last byte kept */
  private end = 0;

  /** Bytes read at `at`; a read elsewhere than after the last one starts over. */
  push(chunk: Uint8Array, at: number): void {
    if (at !== this.end || this.bytes.length === 0) {
      this.bytes = new Uint8Array(0);
      this.end = at;
    }
    const keep = Math.min(WINDOW_BYTES, this.bytes.length + chunk.length);
    const next = new Uint8Array(keep);
    const fromChunk = Math.min(chunk.length, keep);
    const fromOld = keep - fromChunk;
    next.set(this.bytes.subarray(this.bytes.length - fromOld), 0);
    next.set(chunk.subarray(chunk.length - fromChunk), fromOld);
    this.bytes = next;
    this.end = at + chunk.length;
  }

  /** The tailLength(offset) bytes before `offset`, when kept; else null. */
  before(offset: number): Uint8Array | null {
    const start = this.end - this.bytes.length;
    const from = offset - tailLength(offset);
    if (offset > this.end || from < start || offset === 0) return null;
    return this.bytes.subarray(from - start, offset - start);
  }
}

/**
 * Files beside `path` whose names start with `base`: where logrotate puts a rotated file
 * (`tracking.log.1`, `tracking.log-20240301`, `tracking.log.2.gz`, ...), the current name
 * included. Those compressed by another tool than gzip are left out, and the kubelet's
 * `<name>.tmp` (a `.gz` being written).
 */
export function rotationCandidates(path: string, base: string): FileInfo[] {
  const dir = dirname(path);
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  const found: FileInfo[] = [];
  for (const name of names.sort()) {
    if (!name.startsWith(base) || UNREADABLE_COMPRESSED.test(name)) continue;
    if (name !== base && BEING_COMPRESSED.test(name)) continue;
    const info = statFile(join(dir, name));
    if (info) found.push(info);
  }
  return found;
}

/** The names and inodes of `files`: two listings differ when a file was renamed, created or removed. */
export function namesOf(files: FileInfo[]): string {
  return files.map((f) => `${f.path}:${f.ino}`).join("\n");
}

const NUMBERED = /^\.(\d+)(\.gz)?$/;

/**
 * Rotated files of `live`, oldest first: `.3.gz` before `.2` before `.1`, dated names in their
 * order; else by time (compressing a file gives the copy a later time than the next rotation).
 */
export function oldestFirst(live: string): (a: FileInfo, b: FileInfo) => number {
  const rank = (file: FileInfo) => NUMBERED.exec(file.path.slice(live.length))?.[1];
  return (a, b) => {
    const [ra, rb] = [rank(a), rank(b)];
    if (ra !== undefined && rb !== undefined) return Number(rb) - Number(ra);
    if (ra === undefined && rb === undefined) return a.path < b.path ? -1 : a.path > b.path ? 1 : 0;
    return a.mtimeMs - b.mtimeMs;
  };
}

export interface Line {
  /** the line without its newline; null when it was longer than the limit (skipped unread) */
  bytes: Uint8Array | null;
  /** offset of its first byte */
  start: number;
  /** offset just after its newline */
  end: number;
}

/**
 * Cuts the bytes read from a file into lines. A last line without its newline yet is held
 * until the newline arrives; one growing past `maxLine` bytes is not held but counted as
 * skipped once its newline comes, so memory stays bounded.
 */
export class LineSplitter {
  private carry: Uint8Array[] = [];
  private carryBytes = 0;
  private oversize = false;
  /** offset of the line being read: every byte before it was handed out */
  lineStart: number;
  /** offset of the next byte to read */
  position: number;

  constructor(
    offset: number,
    private readonly maxLine: number,
  ) {
    this.lineStart = offset;
    this.position = offset;
  }

  /** The complete lines of `chunk`, the bytes read at `position`. */
  *split(chunk: Uint8Array): Generator<Line> {
    const base = this.position;
    this.position += chunk.length;
    let from = 0;
    for (;;) {
      const newline = chunk.indexOf(0x0a, from);
      if (newline < 0) break;
      let bytes: Uint8Array | null = null;
      if (!this.oversize) {
        const tail = chunk.subarray(from, newline);
        bytes = this.carryBytes === 0 ? tail : Buffer.concat([...this.carry, tail]);
      }
      const line = { bytes, start: this.lineStart, end: base + newline + 1 };
      this.carry = [];
      this.carryBytes = 0;
      this.oversize = false;
      this.lineStart = line.end;
      from = newline + 1;
      yield line;
    }
    const rest = chunk.subarray(from);
    if (this.oversize || rest.length === 0) return;
    if (this.carryBytes + rest.length > this.maxLine) {
      this.oversize = true;
      this.carry = [];
      this.carryBytes = 0;
    } else {
      this.carry.push(rest.slice());
      this.carryBytes += rest.length;
    }
  }
}
