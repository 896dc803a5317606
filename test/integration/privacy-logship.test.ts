// Log-ship's crash safety with pseudonyms on (DESIGN §11): SIGKILL at random moments while a
// writer appends and rotates, then one --once: every event in the datalake exactly once, in
// source order, its personal fields replaced and every other byte as written.
import { afterAll, describe, expect, test } from "bun:test";
import { createHmac, randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { EventPseudonyms } from "../../src/logship/event-pseudonyms.ts";
import { DEFAULT_LOG_FIELDS } from "../../src/privacy/fields.ts";
import { Pseudonymizer } from "../../src/privacy/pseudonym.ts";
import { cleanEnv, runPanorama } from "../support/cli.ts";
import { spawnFollow, startWriter, waitForLock } from "../support/log-ship-process.ts";
import { logShipSetup, shippedObjects, writerEvent } from "../support/log-writer.ts";

const env = cleanEnv();
const KEY = randomBytes(32);
const keyDir = mkdtempSync(join(tmpdir(), "panorama-privacy-key-"));
const keyFile = join(keyDir, "pseudonym.key");
writeFileSync(keyFile, KEY, { mode: 0o600 });
const cleanup = [keyDir];
afterAll(() => {
  for (const dir of cleanup) rmSync(dir, { recursive: true, force: true });
});

/** The writer nests each fixture event under "event": its personal fields, one level down. */
const EXTRA = [
  "event.context.username",
  "event.context.ip",
  "event.data.username",
  "event.data.target_username",
];

function reference(value: string): string {
  const digest = createHmac("sha256", KEY).update(value, "utf8").digest();
  const bits = [...digest].map((b) => b.toString(2).padStart(8, "0")).join("");
  let out = "pz_";
  for (let i = 0; i < 130; i += 5)
    out += "abcdefghijklmnopqrstuvwxyz234567"[Number.parseInt(bits.slice(i, i + 5), 2)];
  return out;
}

describe("crash safety with pseudonyms", () => {
  test("SIGKILL at 10 random moments while a writer appends and rotates: every event exactly once, pseudonymized", async () => {
    const setup = logShipSetup({
      logs: `max_file_size = "8K"\nformat = "auto"\n\n[privacy]\npseudonymize = true\nkey_file = "${keyFile}"\nlog_fields = ${JSON.stringify(EXTRA)}`,
    });
    cleanup.push(setup.dir);
    // The first run, before any rotation: rotated files older than it would be another shipper's
    // history (DESIGN §8), and a loaded machine may take seconds to start the first follower.
    writeFileSync(setup.file, "");
    expect((await runPanorama(["--config", setup.configFile, "log-ship", "--once"], { env })).code).toBe(0);
    const writer = await startWriter([
      "--file",
      setup.file,
      "--format",
      "prefixed",
      "--rate",
      "400",
      "--rotate-every",
      "900",
      "--rotate",
      "rename,copytruncate",
    ]);
    for (let kills = 0; kills < 10; kills++) {
      const follower = spawnFollow(setup.configFile, "ignore");
      await waitForLock(setup.stateDir, follower.pid);
      await Bun.sleep(kills % 2 === 0 ? 40 + Math.random() * 160 : 200 + Math.random() * 800);
      follower.kill("SIGKILL");
      expect(await follower.exited).not.toBe(0);
      await Bun.sleep(Math.random() * 400);
    }
    const { written } = await writer.stop();
    const final = await runPanorama(["--config", setup.configFile, "--json", "log-ship", "--once"], { env });
    expect(final.code).toBe(0);
    expect(written).toBeGreaterThan(1500);

    const rewriter = new EventPseudonyms([...DEFAULT_LOG_FIELDS, ...EXTRA], new Pseudonymizer(KEY));
    const expected = (seq: number) =>
      Buffer.from(rewriter.rewrite(new TextEncoder().encode(writerEvent(seq)))).toString("latin1");
    const count = new Array<number>(written + 1).fill(0);
    const byFile = new Map<string, number[]>();
    let replaced = 0;
    for (const object of shippedObjects(setup.datalake)) {
      const seqs = byFile.get(object.fileId) ?? [];
      byFile.set(object.fileId, seqs);
      for (const line of object.lines) {
        const seq = Number(/"seq": (\d+)/.exec(line)?.[1]);
        expect(line).toBe(expected(seq));
        // Independently of the rewriter: the nested username is the keyed pseudonym of the original.
        const original = (JSON.parse(writerEvent(seq)) as { event: { context?: { username?: unknown } } })
          .event;
        const username = original.context?.username;
        if (typeof username === "string" && username !== "") {
          const shipped = JSON.parse(Buffer.from(line, "latin1").toString("utf8")) as typeof original & {
            event: { context: { username: string } };
          };
          expect(shipped.event.context.username).toBe(reference(username));
          replaced++;
        }
        seqs.push(seq);
        count[seq] = (count[seq] ?? 0) + 1;
      }
    }
    for (const seqs of byFile.values()) {
      for (let i = 1; i < seqs.length; i++) expect(seqs[i]!).toBe(seqs[i - 1]! + 1);
    }
    const wrong = count.map((n, seq) => [seq, n]).filter(([seq, n]) => seq! > 0 && n !== 1);
    expect(wrong).toEqual([]);
    expect(replaced).toBeGreaterThan(written / 2);
  }, 120_000);
});
