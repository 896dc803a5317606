// DESIGN §8, exactly once under copytruncate while --follow runs: the rotation lands anywhere in
// a pass, between the follower's steps. A pass first checks each followed file (locate), then
// looks for new files (discover), then reads. These tests make the copy, the truncation and the
// writer's next lines at a chosen step of a pass (the follower driven directly, its discovery
// step wrapped), and check that every line is read once: CI saw the live file's lines read twice
// when the copy was judged against the live file after it had been truncated and written again.
import { afterAll, expect, test } from "bun:test";
import { appendFileSync, copyFileSync, renameSync, truncateSync, writeFileSync } from "node:fs";
import { setupLogging } from "../../src/log.ts";
import { FileFollower, type FollowedFile, type LineReceiver } from "../../src/logship/follower.ts";
import { logShipSetup, removeLogShipSetups, writerEvent } from "../support/log-writer.ts";

setupLogging({ level: "error" });
afterAll(removeLogShipSetups);

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);
const text = (seqs: number[]) => seqs.map((seq) => `${writerEvent(seq)}\n`).join("");

/** A receiver that keeps the sequence number of every line handed to it, and commits each pass. */
class Recorder implements LineReceiver {
  readonly seqs: number[] = [];
  follower: FileFollower | null = null;

  line(_file: FollowedFile, line: { bytes: Uint8Array | null }): undefined {
    const seq = /"seq": (\d+)/.exec(Buffer.from(line.bytes ?? new Uint8Array()).toString())?.[1];
    this.seqs.push(Number(seq));
    return undefined;
  }

  async caughtUp(file: FollowedFile): Promise<void> {
    this.follower?.commit(file, file.splitter.lineStart, null, false);
  }

  async flush(file: FollowedFile): Promise<void> {
    await this.caughtUp(file);
  }

  pending(): boolean {
    return false;
  }

  unshippedLines(): number {
    return 0;
  }
}

/** Each line number read how many times, when not once. */
function notOnce(seqs: number[], written: number[]): Record<number, number> {
  const count = new Map<number, number>(written.map((seq) => [seq, 0]));
  for (const seq of seqs) count.set(seq, (count.get(seq) ?? 0) + 1);
  return Object.fromEntries([...count].filter(([, n]) => n !== 1));
}

/** A follower (--follow) whose discovery step runs `before` first, on the pass `when()` says. */
function followerWith(setup: ReturnType<typeof logShipSetup>, recorder: Recorder) {
  const follower = new FileFollower(setup.config, recorder, { follow: true });
  recorder.follower = follower;
  let before: (() => void) | null = null;
  // Its discovery step, private: wrapped, so that the files change at that moment of a pass.
  const steps = follower as unknown as { discover: () => Promise<void> };
  const discover = steps.discover.bind(follower);
  steps.discover = async () => {
    const run = before;
    before = null;
    run?.();
    await discover();
  };
  return {
    follower,
    /** what happens after the next pass checked the followed files, before it looks for new ones */
    beforeDiscovery(work: () => void) {
      before = work;
    },
  };
}

/** `body` with a new setup's follower and recorder; the follower closed after, whatever happened. */
async function race(
  body: (r: {
    setup: ReturnType<typeof logShipSetup>;
    recorder: Recorder;
    follower: FileFollower;
    beforeDiscovery: (action: () => void) => void;
  }) => Promise<void>,
): Promise<void> {
  const setup = logShipSetup();
  const recorder = new Recorder();
  const { follower, beforeDiscovery } = followerWith(setup, recorder);
  try {
    await body({ setup, recorder, follower, beforeDiscovery });
  } finally {
    follower.close();
  }
}

test("copytruncate after the live file was checked, new lines written before new files are looked for: the copy is not a new file, each line once", () =>
  race(async ({ setup, recorder, follower, beforeDiscovery }) => {
    writeFileSync(setup.file, text(range(1, 10)));
    await follower.pass(false);
    appendFileSync(setup.file, text(range(11, 15)));
    await follower.pass(false);
    // The live file (1-15, all read) was checked by this pass; then it is copied to .1,
    // truncated, and written again, before the pass looks at the files beside it.
    appendFileSync(setup.file, text(range(16, 18)));
    beforeDiscovery(() => {
      copyFileSync(setup.file, `${setup.file}.1`);
      truncateSync(setup.file, 0);
      appendFileSync(setup.file, text(range(19, 22)));
    });
    await follower.pass(false);
    appendFileSync(setup.file, text(range(23, 25)));
    await follower.pass(false);
    await follower.pass(false);
    expect(notOnce(recorder.seqs, range(1, 25))).toEqual({});
    expect(recorder.seqs.toSorted((a, b) => a - b)).toEqual(range(1, 25));
  }));

test("copytruncate of a live file created by a rename rotation, after it was checked: the renamed file and the copy each once", () =>
  race(async ({ setup, recorder, follower, beforeDiscovery }) => {
    writeFileSync(setup.file, text(range(1, 10)));
    await follower.pass(false);
    renameSync(setup.file, `${setup.file}.1`);
    writeFileSync(setup.file, text(range(11, 20)));
    await follower.pass(false);
    appendFileSync(setup.file, text(range(21, 24)));
    beforeDiscovery(() => {
      // logrotate's copytruncate: the numbered files move up, then the copy, then the truncation.
      renameSync(`${setup.file}.1`, `${setup.file}.2`);
      copyFileSync(setup.file, `${setup.file}.1`);
      truncateSync(setup.file, 0);
      appendFileSync(setup.file, text(range(25, 26)));
    });
    await follower.pass(false);
    await follower.pass(false);
    expect(notOnce(recorder.seqs, range(1, 26))).toEqual({});
  }));

test("copytruncate with no line written after it, the pass between the copy and the truncation: each line once", () =>
  race(async ({ setup, recorder, follower, beforeDiscovery }) => {
    writeFileSync(setup.file, text(range(1, 10)));
    await follower.pass(false);
    appendFileSync(setup.file, text(range(11, 14)));
    beforeDiscovery(() => copyFileSync(setup.file, `${setup.file}.1`));
    await follower.pass(false);
    truncateSync(setup.file, 0);
    await follower.pass(false);
    appendFileSync(setup.file, text(range(15, 16)));
    await follower.pass(false);
    expect(notOnce(recorder.seqs, range(1, 16))).toEqual({});
  }));
