// The offsets database of the tail input: per file, its identity and the offset up to which
// everything was uploaded. Written atomically after each upload, never before it: a crash
// re-reads from the last committed offset, and the deterministic keys make the re-upload
// overwrite what the lost attempt may have stored.
import { join } from "node:path";
import type { Config } from "../config/types.ts";
import { readJson, writeJsonAtomic } from "../state/atomic.ts";
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
  /** ISO time of the last upload from this file */
  last_upload: string | null;
  /**
   * Fixed (and saved) before the first upload from the file, from its device, inode and
   * fingerprint: the object keys derive from it, so they stay the same when the file is renamed
   * or read from a copytruncate copy.
   */
  file_id: string | null;
  /** the time of the last committed event, for later events that carry none */
  last_event_time: string | null;
  /**
   * The file's size when this checkpoint was saved (absent in older checkpoints): a file gone
   * later with `offset` at or past it had been shipped to the end of what was seen of it.
   */
  size_seen?: number;
}

interface CheckpointFile {
  version: 1;
  files: FileCheckpoint[];
}

export function logshipDir(stateDir: string): string {
  return join(stateDir, "logship");
}

export function checkpointPath(stateDir: string): string {
  return join(logshipDir(stateDir), "checkpoints.json");
}

export function readCheckpoints(stateDir: string): FileCheckpoint[] {
  const path = checkpointPath(stateDir);
  const data = readJson<CheckpointFile>(path, { version: 1, files: [] });
  if (data.version !== 1 || !Array.isArray(data.files)) {
    throw new Error(
      `${path}: unknown checkpoint format; move it aside to ship every log file from its start`,
    );
  }
  return data.files;
}

export function writeCheckpoints(stateDir: string, files: readonly FileCheckpoint[]): void {
  const data: CheckpointFile = { version: 1, files: [...files] };
  writeJsonAtomic(checkpointPath(stateDir), data);
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
    const committed = file.size >= checkpoint.offset ? checkpoint.offset : 0;
    result.push({
      path: file.path,
      size: file.size,
      committed,
      unshipped: file.size - committed,
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
