// DESIGN §9: before an object is sent, the upload state forgets that key durably. Here a "crash"
// is a new UploadState read from disk at the moment the target is asked to store: what a process
// killed at that point (or right after S3's 200) would find on its next start.
import { afterAll, describe, expect, test } from "bun:test";
import {
  appendFileSync,
  existsSync,
  mkdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { dirname, join } from "node:path";
import type { Config } from "../../src/config/types.ts";
import { type ManifestEntry, spoolDir } from "../../src/datalake/spool.ts";
import type { Target } from "../../src/datalake/targets.ts";
import { Uploader } from "../../src/datalake/upload.ts";
import { UploadState } from "../../src/datalake/upload-state.ts";
import { tempConfig } from "../support/temp-config.ts";

const KEY = "openedx/grades/lms=lms.example.com/course_id=a/grades.csv";
const TARGET = "s3://acme-panorama";
const configs: Config[] = [];

function config(): Config {
  const cfg = tempConfig({ datalake: `target = "s3"\nbucket = "acme-panorama"` });
  configs.push(cfg);
  return cfg;
}

afterAll(() => {
  for (const cfg of configs) rmSync(dirname(cfg.state_dir), { recursive: true, force: true });
});

function spooled(cfg: Config, key: string, text: string): ManifestEntry {
  const path = join(spoolDir(cfg.state_dir), key);
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, text);
  return {
    key,
    table: "grades",
    partitions: [["course_id", "a"]],
    rows: 1,
    bytes: text.length,
    hash: `xxh64:${Bun.hash.xxHash64(text).toString(16)}`,
    written_at: new Date().toISOString(),
  };
}

/** A bucket in memory; `onPut` runs when a PUT arrives, before it is stored. */
function memoryTarget(onPut: (key: string) => void = () => {}): Target & { objects: Map<string, string> } {
  const objects = new Map<string, string>();
  return {
    description: TARGET,
    objects,
    async put(key, path) {
      onPut(key);
      objects.set(key, await Bun.file(path).text());
    },
    async delete(key) {
      objects.delete(key);
    },
    async list(prefix) {
      return [...objects]
        .filter(([key]) => key.startsWith(prefix))
        .map(([key, text]) => ({ key, size: text.length }));
    },
    async listDirectories() {
      return [];
    },
  };
}

async function upload(cfg: Config, target: Target, entry: ManifestEntry): Promise<unknown> {
  const uploader = new Uploader(cfg, target);
  await uploader.enqueue(entry);
  await uploader.drain();
  return uploader.failure?.error ?? null;
}

describe("the upload state before an object is sent", () => {
  test("a changed key is already forgotten on disk when its PUT starts, and so is the variant it deletes", async () => {
    const cfg = config();
    const seen: (string | undefined)[] = [];
    const target = memoryTarget((key) => {
      const onDisk = new UploadState(cfg.state_dir, TARGET);
      seen.push(onDisk.get(key)?.hash, onDisk.get(`${key}.gz`)?.hash);
    });
    expect(await upload(cfg, target, spooled(cfg, KEY, "id\r\n1\r\n"))).toBeNull();
    expect(new UploadState(cfg.state_dir, TARGET).get(KEY)).toBeDefined();
    expect(await upload(cfg, target, spooled(cfg, KEY, "id\r\n2\r\n"))).toBeNull();
    expect(seen).toEqual([undefined, undefined, undefined, undefined]);
    // Folded into uploaded.json by the flush: no forget lines are left to apply.
    expect(existsSync(join(cfg.state_dir, "uploaded.forget"))).toBe(false);
    expect(new UploadState(cfg.state_dir, TARGET).get(KEY)?.hash).toBe(
      `xxh64:${Bun.hash.xxHash64("id\r\n2\r\n").toString(16)}`,
    );
  });

  test("stored, then the process dies before the state is saved, then the rows go back: the next run sends them", async () => {
    const cfg = config();
    const bucket = memoryTarget();
    expect(await upload(cfg, bucket, spooled(cfg, KEY, "id\r\nold\r\n"))).toBeNull();
    // S3 stores the new bytes; the process dies before it hears the 200 or saves anything.
    const dies = memoryTarget();
    dies.objects.set(KEY, "id\r\nold\r\n");
    dies.put = async (key, path) => {
      bucket.objects.set(key, await Bun.file(path).text());
      throw new Error("killed");
    };
    const killed = new Uploader(cfg, dies);
    await killed.enqueue(spooled(cfg, KEY, "id\r\nnew\r\n")).catch(() => {});
    // No drain, no flush: nothing in memory reaches the disk.
    await Bun.sleep(10);
    expect(bucket.objects.get(KEY)).toBe("id\r\nnew\r\n");
    // The rows are back to what the state once remembered: sent, not skipped.
    expect(await upload(cfg, bucket, spooled(cfg, KEY, "id\r\nold\r\n"))).toBeNull();
    expect(bucket.objects.get(KEY)).toBe("id\r\nold\r\n");
  });

  test("an unchanged key costs no forget line; a torn last line is ignored", async () => {
    const cfg = config();
    const target = memoryTarget();
    expect(await upload(cfg, target, spooled(cfg, KEY, "id\r\n1\r\n"))).toBeNull();
    expect(await upload(cfg, target, spooled(cfg, KEY, "id\r\n1\r\n"))).toBeNull();
    expect(existsSync(join(cfg.state_dir, "uploaded.forget"))).toBe(false);
    appendFileSync(join(cfg.state_dir, "uploaded.forget"), `{"target":"${TARGET}","key":"${KEY}`);
    expect(new UploadState(cfg.state_dir, TARGET).get(KEY)).toBeDefined();
  });
});

describe("the upload state of a large datalake", () => {
  // 30,000 partitions: rewriting uploaded.json (8.7 MB there) every 50 stored objects wrote
  // gigabytes in a run. Changes go to the journal; uploaded.json is rewritten once the journal
  // holds an eighth as many lines as the state has keys.
  test("storing a few objects appends to the journal and leaves uploaded.json as it was", async () => {
    const cfg = config();
    const known: Record<string, { hash: string; bytes: number; rows: number; uploaded_at: string }> = {};
    for (let i = 0; i < 4000; i++) {
      known[`openedx/grades/lms=lms.example.com/course_id=c${i}/grades.csv`] = {
        hash: "xxh64:0",
        bytes: 1,
        rows: 1,
        uploaded_at: "2024-01-01T00:00:00.000Z",
      };
    }
    mkdirSync(cfg.state_dir, { recursive: true });
    const statePath = join(cfg.state_dir, "uploaded.json");
    writeFileSync(statePath, JSON.stringify({ [TARGET]: known }));
    const before = statSync(statePath).ino;
    const uploader = new Uploader(cfg, memoryTarget());
    const changed = Object.keys(known).slice(0, 120);
    for (const [i, key] of changed.entries()) await uploader.enqueue(spooled(cfg, key, `id\r\n${i}\r\n`));
    await uploader.drain();
    expect(uploader.failure).toBeNull();
    expect(statSync(statePath).ino).toBe(before);
    const journal = readFileSync(join(cfg.state_dir, "uploaded.forget"), "utf8").trim().split("\n");
    expect(journal.length).toBe(2 * changed.length);
    // What a next run (or one after a crash) reads: the journal applied to uploaded.json.
    const read = new UploadState(cfg.state_dir, TARGET);
    expect(read.entries().length).toBe(4000);
    for (const [i, key] of changed.entries())
      expect(read.get(key)?.hash).toBe(`xxh64:${Bun.hash.xxHash64(`id\r\n${i}\r\n`).toString(16)}`);
    expect(read.get(Object.keys(known)[3999]!)?.hash).toBe("xxh64:0");
  });

  test("the journal is folded into uploaded.json once it holds an eighth of the state", async () => {
    const cfg = config();
    const uploader = new Uploader(cfg, memoryTarget());
    for (let i = 0; i < 800; i++)
      await uploader.enqueue(spooled(cfg, `openedx/g/lms=l/course_id=c${i}/g.csv`, `id\r\n${i}\r\n`));
    await uploader.drain();
    const journalPath = join(cfg.state_dir, "uploaded.forget");
    const lines = existsSync(journalPath) ? readFileSync(journalPath, "utf8").trim().split("\n").length : 0;
    expect(lines).toBeLessThan(800 / 8);
    expect(new UploadState(cfg.state_dir, TARGET).entries().length).toBe(800);
  });
});
