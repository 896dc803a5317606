// What was last stored under each key, per target (state_dir/uploaded.json), so that a file whose
// content is unchanged is not sent again. DESIGN §9: a key is forgotten durably before its object
// is sent, or a process killed after S3 stored new bytes and before this state was saved would
// leave the old hash here, and a later run whose partition went back to that content would skip
// it for good. Forgetting must be cheap (it happens before every changed object), so it is one
// fsynced line appended to state_dir/uploaded.forget, applied when the state is read and folded
// into uploaded.json at the next flush.
import { closeSync, existsSync, fsyncSync, openSync, readFileSync, rmSync, writeSync } from "node:fs";
import { dirname, join } from "node:path";
import { PRIVATE_FILE, readJson, syncDirectory, writeJsonAtomic } from "../state/atomic.ts";

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

interface Forgotten {
  target: string;
  key: string;
}

export class UploadState {
  private readonly statePath: string;
  private readonly forgetPath: string;
  private readonly state: UploadedState;
  /** this target's keys */
  private readonly stored: Record<string, Stored>;
  /** changes not yet in uploaded.json */
  private unflushed = 0;

  constructor(
    stateDir: string,
    private readonly target: string,
  ) {
    this.statePath = join(stateDir, "uploaded.json");
    this.forgetPath = join(stateDir, "uploaded.forget");
    this.state = readJson<UploadedState>(this.statePath, {});
    for (const { target: t, key } of this.readForgotten()) {
      if (this.state[t]?.[key]) {
        delete this.state[t][key];
        this.unflushed++;
      }
    }
    this.state[target] ??= {};
    this.stored = this.state[target]!;
  }

  /** The forget lines a killed process left (a torn last line was never acknowledged: ignored). */
  private readForgotten(): Forgotten[] {
    let text: string;
    try {
      text = readFileSync(this.forgetPath, "utf8");
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return [];
      throw error;
    }
    const out: Forgotten[] = [];
    for (const line of text.split("\n")) {
      try {
        const entry = JSON.parse(line) as Forgotten;
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

  /** Remember what was stored under `key` (saved at the next flush). */
  record(key: string, stored: Stored): void {
    this.stored[key] = stored;
    this.unflushed++;
  }

  /**
   * Forget `keys` on disk before anything is sent under them: once this returns, no crash can
   * bring their hashes back. Keys the state does not hold cost nothing.
   */
  forgetDurably(keys: readonly string[]): void {
    const held = keys.filter((key) => key in this.stored);
    if (held.length === 0) return;
    const created = !existsSync(this.forgetPath);
    const fd = openSync(this.forgetPath, "a", PRIVATE_FILE);
    try {
      writeSync(fd, held.map((key) => `${JSON.stringify({ target: this.target, key })}\n`).join(""));
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    if (created) syncDirectory(dirname(this.forgetPath));
    for (const key of held) delete this.stored[key];
    this.unflushed += held.length;
  }

  /** Write uploaded.json with every change (atomically, durably), then drop the forget lines it holds. */
  flush(): void {
    if (this.unflushed === 0) return;
    writeJsonAtomic(this.statePath, this.state);
    rmSync(this.forgetPath, { force: true });
    this.unflushed = 0;
  }

  get pending(): number {
    return this.unflushed;
  }
}
