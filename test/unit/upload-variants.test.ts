// The uploader removes the other compression variant of a partition (DESIGN §4) whenever its state
// stores a key for the first time, and not on every upload of a key it already stored: a steady
// hourly run sends no DELETE.
import { describe, expect, test } from "bun:test";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import type { Config } from "../../src/config/types.ts";
import { type ManifestEntry, spoolDir } from "../../src/datalake/spool.ts";
import type { Target } from "../../src/datalake/targets.ts";
import { Uploader } from "../../src/datalake/upload.ts";
import { tempConfig } from "../support/temp-config.ts";

function config(compression: "none" | "gzip", stateDir?: string): Config {
  return tempConfig({
    stateDir,
    datalake: `target = "s3"\nbucket = "acme-panorama"\ncompression = "${compression}"`,
  });
}

/** A target that records what it is asked to do. */
function recordingTarget(): Target & { calls: string[] } {
  const calls: string[] = [];
  return {
    description: "s3://acme-panorama",
    calls,
    async put(key) {
      calls.push(`put ${key}`);
    },
    async delete(key) {
      calls.push(`delete ${key}`);
    },
    async list() {
      return [];
    },
    async listDirectories() {
      return [];
    },
  };
}

const KEY = "openedx/grades/lms=lms.example.com/grades.csv";

/** Puts a spool file for `key` with content `text` and returns its manifest entry. */
function spooled(cfg: Config, key: string, text: string): ManifestEntry {
  const path = join(spoolDir(cfg.state_dir), key);
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, text);
  return {
    key,
    table: "grades",
    partitions: [["lms", "lms.example.com"]],
    rows: 1,
    bytes: text.length,
    hash: `xxh64:${Bun.hash.xxHash64(text).toString(16)}`,
    written_at: new Date().toISOString(),
  };
}

async function upload(cfg: Config, target: Target, entry: ManifestEntry): Promise<void> {
  const uploader = new Uploader(cfg, target);
  await uploader.enqueue(entry);
  await uploader.drain();
  expect(uploader.failure).toBeNull();
}

describe("the other compression variant", () => {
  test("deleted on the first upload of a key, not on later changed uploads of it", async () => {
    const cfg = config("none");
    const target = recordingTarget();
    await upload(cfg, target, spooled(cfg, KEY, "id\r\n1\r\n"));
    await upload(cfg, target, spooled(cfg, KEY, "id\r\n2\r\n"));
    await upload(cfg, target, spooled(cfg, KEY, "id\r\n2\r\n")); // unchanged: not sent
    expect(target.calls).toEqual([`put ${KEY}`, `delete ${KEY}.gz`, `put ${KEY}`]);
    rmSync(dirname(cfg.state_dir), { recursive: true, force: true });
  });

  test("a switch of compression deletes the variant written before, each way", async () => {
    const plain = config("none");
    const gzip = config("gzip", plain.state_dir);
    const target = recordingTarget();
    await upload(plain, target, spooled(plain, KEY, "id\r\n1\r\n"));
    await upload(gzip, target, spooled(gzip, `${KEY}.gz`, "gzip bytes"));
    await upload(plain, target, spooled(plain, KEY, "id\r\n1\r\n"));
    expect(target.calls).toEqual([
      `put ${KEY}`,
      `delete ${KEY}.gz`,
      `put ${KEY}.gz`,
      `delete ${KEY}`,
      // The state knew of the .csv.gz and forgot the .csv when it deleted it: sent and cleared again.
      `put ${KEY}`,
      `delete ${KEY}.gz`,
    ]);
    rmSync(dirname(plain.state_dir), { recursive: true, force: true });
  });

  test("a lost upload state deletes it again", async () => {
    const cfg = config("none");
    const target = recordingTarget();
    await upload(cfg, target, spooled(cfg, KEY, "id\r\n1\r\n"));
    rmSync(join(cfg.state_dir, "uploaded.json"));
    await upload(cfg, target, spooled(cfg, KEY, "id\r\n1\r\n"));
    expect(target.calls).toEqual([`put ${KEY}`, `delete ${KEY}.gz`, `put ${KEY}`, `delete ${KEY}.gz`]);
    rmSync(dirname(cfg.state_dir), { recursive: true, force: true });
  });
});
