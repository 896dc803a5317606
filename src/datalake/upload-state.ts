// What was last stored under each key, per target (state_dir/uploaded.json), so that a file whose
// content is unchanged is not sent again. DESIGN §9: a key is forgotten durably before its object
// is sent, or a process killed after S3 stored new bytes and before this state was saved would
// leave the old hash here, and a later run whose partition went back to that content would skip
// it for good. Forgetting must be cheap (it happens before every changed object), so it is one
// fsynced line appended to a journal, state_dir/uploaded.forget; so is what was stored (a line
// with `stored`), written with the next forget or flush. The journal is applied in order when the
// state is read, and folded into uploaded.json once it holds an eighth as many lines as the state
// has keys: rewriting uploaded.json at every flush made a run that stores n objects write O(n²)
// bytes (30,000 partitions: 600 rewrites of up to 8.7 MB). The file keeps its name from when it
// held forget lines only: an older version reads a `stored` line as a forget, which is safe.
import { closeSync, existsSync, fsyncSync, readFileSync, rmSync, writeSync } from "node:fs";
import { dirname, join } from "node:path";
import { openOwnFile, readJson, syncDirectory, writeJsonAtomic } from "../state/atomic.ts";

export interface Stored {
  hash: string;
  /** bytes of the object as stored (compressed with gzip): what a listing of the datalake shows */
  bytes: number;
  /** CSV rows in it, header excluded (absent in states written before `verify` existed) */
  rows?: number;
  uploaded_at: string;
}

/** Per target (an operator may switch targets), per key: what was stored there last. */
type UploadedState = Record<string, Record<string, Stored>>;

/** A journal line: `key` forgotten, or (with `stored`) stored again. */
interface JournalLine {
  target: string;
  key: string;
  stored?: Stored;
}

/** Folded into uploaded.json when the journal holds this many lines per key of the state. */
const FOLD_RATIO = 1 / 8;

export class UploadState {
  private readonly statePath: string;
  private readonly forgetPath: string;
  private readonly state: UploadedState;
  /** this target's keys */
  private readonly stored: Record<string, Stored>;
  /** journal lines not written yet (what was stored since the last write) */
  private unwritten: string[] = [];
  /** lines in the journal file: changes not yet in uploaded.json */
  private journaled = 0;
  /** keys of every target, as uploaded.json will hold them */
  private keys = 0;

  constructor(
    stateDir: string,
    private readonly target: string,
  ) {
    this.statePath = join(stateDir, "uploaded.json");
    this.forgetPath = join(stateDir, "uploaded.forget");
    this.state = readJson<UploadedState>(this.statePath, {});
    for (const { target: t, key, stored } of this.readJournal()) {
      this.journaled++;
      const kept = this.state[t] ?? {};
      if (stored) kept[key] = stored;
      else delete kept[key];
      this.state[t] = kept;
    }
    this.state[target] ??= {};
    this.stored = this.state[target]!;
    for (const stored of Object.values(this.state)) this.keys += Object.keys(stored).length;
  }

  /** The journal a run left (a torn last line was never acknowledged: ignored). */
  private readJournal(): JournalLine[] {
    let text: string;
    try {
      text = readFileSync(this.forgetPath, "utf8");
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return [];
      throw error;
    }
    const out: JournalLine[] = [];
    for (const line of text.split("\n")) {
      try {
        const entry = JSON.parse(line) as JournalLine;
        if (typeof entry.target === "string" && typeof entry.key === "string") out.push(entry);
      } catch {
        // the torn end of a line whose fsync never returned
      }
    }
    return out;
  }

  get(key: string): Stored | undefined {
    return this.stored[key];
  }

  has(key: string): boolean {
    return key in this.stored;
  }

  /** Every key this target's state remembers, with what was stored there. */
  entries(): [string, Stored][] {
    return Object.entries(this.stored);
  }

  /** Remember what was stored under `key` (on disk after the next flush or forget). */
  record(key: string, stored: Stored): void {
    if (!(key in this.stored)) this.keys++;
    this.stored[key] = stored;
    this.unwritten.push(`${JSON.stringify({ target: this.target, key, stored })}\n`);
  }

  /**
   * Forget `keys` on disk before anything is sent under them: once this returns, no crash can
   * bring their hashes back. Keys the state does not hold cost nothing.
   */
  forgetDurably(keys: readonly string[]): void {
    const held = keys.filter((key) => key in this.stored);
    if (held.length === 0) return;
    // What was stored before goes first: the journal is applied in order.
    this.writeJournal(held.map((key) => `${JSON.stringify({ target: this.target, key })}\n`));
    for (const key of held) delete this.stored[key];
    this.keys -= held.length;
  }

  /** Append the lines not written yet, then `lines`, to the journal, durably. */
  private writeJournal(lines: string[] = []): void {
    const text = this.unwritten.join("") + lines.join("");
    if (text === "") return;
    const count = this.unwritten.length + lines.length;
    const created = !existsSync(this.forgetPath);
    const fd = openOwnFile(this.forgetPath, "a");
    try {
      writeSync(fd, text);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    if (created) syncDirectory(dirname(this.forgetPath));
    this.unwritten = [];
    this.journaled += count;
  }

  /**
   * Every change on disk, durably: appended to the journal, and the journal folded into
   * uploaded.json (written atomically) once it has grown to FOLD_RATIO of the state. Folding at a
   * ratio keeps the bytes a run writes linear in what it stores.
   */
  flush(): void {
    this.writeJournal();
    if (this.journaled === 0 || this.journaled < this.keys * FOLD_RATIO) return;
    writeJsonAtomic(this.statePath, this.state);
    rmSync(this.forgetPath, { force: true });
    this.journaled = 0;
  }

  /** Changes not on disk yet. */
  get pending(): number {
    return this.unwritten.length;
  }
}
