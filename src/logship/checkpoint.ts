// The offsets database of the tail input: per file, its identity and the offset up to which
// everything was uploaded. Written atomically after each upload, never before it: a crash
// re-reads from the last committed offset, and the deterministic keys make the re-upload
// overwrite what the lost attempt may have stored.
import { join } from "node:path";
import type { Config } from "../config/types.ts";
import { readJson, writeJsonAtomic } from "../state/atomic.ts";
import { stateDirError } from "../state/state-dir.ts";
import {
  type FileInfo,
  type Fingerprint,
  resolveLogPaths,
  rotationCandidates,
  sameFile,
  statFile,
} from "./tail.ts";

// Checkpoints written by earlier versions also hold `origin` (where the file was first found):
// carried along, never read.
export interface FileCheckpoint extends Fingerprint {
  /** where the file was last seen: where it was found, or a rotated name beside it */
  path: string;
  /** its file name when first seen: rotated names start with it */
  base: string;
  dev: string;
  ino: string;
  /** everything before this byte offset was uploaded */
  offset: number;
  /**
   * sha256 of the TAIL_BYTES (fewer near the start) just before `offset` (absent in older
   * checkpoints, and when they were not at hand): a file that starts with the same bytes but
   * holds others before the offset is new content (truncated, then regrown past it).
   */
  tail?: string;
  /** ISO time of the last upload from this file */
  last_upload: string | null;
  /**
   * Fixed (and saved) before the first upload from the file, from its device, inode,
   * fingerprint and a random nonce (another file may have all three later): the object keys
   * derive from it, so they stay the same when the file is renamed or read from a copytruncate
   * copy, and differ from any other file's.
   */
  file_id: string | null;
  /**
   * The file id of the content the same file held before it was truncated: this content's id is
   * made from it too, so that new content starting with the same bytes gets keys of its own.
   */
  replaced_id?: string;
  /** the time of the last committed event, for later events that carry none */
  last_event_time: string | null;
  /**
   * How far the file had been read when this checkpoint was saved (absent in older
   * checkpoints): a file gone later with `offset` at or past it had been shipped to the end of
   * what was seen of it.
   */
  size_seen?: number;
  /** the lines between `offset` and `size_seen` (a last line without its newline counts) */
  lines_seen?: number;
  /**
   * A gzip file (a compressed rotation), read whole once: its compressed size then, and its
   * uncompressed size. `offset` and `size_seen` count uncompressed bytes.
   */
  gzip?: { size: number; content: number };
}

/** Lines of one log (its live path) lost in files removed before log-ship finished them. */
export interface LogLoss {
  lines: number;
  bytes: number;
  /** how many removed files they were in */
  files: number;
  /** removed files whose lost lines could not be counted (their end was never read) */
  uncounted_files: number;
  /** ISO time of the last loss */
  last: string;
}

/** `loss` with one more file removed, and the lines and bytes lost in it (null: not known). */
export function addedLoss(loss: LogLoss | undefined, lost: { lines: number; bytes: number } | null): LogLoss {
  const before = loss ?? { lines: 0, bytes: 0, files: 0, uncounted_files: 0, last: "" };
  return {
    lines: before.lines + (lost?.lines ?? 0),
    bytes: before.bytes + (lost?.bytes ?? 0),
    files: before.files + (lost ? 1 : 0),
    uncounted_files: before.uncounted_files + (lost ? 0 : 1),
    last: new Date().toISOString(),
  };
}

/** The offsets database: the files, the time of the last run, the losses so far. */
export interface CheckpointState {
  files: FileCheckpoint[];
  /**
   * ISO time from which the last completed log-ship pass looked for files (absent before the
   * first): a rotated file that matches no checkpoint and was written after it came and went
   * while log-ship was down; one written before it is another shipper's history.
   */
  last_run?: string;
  /** per log (its live path) */
  losses?: Record<string, LogLoss>;
}

interface CheckpointFile extends CheckpointState {
  version: 1;
}

export function logshipDir(stateDir: string): string {
  return join(stateDir, "logship");
}

export function checkpointPath(stateDir: string): string {
  return join(logshipDir(stateDir), "checkpoints.json");
}

export function readCheckpointState(stateDir: string): CheckpointState {
  const path = checkpointPath(stateDir);
  const { version, ...state } = readJson<CheckpointFile>(path, { version: 1, files: [] });
  if (version !== 1 || !Array.isArray(state.files)) {
    throw new Error(
      `${path}: unknown checkpoint format; move it aside to ship every log file from its start`,
    );
  }
  return state;
}

export function readCheckpoints(stateDir: string): FileCheckpoint[] {
  return readCheckpointState(stateDir).files;
}

export function writeCheckpointState(stateDir: string, state: CheckpointState): void {
  const data: CheckpointFile = { version: 1, ...state };
  const path = checkpointPath(stateDir);
  try {
    writeJsonAtomic(path, data);
  } catch (error) {
    // A full or read-only state_dir fails a write(2) that names no path: say which, and the fix.
    throw stateDirError(stateDir, error, path);
  }
}

/** Where a checkpointed file is now, by device and inode: at its path or renamed beside it. */
export function findByInode(checkpoint: FileCheckpoint): FileInfo | null {
  const here = statFile(checkpoint.path);
  if (here && sameFile(here, checkpoint)) return here;
  return rotationCandidates(checkpoint.path, checkpoint.base).find((c) => sameFile(c, checkpoint)) ?? null;
}

export interface LogShipFileStatus {
  path: string;
  size: number;
  /** bytes uploaded (and committed) from the start of the file */
  committed: number;
  /** bytes not shipped yet */
  unshipped: number;
  /** ISO time of the last upload from this file, null when none */
  last_upload: string | null;
}

/**
 * Shipping lag per file, for `status`: each checkpointed file still on disk (rotated ones
 * included) and each configured file not read yet. Reads only; a file truncated below its
 * offset counts as unshipped from its start.
 */
export function logShipStatus(config: Config): LogShipFileStatus[] {
  const result: LogShipFileStatus[] = [];
  const seen: FileInfo[] = [];
  for (const checkpoint of readCheckpoints(config.state_dir)) {
    const file = findByInode(checkpoint);
    if (!file) continue;
    seen.push(file);
    // A gzip file counts its uncompressed bytes, like its offset.
    const size = checkpoint.gzip?.content ?? file.size;
    const committed = size >= checkpoint.offset ? checkpoint.offset : 0;
    result.push({
      path: file.path,
      size,
      committed,
      unshipped: size - committed,
      last_upload: checkpoint.last_upload,
    });
  }
  for (const path of resolveLogPaths(config.logs)) {
    const file = statFile(path);
    if (!file || seen.some((s) => sameFile(s, file))) continue;
    result.push({ path, size: file.size, committed: 0, unshipped: file.size, last_upload: null });
  }
  return result;
}

/** Lines lost per log, for `status`: files removed before log-ship finished them. */
export function logShipLosses(config: Config): ({ log: string } & LogLoss)[] {
  const losses = readCheckpointState(config.state_dir).losses ?? {};
  return Object.entries(losses)
    .map(([log, loss]) => ({ log, ...loss }))
    .sort((a, b) => (a.log < b.log ? -1 : 1));
}
