// The local spool: files waiting to be uploaded, at `state_dir/spool/<datalake key>`. A file is
// written under a temporary name and renamed when complete, after its manifest entry (a sidecar
// `<key>.manifest.json`) is in place, so a file in the spool is always whole and described.
import { once } from "node:events";
import { createWriteStream, type Dirent, readSync, writeSync } from "node:fs";
import { mkdir, readdir, readFile, rename, rm, rmdir, stat } from "node:fs/promises";
import { basename, dirname, join, relative, sep } from "node:path";
import { Writable } from "node:stream";
import { createGzip, type Gzip } from "node:zlib";
import { messageOf } from "../errors.ts";
import { log } from "../log.ts";
import { atomicTempWriter, openOwnFile, PRIVATE_DIR, writeJsonAtomic } from "../state/atomic.ts";
import { closeWritten, writeBack } from "./disk-flush.ts";

export const MANIFEST_SUFFIX = ".manifest.json";
const TEMP_MARK = ".partial-";
/** Output is gathered into chunks of this size: few large writes are much faster than many small. */
const CHUNK_BYTES = 1 << 18;
/** A direct writer's chunk: hundreds of files open at once keep a few MiB. */
const DIRECT_CHUNK_BYTES = 1 << 14;
/** how much of a file is written before its write-back is started (sync_file_range) */
const WRITEBACK_BYTES = 8 << 20;
const encoder = new TextEncoder();
/**
 * Written chunks, shared by the writers: a partition's file reuses the previous one's instead of
 * touching fresh memory (the page faults of new chunks cost more than the copying).
 */
const freeChunks: Buffer[] = [];
const FREE_CHUNKS = 8;
const takeChunk = (): Buffer => freeChunks.pop() ?? Buffer.allocUnsafe(CHUNK_BYTES);
const giveChunk = (chunk: Buffer): void => {
  if (freeChunks.length < FREE_CHUNKS) freeChunks.push(chunk);
};

export interface ManifestEntry {
  /** the datalake object key, relative to the bucket or the local datalake root */
  key: string;
  table: string;
  /** base partitions then field partitions, in key order */
  partitions: [string, string][];
  rows: number;
  /** bytes of the file as stored (compressed when gzip) */
  bytes: number;
  /**
   * Content hash of the file as stored: "xxh64:<hex>", chained over the written chunks. It only
   * tells whether a file equals what was uploaded before (64-bit xxHash, 20x cheaper than
   * SHA-256 here); the upload computes the cryptographic checksum of what it sends.
   */
  hash: string;
  written_at: string;
}

export function spoolDir(stateDir: string): string {
  return join(stateDir, "spool");
}

export class SpoolWriter {
  /** null: a synchronous writer's */
  private readonly file: Writable | null;
  /** a synchronous writer's file, until it is closed */
  private fd: number | null = null;
  private readonly gzip: Gzip | null;
  private hash = 0n;
  // Encoded output gathers here until it is full, then goes to the file as one write.
  private chunk: Buffer;
  private used = 0;
  private bytes = 0;
  private rows = 0;
  private closed = false;
  /** a synchronous writer's: where the part of its file whose write-back has not started begins */
  private writebackFrom = 0;

  private constructor(
    readonly spool: string,
    readonly key: string,
    /** null: a dry run's writer, which keeps nothing */
    private readonly tempPath: string | null,
    compress: boolean,
    /**
     * how chunks reach the file: a stream (compressed files, dry runs), synchronous writes of
     * whole chunks (plain files), or of small chunks (openDirect)
     */
    private readonly mode: "stream" | "sync" | "direct" = "stream",
  ) {
    if (mode !== "stream") {
      if (compress || tempPath === null)
        throw new Error(`${key}: a synchronous spool writer writes a plain file`);
      this.chunk = mode === "direct" ? Buffer.allocUnsafe(DIRECT_CHUNK_BYTES) : takeChunk();
      this.file = null;
      this.gzip = null;
      this.fd = openOwnFile(tempPath, "w+");
      return;
    }
    this.chunk = takeChunk();
    this.file =
      tempPath === null
        ? new Writable({ highWaterMark: CHUNK_BYTES, write: (_chunk, _encoding, done) => done() })
        : createWriteStream(tempPath, { highWaterMark: CHUNK_BYTES, fd: openOwnFile(tempPath, "w") });
    this.file.on("error", () => {});
    this.gzip = compress ? createGzip() : null;
    if (this.gzip) {
      this.gzip.on("data", (chunk: Buffer) => this.count(chunk));
      this.gzip.pipe(this.file);
    }
  }

  /**
   * A plain file is written synchronously, a chunk at a time: the page cache takes it at once,
   * where a stream's write would pause the MySQL connection until a pool thread had done it.
   */
  static async open(spool: string, key: string): Promise<SpoolWriter> {
    const compress = key.endsWith(".gz");
    return new SpoolWriter(spool, key, await tempPathFor(spool, key), compress, compress ? "stream" : "sync");
  }

  /**
   * A writer for one of hundreds of files written at once (partition-scan.ts): a 16 KiB chunk
   * written synchronously when full, not a stream with its chunks in flight and a promise to
   * wait on; never compressed. The same bytes, manifest and commit as open()'s.
   */
  static async openDirect(spool: string, key: string): Promise<SpoolWriter> {
    return new SpoolWriter(spool, key, await tempPathFor(spool, key), false, "direct");
  }

  /**
   * A dry run's writer: it encodes, compresses, counts and hashes exactly as open()'s does, and
   * keeps nothing; its commit() describes the file that would have been written.
   */
  static discarding(key: string): SpoolWriter {
    return new SpoolWriter("", key, null, key.endsWith(".gz"));
  }

  private count(chunk: Uint8Array): void {
    this.hash = BigInt(Bun.hash.xxHash64(chunk, this.hash));
    this.bytes += chunk.length;
  }

  /**
   * Append encoded text or bytes (copied: the caller may reuse its buffer at once); returns a
   * promise when the caller should wait (backpressure).
   */
  write(data: string | Uint8Array, rows = 0): Promise<void> | undefined {
    this.rows += rows;
    let waiting: Promise<void> | undefined;
    if (this.mode === "direct" && typeof data !== "string" && this.used + data.length > this.chunk.length) {
      // A large piece goes to the file as it is, after what the chunk holds.
      this.drain();
      if (data.length >= this.chunk.length / 2) {
        this.bytes += data.length;
        this.writeDirect(data);
        return undefined;
      }
    }
    if (typeof data !== "string") {
      let from = 0;
      for (;;) {
        const n = Math.min(data.length - from, this.chunk.length - this.used);
        this.chunk.set(data.subarray(from, from + n), this.used);
        this.used += n;
        from += n;
        if (from === data.length) return waiting;
        waiting = this.drain() ?? waiting;
      }
    }
    let rest = data;
    for (;;) {
      const { read, written } = encoder.encodeInto(rest, this.chunk.subarray(this.used));
      this.used += written;
      if (read === rest.length) break;
      rest = rest.slice(read);
      waiting = this.drain() ?? waiting;
    }
    return waiting;
  }

  private drain(): Promise<void> | undefined {
    if (this.used === 0) return undefined;
    if (this.file === null) {
      const full = this.chunk.subarray(0, this.used);
      if (this.mode === "sync") this.count(full);
      else this.bytes += full.length;
      this.writeDirect(full);
      this.used = 0;
      return undefined;
    }
    const full = this.chunk.subarray(0, this.used);
    const buffer = this.chunk;
    // Chunks are reused once written: a steady few, not a stream of garbage for the GC.
    this.chunk = takeChunk();
    this.used = 0;
    const target: Writable = this.gzip ?? this.file;
    if (!this.gzip) this.count(full);
    const done = () => giveChunk(buffer);
    if (target.write(full, done)) return undefined;
    return once(target, "drain").then(() => undefined);
  }

  /**
   * Flush, write the manifest entry, then rename the file into place. No fsync here: a process
   * crash cannot tear a rename, and the caller makes the spool durable with one
   * syncFilesystem() before it advances any watermark (one fsync per file cost more than the
   * extraction of small partitions).
   */
  async commit(meta: { table: string; partitions: [string, string][] }): Promise<ManifestEntry> {
    await this.drain();
    this.closed = true;
    if (this.file) {
      giveChunk(this.chunk);
      const finished = once(this.file, "close");
      (this.gzip ?? this.file).end();
      await finished;
    } else {
      if (this.mode === "sync") giveChunk(this.chunk);
      else this.hashDirect();
      // The rest of a complete file goes to the disk now, not at the sync.
      this.writeBackRest();
      this.closeDirect();
    }
    const entry: ManifestEntry = {
      key: this.key,
      table: meta.table,
      partitions: meta.partitions,
      rows: this.rows,
      bytes: this.bytes,
      hash: `xxh64:${this.hash.toString(16).padStart(16, "0")}`,
      written_at: new Date().toISOString(),
    };
    if (this.tempPath === null) return entry;
    const path = spoolPath(this.spool, this.key);
    writeJsonAtomic(`${path}${MANIFEST_SUFFIX}`, entry, false);
    await rename(this.tempPath, path);
    return entry;
  }

  private writeDirect(bytes: Uint8Array): void {
    if (this.fd === null) return;
    for (let at = 0; at < bytes.length; ) at += writeSync(this.fd, bytes, at);
    // The disk takes a big file while it is written (disk-flush.ts). `bytes` counts what is in
    // the file: both synchronous modes count a piece before writing it.
    if (this.bytes - this.writebackFrom >= WRITEBACK_BYTES) this.writeBackRest();
  }

  /** Start the write-back of what the file holds beyond the last one started (disk-flush.ts). */
  private writeBackRest(): void {
    if (this.fd === null) return;
    writeBack(this.fd, this.writebackFrom, this.bytes - this.writebackFrom);
    this.writebackFrom = this.bytes;
  }

  /**
   * The hash is chained over CHUNK_BYTES pieces, whatever wrote the file, so that the same content
   * has the same hash (an upload is skipped on it): a direct writer's is computed from its file,
   * read back from the page cache in those pieces.
   */
  private hashDirect(): void {
    const fd = this.fd!;
    const piece = takeChunk();
    try {
      for (let at = 0; at < this.bytes; ) {
        let n = 0;
        while (n < piece.length && at + n < this.bytes) n += readSync(fd, piece, n, piece.length - n, at + n);
        this.hash = BigInt(Bun.hash.xxHash64(piece.subarray(0, n), this.hash));
        at += n;
      }
    } finally {
      giveChunk(piece);
    }
  }

  private closeDirect(): void {
    if (this.fd === null) return;
    closeWritten(this.fd);
    this.fd = null;
  }

  /** Drop the partial file: nothing of it reaches the spool. */
  async abort(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      this.gzip?.destroy();
      this.file?.destroy();
      this.closeDirect();
    }
    if (this.tempPath !== null) await rm(this.tempPath, { force: true });
  }
}

/** A unique temporary name beside `key`'s file, its directories made. */
async function tempPathFor(spool: string, key: string): Promise<string> {
  const path = spoolPath(spool, key);
  await mkdir(dirname(path), { recursive: true, mode: PRIVATE_DIR });
  return spoolTempPath(path);
}

/** A temporary name beside the spool file `path`: cleanSpool removes what a killed run left. */
export function spoolTempPath(path: string): string {
  return `${path}${TEMP_MARK}${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
}

/** Every complete file of the spool with its manifest entry, oldest first. */
export async function listSpool(spool: string): Promise<ManifestEntry[]> {
  const entries: ManifestEntry[] = [];
  for (const name of await spoolNames(spool)) {
    if (!name.endsWith(MANIFEST_SUFFIX)) continue;
    const manifest = await readManifest(spool, name);
    if (manifest === null) continue;
    if (typeof manifest.entry === "string") {
      log.warn(
        `${manifest.path} is damaged (${manifest.entry}): ${manifest.key} is not uploaded; the next run removes it and extracts it again`,
        { key: manifest.key },
      );
      continue;
    }
    entries.push(manifest.entry);
  }
  return entries.sort((a, b) => a.written_at.localeCompare(b.written_at) || a.key.localeCompare(b.key));
}

/**
 * Remove temporary files and manifests left by a process that died mid-write, and each file
 * whose manifest is damaged (with the manifest): it cannot be told complete. Then the directories
 * that uploads left empty: every partition ever written had one, and each run walked them all.
 * Called under the lock, before this process writes to the spool.
 */
export async function cleanSpool(spool: string): Promise<number> {
  let removed = 0;
  let names: string[];
  try {
    names = await spoolNames(spool);
  } catch {
    return 0;
  }
  for (const name of names) {
    const path = join(spool, name);
    // A manifest's temporary file (src/state/atomic.ts) left by a process killed while writing it.
    const atomicTemp = atomicTempWriter(basename(name)) !== undefined;
    if (name.includes(TEMP_MARK) || atomicTemp) {
      await rm(path, { force: true });
      removed++;
      continue;
    }
    if (!name.endsWith(MANIFEST_SUFFIX)) continue;
    const manifest = await readManifest(spool, name);
    if (manifest === null) {
      // A manifest without its file is a write that died before the rename.
      await rm(path, { force: true });
      removed++;
    } else if (typeof manifest.entry === "string") {
      log.warn(
        `${manifest.path} is damaged (${manifest.entry}): removing it and ${manifest.key}, which the next extraction of its table writes again`,
        { key: manifest.key },
      );
      await removeFromSpool(spool, manifest.key);
      removed += 2;
    }
  }
  await removeEmptyDirectories(spool, names);
  return removed;
}

/** The spool's empty directories, deepest first (a parent empties once its children are gone). */
async function removeEmptyDirectories(spool: string, names: string[]): Promise<void> {
  const depth = (name: string) => name.split(sep).length;
  for (const name of names.toSorted((a, b) => depth(b) - depth(a))) {
    // Not a directory, or not empty: left as it is.
    await rmdir(join(spool, name)).catch(() => {});
  }
}

/**
 * Remove a file and its manifest entry from the spool (file first: a manifest alone is ignored);
 * given its entry, only while the manifest still describes it (the same key extracted again
 * since is left for its own upload).
 */
export async function removeFromSpool(spool: string, key: string | ManifestEntry): Promise<void> {
  const path = spoolPath(spool, typeof key === "string" ? key : key.key);
  if (typeof key !== "string") {
    const now = await readManifest(spool, `${relative(spool, path)}${MANIFEST_SUFFIX}`);
    const current = now?.entry;
    if (typeof current === "object" && (current.hash !== key.hash || current.written_at !== key.written_at)) {
      return;
    }
  }
  await rm(path, { force: true });
  await rm(`${path}${MANIFEST_SUFFIX}`, { force: true });
}

async function exists(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}

/**
 * Every name under the spool, relative to it; none when there is no spool yet. Symbolic links
 * are not followed (Bun's recursive readdir does): one planted by another user would lead
 * cleanSpool's deletes out of the spool, and its manifests would upload that user's files.
 */
async function spoolNames(spool: string): Promise<string[]> {
  const names: string[] = [];
  const walk = async (dir: string): Promise<void> => {
    let entries: Dirent[];
    try {
      entries = await readdir(join(spool, dir), { withFileTypes: true });
    } catch (error) {
      // A directory the uploader emptied and removed while it was listed: nothing left in it.
      if (dir !== "" && (error as NodeJS.ErrnoException).code === "ENOENT") return;
      throw error;
    }
    for (const entry of entries) {
      const name = dir === "" ? entry.name : join(dir, entry.name);
      if (entry.isSymbolicLink()) continue;
      names.push(name);
      if (entry.isDirectory()) await walk(name);
    }
  };
  try {
    await walk("");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT" && names.length === 0) return [];
    throw error;
  }
  return names;
}

/**
 * The manifest `name` (relative to the spool) with its key and path, and its entry or why it
 * cannot be trusted; null when its file is missing (a write that died before the rename: not
 * complete). Manifests are not fsynced one by one, so a power cut can leave one empty or torn;
 * the watermark of its table was not saved then (it is saved after the spool is synced), so the
 * next run extracts the file again.
 */
async function readManifest(
  spool: string,
  name: string,
): Promise<{ key: string; path: string; entry: ManifestEntry | string } | null> {
  // The file's path in the spool: its key, but for a component spoolPath() shortened.
  const file = name.slice(0, -MANIFEST_SUFFIX.length);
  const key = file.split(sep).join("/");
  if (!(await exists(join(spool, file)))) return null;
  const path = join(spool, name);
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    // Removed since the file was seen: uploaded meanwhile (`status` reads without the lock).
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw error;
  }
  const entry = parseManifest(text, (described) => spoolPath(spool, described) === join(spool, file));
  return { key: typeof entry === "string" ? key : entry.key, path, entry };
}

const MANIFEST_FIELDS: Record<keyof ManifestEntry, (value: unknown) => boolean> = {
  key: (v) => typeof v === "string",
  table: (v) => typeof v === "string" && v.length > 0,
  partitions: (v) => Array.isArray(v),
  rows: (v) => Number.isSafeInteger(v),
  bytes: (v) => Number.isSafeInteger(v),
  hash: (v) => typeof v === "string",
  written_at: (v) => typeof v === "string",
};

/** The manifest entry of a file (`ours`: whether a key is that file's), or why the text is not one. */
function parseManifest(text: string, ours: (key: string) => boolean): ManifestEntry | string {
  if (text.trim() === "") return "empty";
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    return `not JSON: ${messageOf(error)}`;
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) return "not a JSON object";
  const fields = value as Record<string, unknown>;
  const invalid = Object.entries(MANIFEST_FIELDS)
    .filter(([field, valid]) => !valid(fields[field]))
    .map(([field]) => field);
  if (invalid.length > 0) return `missing or invalid ${invalid.join(", ")}`;
  if (!ours(fields.key as string)) return `it describes ${String(fields.key)}`;
  return value as ManifestEntry;
}

/**
 * The longest path component kept as it is: file systems take 255 bytes, and a spool file's name
 * gets a temporary or manifest suffix.
 */
const COMPONENT_BYTES = 200;

/**
 * Where the file of `key` is in the spool: the key as a path, but a component too long for a file
 * name (a partition value of some 200 characters once encoded: S3 takes it, a file system does
 * not) is cut and ended with a hash of the whole. The manifest beside the file holds the key.
 */
export function spoolPath(spool: string, key: string): string {
  return join(
    spool,
    ...key
      .split("/")
      .map((part) =>
        Buffer.byteLength(part) <= COMPONENT_BYTES
          ? part
          : `${part.slice(0, 100)}~${Bun.hash.xxHash64(part).toString(16).padStart(16, "0")}`,
      ),
  );
}
