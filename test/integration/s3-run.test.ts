// `run` and `upload` with the S3 target, as cron runs them: the real CLI, the real MariaDB, s3rver
// behind the environment's SigV4 / Content-MD5 checking proxy (which also keeps the state of
// multipart uploads, since s3rver does not list or abort them). `run` registers the partitions it
// wrote with Glue afterwards: the loopback Glue of test/support stands in for AWS.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type mysql from "mysql2/promise";
import { AwsClient } from "../../src/aws/client.ts";
import { encodeKey, S3Client } from "../../src/aws/s3.ts";
import { UploadState } from "../../src/datalake/upload-state.ts";
import { type AwsJsonServer, existingCsvTable, startAwsJsonServer } from "../support/aws-json-server.ts";
import { CLI, cleanEnv, runPanorama } from "../support/cli.ts";
import { skipWithoutTestEnv, type TestEnv, testEnv } from "../support/env.ts";
import { startImdsServer } from "../support/imds-server.ts";
import { testConnection, writeTestConfig } from "../support/mysql.ts";
import { writeS3Config } from "../support/s3-config.ts";
import { startS3Proxy } from "../support/s3-proxy.ts";

const skip = skipWithoutTestEnv();
let db: mysql.Connection;
let env: TestEnv;
let glue: AwsJsonServer | undefined;

/**
 * Glue and Athena for `run` (test/support/aws-json-server.ts: AWS cannot run here; it verifies
 * signatures and checks requests against the AWS API models): every table exists, as `panorama
 * catalog` makes them, partitioned by lms and course_id.
 */
function startGlue(
  credentials: { accessKeyId: string; secretAccessKey: string } = env.s3,
): Promise<AwsJsonServer> {
  return startAwsJsonServer({
    accessKeyId: credentials.accessKeyId,
    secretAccessKey: credentials.secretAccessKey,
    region: env.s3.region,
    databases: ["panorama"],
    existingTable: (name) => existingCsvTable(name, ["lms", "course_id"]),
  });
}

/** An S3 config for `run`, with the Glue stand-in (the shared one unless `catalog` is given). */
function runConfig(
  options: Parameters<typeof writeS3Config>[0] & { prefix: string; catalog?: AwsJsonServer },
): ReturnType<typeof writeS3Config> {
  const { prefix, catalog, datalake, ...rest } = options;
  return writeS3Config({
    ...rest,
    datalake: `base_prefix = "${prefix}"\nglue_endpoint = "${(catalog ?? glue)?.url}"\n${datalake ?? ""}`,
  });
}

// s3run_big has two partitions of about 17.5 MiB each: multipart uploads of three parts.
const TABLES = `[extract]
preset = "none"

[[tables]]
name = "s3run_big"
partition_fields = ["course_id"]

[[tables]]
name = "s3run_small"
partition_fields = ["course_id"]
`;

const SMALL_ONLY = `[extract]
preset = "none"

[[tables]]
name = "s3run_small"
partition_fields = ["course_id"]
`;

function uniquePrefix(name: string): string {
  return `s3run_${name}_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 8)}`;
}

/**
 * GET straight from s3rver, again after a connection reset: s3rver rewrites an object's file in
 * place, and a read that meets a write still finishing (a killed run's PUT) can be cut off.
 */
async function directRead(url: string): Promise<ArrayBuffer> {
  for (let attempt = 1; ; attempt++) {
    let failure: unknown;
    try {
      const response = await fetch(url, { keepalive: false });
      if (response.ok) return await response.arrayBuffer();
      // An error answer is no content: hashing its XML would report a healthy object as partial,
      // or an empty listing as every remembered key stale. s3rver's 5xx are tried again.
      failure = new Error(`GET ${url}: ${response.status} ${await response.text()}`);
      if (response.status < 500) throw failure;
    } catch (error) {
      if ((error as { code?: string }).code !== "ECONNRESET") throw error;
      failure = error;
    }
    if (attempt >= 5) throw failure;
    await Bun.sleep(200 * attempt);
  }
}

/** Every object under `prefix/` straight from s3rver: key without the prefix → SHA-256. */
async function bucketObjects(prefix: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  let token = "";
  for (;;) {
    const query = `list-type=2&prefix=${encodeURIComponent(`${prefix}/`)}${token ? `&continuation-token=${encodeURIComponent(token)}` : ""}`;
    const xml = new TextDecoder().decode(
      await directRead(`${env.s3.directEndpoint}/${env.s3.bucket}?${query}`),
    );
    for (const m of xml.matchAll(/<Key>([^<]*)<\/Key>/g)) {
      const key = (m[1] ?? "").replace(/&amp;/g, "&");
      const body = await directRead(`${env.s3.directEndpoint}/${env.s3.bucket}/${encodeKey(key)}`);
      out.set(key.slice(prefix.length + 1), createHash("sha256").update(new Uint8Array(body)).digest("hex"));
    }
    token = /<NextContinuationToken>([^<]*)</.exec(xml)?.[1] ?? "";
    if (!token) return out;
  }
}

/** Every file of a local datalake: key without the base prefix → SHA-256. */
function localObjects(root: string, prefix: string): Map<string, string> {
  const out = new Map<string, string>();
  const base = join(root, prefix);
  for (const name of readdirSync(base, { recursive: true }) as string[]) {
    const path = join(base, name);
    try {
      out.set(name, createHash("sha256").update(readFileSync(path)).digest("hex"));
    } catch {
      // a directory
    }
  }
  return out;
}

function spoolFiles(stateDir: string): string[] {
  const spool = join(stateDir, "spool");
  if (!existsSync(spool)) return [];
  return (readdirSync(spool, { recursive: true }) as string[]).filter((n) => n.endsWith(".csv"));
}

/** Multipart uploads left open under `prefix`, as the proxy at `endpoint` (which keeps them) knows. */
async function openUploads(prefix: string, endpoint?: string): Promise<{ key: string; uploadId: string }[]> {
  const cfg = writeS3Config(endpoint ? { endpoint } : {});
  return new S3Client(new AwsClient(cfg.config), cfg.config).listMultipartUploads(
    env.s3.bucket,
    `${prefix}/`,
  );
}

/**
 * A clean extraction of `body`'s tables into a fresh local datalake: key (without the prefix) →
 * SHA-256, and the content hash its upload state remembers per key.
 */
async function cleanExtraction(
  prefix: string,
  body: string,
): Promise<{ objects: Map<string, string>; hashes: Map<string, string> }> {
  const local = writeTestConfig(body);
  try {
    writeFileSync(
      local.file,
      readFileSync(local.file, "utf8").replace(
        'target = "local"',
        `target = "local"\nbase_prefix = "${prefix}"`,
      ),
    );
    const run = await runPanorama(["--config", local.file, "run"]);
    expect({ code: run.code, errors: run.code === 0 ? "" : run.stderr }).toEqual({ code: 0, errors: "" });
    return {
      objects: localObjects(local.datalake, prefix),
      hashes: rememberedHashes(local.stateDir, prefix),
    };
  } finally {
    rmSync(local.dir, { recursive: true, force: true });
  }
}

/** What an upload state remembers, for any target: key (without the prefix) → content hash. */
function rememberedHashes(stateDir: string, prefix: string): Map<string, string> {
  const targets = Object.keys(JSON.parse(readFileSync(join(stateDir, "uploaded.json"), "utf8")));
  const out = new Map<string, string>();
  for (const target of targets) {
    for (const [key, stored] of new UploadState(stateDir, target).entries()) {
      out.set(key.slice(prefix.length + 1), stored.hash);
    }
  }
  return out;
}

function summaryOf(stderr: string, table: string): Record<string, unknown> | undefined {
  return stderr
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .find((l) => l.table === table && String(l.message).endsWith("done"));
}

beforeAll(async () => {
  if (skip) return;
  env = testEnv();
  glue = await startGlue();
  db = await testConnection(env.mysql.scratchDatabase);
  await db.query(`DROP TABLE IF EXISTS s3run_big; DROP TABLE IF EXISTS s3run_small;
    CREATE TABLE s3run_big (id INT PRIMARY KEY, course_id VARCHAR(100), payload TEXT, KEY (course_id));
    INSERT INTO s3run_big SELECT seq, CONCAT('course-v1:Big+B', seq % 2, '+2024'),
      CONCAT(seq, ':', REPEAT(MD5(seq), 31)) FROM seq_1_to_36000;
    CREATE TABLE s3run_small (id INT PRIMARY KEY, course_id VARCHAR(100), name VARCHAR(100), KEY (course_id));
    INSERT INTO s3run_small SELECT seq, CONCAT('course-v1:Org+S', seq % 20, '+2024'), CONCAT('name "', seq, '"')
      FROM seq_1_to_4000;`);
});

afterAll(async () => {
  await glue?.stop();
  await db?.end();
});

describe.skipIf(skip)("run with an S3 datalake", () => {
  let reference: Map<string, string>;
  let referenceSeconds = 3;

  test("every table uploaded, multipart included, byte-identical to a local run; unchanged objects not sent again", async () => {
    const prefix = uniquePrefix("ref");
    const cfg = runConfig({ prefix, body: TABLES });
    const started = performance.now();
    const first = await runPanorama(["--config", cfg.file, "run"]);
    referenceSeconds = (performance.now() - started) / 1000;
    expect(first.stderr).not.toContain('"level":"error"');
    expect(first.code).toBe(0);
    reference = await bucketObjects(prefix);
    expect(reference.size).toBe(22);
    expect([...reference.keys()]).toContain(
      "s3run_big/lms=lms.example.com/course_id=course-v1%3ABig%2BB1%2B2024/s3run_big.csv",
    );
    expect(summaryOf(first.stderr, "s3run_big")).toMatchObject({ rows: 36000, objects: 2, skipped: 0 });
    expect(spoolFiles(cfg.stateDir)).toEqual([]);
    expect(await openUploads(prefix)).toEqual([]);

    // The same tables to a local datalake: the same keys, the same bytes.
    const local = writeTestConfig(`${TABLES}`);
    writeFileSync(
      local.file,
      readFileSync(local.file, "utf8").replace(
        'target = "local"',
        `target = "local"\nbase_prefix = "${prefix}"`,
      ),
    );
    expect((await runPanorama(["--config", local.file, "run"])).code).toBe(0);
    expect(localObjects(local.datalake, prefix)).toEqual(reference);

    // Read again (--full: the unchanged probe would not read it), the same bytes are not sent again.
    const second = await runPanorama(["--config", cfg.file, "run", "--full"]);
    expect(second.code).toBe(0);
    expect(summaryOf(second.stderr, "s3run_big")).toMatchObject({ rows: 36000, objects: 0, skipped: 2 });
    expect(await bucketObjects(prefix)).toEqual(reference);
  }, 120_000);

  test("killed with SIGKILL at random moments (9 times: a third during a multipart upload, a third soon after S3 stored an object) while the rows change between runs, partitions changed and changed back; after each kill every object is whole and the upload state stale nowhere; then one clean run: the bucket of a clean extraction, no upload left open", async () => {
    expect(reference?.size).toBe(22);
    const prefix = uniquePrefix("kill");
    // Three partitions toggle between their base rows and an edited version, a random subset
    // before each run: a run may store a partition's new bytes and be killed before its upload
    // state is saved, and a later toggle brings the rows back to what that state remembers
    // (DESIGN §9). The big one is a 17.5 MiB multipart upload each time it changes.
    const toggles = [
      {
        on: "UPDATE s3run_small SET name = CONCAT(name, ' (edited)') WHERE id = 7",
        off: "UPDATE s3run_small SET name = CONCAT('name \"', id, '\"') WHERE id = 7",
      },
      {
        on: "DELETE FROM s3run_small WHERE id = 13",
        off: "INSERT INTO s3run_small VALUES (13, 'course-v1:Org+S13+2024', 'name \"13\"')",
      },
      {
        on: "UPDATE s3run_big SET payload = CONCAT('edited:', payload) WHERE id = 1",
        off: "UPDATE s3run_big SET payload = CONCAT(id, ':', REPEAT(MD5(id), 31)) WHERE id = 1",
      },
    ];
    const state = toggles.map(() => false);
    const flip = async (t: number) => {
      state[t] = !state[t];
      await db.query(state[t] ? toggles[t]!.on : toggles[t]!.off);
    };
    // Every object a run may store, whole: the base rows' or the edited rows' bytes, per key;
    // and the content hash an upload state remembers for each.
    const base = await cleanExtraction(prefix, TABLES);
    expect(base.objects).toEqual(reference);
    for (let t = 0; t < toggles.length; t++) await flip(t);
    const edited = await cleanExtraction(prefix, TABLES);
    expect([...edited.objects].filter(([key, sha]) => base.objects.get(key) !== sha)).toHaveLength(3);
    for (let t = 0; t < toggles.length; t++) await flip(t);
    const versions = [base, edited];
    const whole = (key: string, sha: string) => versions.some((v) => v.objects.get(key) === sha);

    // Each part of a multipart upload waits 400 ms at this proxy: a multipart upload stays open
    // long enough for a kill soon after it began to land while it is open. The proxy also says
    // when S3 answered an object stored (a PUT, or a multipart upload completed).
    let stored: () => void = () => {};
    const proxy = await startS3Proxy({
      upstream: env.s3.directEndpoint,
      credentials: { accessKeyId: env.s3.accessKeyId, secretAccessKey: env.s3.secretAccessKey },
      faults: (request) => {
        if (request.method === "PUT" && request.query.partNumber !== undefined)
          return { kind: "stall", ms: 400 };
        const storing =
          (request.method === "PUT" && !request.path.endsWith("PanoramaConnectionTest")) ||
          (request.method === "POST" && request.query.uploadId !== undefined);
        return storing ? { kind: "pass", answered: () => stored() } : undefined;
      },
    });
    const cfg = runConfig({ prefix, body: TABLES, endpoint: proxy.url });
    /**
     * Keys whose remembered hash does not describe the object in the bucket: the stale state that
     * would make a later run skip a partition whose rows went back (DESIGN §9).
     */
    const staleKeys = (objects: Map<string, string>): string[] =>
      [...rememberedHashes(cfg.stateDir, prefix)]
        .filter(([key, hash]) => {
          const version = versions.find((v) => v.hashes.get(key) === hash);
          return version === undefined || version.objects.get(key) !== objects.get(key);
        })
        .map(([key]) => key);
    let seed = 7;
    const random = (): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    // Multipart uploads found open right after a kill, and partitions changed back to rows an
    // earlier run had stored: the cases this test is about must happen.
    let leftOpen = 0;
    let changedBack = 0;
    try {
      for (let i = 0; i < 9; i++) {
        const before = [...state];
        for (let t = 0; t < toggles.length; t++) {
          // One run in three, from the first, changes the big partition: a multipart upload to kill.
          if ((t === 2 && i % 3 === 0) || random() < 0.5) await flip(t);
        }
        changedBack += state.filter((on, t) => !on && before[t]).length;
        const answered = new Promise<void>((resolve) => {
          stored = resolve;
        });
        const child = Bun.spawn([process.execPath, CLI, "--config", cfg.file, "run"], {
          stdout: "ignore",
          stderr: "ignore",
        });
        if (i % 3 === 1) {
          await Bun.sleep(Math.floor(random() * referenceSeconds * 1000));
        } else if (i % 3 === 2) {
          // A random moment soon after S3 answered that an object is stored (if the run stores
          // any): while the run goes on, before it saves its upload state.
          await Promise.race([answered, Bun.sleep(referenceSeconds * 2000)]);
          await Bun.sleep(Math.floor(random() * 50));
        } else {
          // A random moment while a multipart upload this run began is open.
          const journal = join(cfg.stateDir, "multipart");
          const entries = () =>
            (existsSync(journal) ? readdirSync(journal) : []).filter((n) => n.endsWith(".json"));
          const known = new Set(entries());
          const deadline = performance.now() + referenceSeconds * 2000;
          while (performance.now() < deadline && !entries().some((n) => !known.has(n))) {
            await Bun.sleep(5);
          }
          // Soon after: a multipart upload of 17.5 MiB takes a few hundred ms on loopback.
          await Bun.sleep(Math.floor(random() * 100));
        }
        child.kill("SIGKILL");
        await child.exited;
        // Whatever the moment, an object in the bucket is whole: bytes of a clean extraction.
        // (s3rver writes objects in place, unlike S3, so a request the killed process had sent
        // may still be landing: give it a moment to finish.)
        let partial: [string, string][] = [];
        let objects = new Map<string, string>();
        for (let wait = 0; wait < 20; wait++) {
          try {
            objects = await bucketObjects(prefix);
          } catch (error) {
            // s3rver may fail a listing or a read while a request of the killed run still lands
            // (an object listed, then replaced or deleted): look again, and fail if it lasts.
            if (wait === 19) throw error;
            await Bun.sleep(100);
            continue;
          }
          partial = [...objects].filter(([key, sha]) => !whole(key, sha));
          if (partial.length === 0) break;
          await Bun.sleep(100);
        }
        expect(partial).toEqual([]);
        // And the upload state on disk never remembers bytes other than those in the bucket.
        if (existsSync(join(cfg.stateDir, "uploaded.json"))) expect(staleKeys(objects)).toEqual([]);
        leftOpen += (await openUploads(prefix, proxy.url)).length;
      }
      expect(leftOpen).toBeGreaterThan(0);
      expect(changedBack).toBeGreaterThan(0);
      const clean = await runPanorama(["--config", cfg.file, "run"]);
      // The messages come with the code, so that a failure says what the run met.
      expect({ code: clean.code, errors: clean.code === 0 ? "" : clean.stderr }).toEqual({
        code: 0,
        errors: "",
      });
      expect(await bucketObjects(prefix)).toEqual((await cleanExtraction(prefix, TABLES)).objects);
      expect(await openUploads(prefix, proxy.url)).toEqual([]);
      expect(spoolFiles(cfg.stateDir)).toEqual([]);
      expect(readdirSync(join(cfg.stateDir, "multipart"))).toEqual([]);
    } finally {
      for (let t = 0; t < toggles.length; t++) if (state[t]) await flip(t);
      await proxy.close();
      rmSync(cfg.dir, { recursive: true, force: true });
    }
  }, 240_000);

  test("killed right after S3's 200 for a changed partition, then the rows go back: the next run sends them again (DESIGN §9)", async () => {
    await db.query(`DROP TABLE IF EXISTS s3run_window;
      CREATE TABLE s3run_window (id INT PRIMARY KEY, course_id VARCHAR(100), name VARCHAR(100));
      INSERT INTO s3run_window VALUES (1, 'course-v1:Win+A+2024', 'old'), (2, 'course-v1:Win+B+2024', 'b'),
        (3, 'course-v1:Win+C+2024', 'c');`);
    const prefix = uniquePrefix("window");
    const body = `[extract]\npreset = "none"\n\n[[tables]]\nname = "s3run_window"\npartition_fields = ["course_id"]\n`;
    const keyOf = (course: string) =>
      `${prefix}/s3run_window/lms=lms.example.com/course_id=course-v1%3AWin%2B${course}%2B2024/s3run_window.csv`;
    let child: ReturnType<typeof Bun.spawn> | undefined;
    let killedAfter200 = false;
    const proxy = await startS3Proxy({
      upstream: env.s3.directEndpoint,
      credentials: { accessKeyId: env.s3.accessKeyId, secretAccessKey: env.s3.secretAccessKey },
    });
    const cfg = runConfig({ prefix, body, endpoint: proxy.url });
    try {
      expect((await runPanorama(["--config", cfg.file, "run"])).code).toBe(0);
      await db.query("UPDATE s3run_window SET name = CONCAT(name, ' new') WHERE id IN (1, 2)");
      // A's PUT passes; 100 ms after its 200 is written to the process's connection, SIGKILL.
      // B's PUT is held meanwhile, so the run cannot reach its end, where the upload state is
      // saved: the window of the issue. (A's spool file stays until then: the state on disk
      // does not describe it yet.)
      const spooledA = join(cfg.stateDir, "spool", keyOf("A"));
      proxy.setFaults((r) => {
        if (r.method !== "PUT") return undefined;
        if (r.path.endsWith(encodeKey(keyOf("B")))) return { kind: "stall", ms: 10_000 };
        if (!r.path.endsWith(encodeKey(keyOf("A")))) return undefined;
        return {
          kind: "pass",
          answered: () => {
            setTimeout(() => {
              killedAfter200 = true;
              child?.kill("SIGKILL");
            }, 100);
          },
        };
      });
      child = Bun.spawn([process.execPath, CLI, "--config", cfg.file, "run"], {
        stdout: "ignore",
        stderr: "ignore",
      });
      expect(await child.exited).not.toBe(0);
      proxy.setFaults(undefined);
      expect(killedAfter200).toBe(true);
      expect(existsSync(spooledA)).toBe(true);
      const afterKill = new TextDecoder().decode(
        await directRead(`${env.s3.directEndpoint}/${env.s3.bucket}/${encodeKey(keyOf("A"))}`),
      );
      expect(afterKill).toBe("id,name\r\n1,old new\r\n");

      // A's rows go back to what the last saved upload state remembers.
      await db.query("UPDATE s3run_window SET name = 'old' WHERE id = 1");
      const run = await runPanorama(["--config", cfg.file, "run"]);
      expect({ code: run.code, errors: run.code === 0 ? "" : run.stderr }).toEqual({ code: 0, errors: "" });
      const objects = await bucketObjects(prefix);
      expect(objects).toEqual((await cleanExtraction(prefix, body)).objects);
      expect(
        new TextDecoder().decode(
          await directRead(`${env.s3.directEndpoint}/${env.s3.bucket}/${encodeKey(keyOf("A"))}`),
        ),
      ).toBe("id,name\r\n1,old\r\n");
    } finally {
      child?.kill("SIGKILL");
      await proxy.close();
      rmSync(cfg.dir, { recursive: true, force: true });
    }
  }, 60_000);

  test("a leftover of a killed run is stored before extraction writes the same key again: the fresh content wins", async () => {
    await db.query(`DROP TABLE IF EXISTS s3run_race;
      CREATE TABLE s3run_race (id INT PRIMARY KEY, course_id VARCHAR(100), name VARCHAR(100));
      INSERT INTO s3run_race VALUES (1, 'course-v1:Race+A+2024', 'old'), (2, 'course-v1:Race+B+2024', 'b');`);
    const prefix = uniquePrefix("race");
    const body = `[extract]\npreset = "none"\n\n[[tables]]\nname = "s3run_race"\npartition_fields = ["course_id"]\n`;
    const keyA = `${prefix}/s3run_race/lms=lms.example.com/course_id=course-v1%3ARace%2BA%2B2024/s3run_race.csv`;
    // The upload of the leftover is slow (the first PUT of that key waits 1.5 s at the proxy):
    // long enough for extraction to write the key afresh and upload it meanwhile, if it may.
    let stalled = 0;
    const proxy = await startS3Proxy({
      upstream: env.s3.directEndpoint,
      credentials: { accessKeyId: env.s3.accessKeyId, secretAccessKey: env.s3.secretAccessKey },
      faults: (request) => {
        if (request.method !== "PUT" || !request.path.endsWith(encodeKey(keyA)) || stalled++ > 0)
          return undefined;
        return { kind: "stall", ms: 1500 };
      },
    });
    try {
      const cfg = runConfig({ prefix, body, endpoint: proxy.url });
      // A run killed after extracting: its files wait in the spool.
      expect((await runPanorama(["--config", cfg.file, "extract"])).code).toBe(0);
      expect(spoolFiles(cfg.stateDir)).toHaveLength(2);
      await db.query("UPDATE s3run_race SET name = 'new' WHERE id = 1");

      const run = await runPanorama(["--config", cfg.file, "run"]);
      expect({ code: run.code, errors: run.code === 0 ? "" : run.stderr }).toEqual({ code: 0, errors: "" });
      const putsOfA = proxy.requests.filter((r) => r.method === "PUT" && r.path.endsWith(encodeKey(keyA)));
      expect(putsOfA.map((r) => r.fault)).toEqual(["stall", "pass"]);
      const object = new TextDecoder().decode(
        await directRead(`${env.s3.directEndpoint}/${env.s3.bucket}/${encodeKey(keyA)}`),
      );
      expect(object).toBe("id,name\r\n1,new\r\n");
      expect(spoolFiles(cfg.stateDir)).toEqual([]);
    } finally {
      await proxy.close();
    }
  }, 60_000);

  test("with the EC2 instance role: one credential lookup serves the uploads and the Glue registration", async () => {
    const role = {
      accessKeyId: "ASIARUNROLEKEY000001",
      secretAccessKey: "run-role-secret-1",
      token: "run-role-session-token-1",
      expiration: new Date(Date.now() + 6 * 3600_000),
    };
    const imds = startImdsServer("panorama-run-role", role);
    const proxy = await startS3Proxy({ upstream: env.s3.directEndpoint, credentials: role });
    const roleGlue = await startGlue(role);
    try {
      const prefix = uniquePrefix("role");
      // No keys in [aws]: the chain falls through to the instance role.
      const cfg = runConfig({
        prefix,
        catalog: roleGlue,
        body: SMALL_ONLY,
        endpoint: proxy.url,
        accessKeyId: "",
        secretAccessKey: "",
      });
      const run = await runPanorama(["--config", cfg.file, "run"], {
        env: cleanEnv({ AWS_EC2_METADATA_SERVICE_ENDPOINT: imds.url }),
      });
      expect({ code: run.code, errors: run.code === 0 ? "" : run.stderr }).toEqual({ code: 0, errors: "" });
      expect(run.stderr).toContain("partition(s) registered");
      expect((await bucketObjects(prefix)).size).toBe(20);
      expect(proxy.requests.every((r) => r.auth === "ok" && r.accessKeyId === role.accessKeyId)).toBe(true);
      expect(imds.counts).toMatchObject({ token: 1, credentials: 1 });
      // Glue verified the role's signature too: 20 course partitions in one call.
      expect(roleGlue.actions.filter((a) => a.status === 200).map((a) => a.action)).toEqual([
        "glue:GetTable", // the raw table compared with the layout before anything is stored
        "glue:GetTable",
        "glue:BatchCreatePartition",
      ]);
      expect(roleGlue.partitions("panorama", `${prefix}_raw_s3run_small`)).toHaveLength(20);
    } finally {
      await proxy.close();
      await roleGlue.stop();
      imds.close();
    }
  }, 60_000);

  test("gzip, then plain again with the upload state lost: every .csv.gz is deleted, only the .csv objects stay", async () => {
    const prefix = uniquePrefix("variants");
    const gzip = runConfig({ prefix, body: SMALL_ONLY, datalake: 'compression = "gzip"' });
    expect((await runPanorama(["--config", gzip.file, "run"])).code).toBe(0);
    const zipped = [...(await bucketObjects(prefix)).keys()];
    expect(zipped).toHaveLength(20);
    expect(zipped.every((k) => k.endsWith(".csv.gz"))).toBe(true);
    // Another state directory: nothing says this host ever wrote the .csv.gz objects.
    const plain = runConfig({ prefix, body: SMALL_ONLY });
    const run = await runPanorama(["--config", plain.file, "run"]);
    expect({ code: run.code, errors: run.code === 0 ? "" : run.stderr }).toEqual({ code: 0, errors: "" });
    const keys = [...(await bucketObjects(prefix)).keys()].sort();
    expect(keys).toEqual(zipped.map((k) => k.replace(/\.gz$/, "")).sort());
  });

  test("MySQL unreachable: the spool's leftovers are still stored and their partitions registered; the failure is recorded", async () => {
    const prefix = uniquePrefix("nomysql");
    const cfg = runConfig({ prefix, body: SMALL_ONLY });
    expect((await runPanorama(["--config", cfg.file, "extract"])).code).toBe(0);
    const table = `${prefix}_raw_s3run_small`;
    expect(glue?.partitions("panorama", table)).toEqual([]);
    writeFileSync(cfg.file, readFileSync(cfg.file, "utf8").replace(`port = ${env.mysql.port}`, "port = 1"));
    const run = await runPanorama(["--config", cfg.file, "run"]);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain(`MySQL ${env.mysql.user}@${env.mysql.host}:1/`);
    expect((await bucketObjects(prefix)).size).toBe(20);
    expect(glue?.partitions("panorama", table)).toHaveLength(20);
    const status = JSON.parse((await runPanorama(["--config", cfg.file, "status", "--json"])).stdout);
    const small = status.tables.find((t: { table: string }) => t.table === "s3run_small");
    expect(small.last_run).toMatchObject({ command: "run", rows: 0 });
    expect(small.last_run.error).toContain("cannot connect");
    expect(small.pending_partitions).toBe(0);
  });

  test("S3 down for the whole run: exit 1, the spool kept; the next run uploads everything", async () => {
    const prefix = uniquePrefix("down");
    const cfg = runConfig({ endpoint: "http://127.0.0.1:9", prefix, body: SMALL_ONLY });
    // Retries a few ms apart: the test reads what is said, never time.
    const failed = await runPanorama(["--config", cfg.file, "run"], {
      env: { PANORAMA_TEST_AWS_RETRY_MS: "10" },
    });
    expect(failed.code).toBe(1);
    expect(failed.stderr).toMatch(
      /the datalake s3:\/\/panorama-test cannot be reached: NetworkError: ECONNREFUSED/,
    );
    expect(failed.stderr).toContain("kept in the spool");
    // The table stopped because of the upload, and says so: MySQL did nothing wrong.
    expect(failed.stderr).not.toContain("MySQL ");
    expect(spoolFiles(cfg.stateDir).length).toBeGreaterThan(0);
    expect(await bucketObjects(prefix)).toEqual(new Map());

    const kept = spoolFiles(cfg.stateDir).length;

    writeFileSync(cfg.file, readFileSync(cfg.file, "utf8").replace("http://127.0.0.1:9", env.s3.endpoint));
    const next = await runPanorama(["--config", cfg.file, "run"]);
    expect(next.stderr).not.toContain('"level":"error"');
    expect(next.code).toBe(0);
    expect(next.stderr).toContain(`uploading ${kept} file(s) left in the spool by an earlier run`);
    expect(spoolFiles(cfg.stateDir)).toEqual([]);
    expect((await bucketObjects(prefix)).size).toBe(20);
  }, 60_000);

  test("a wrong secret: refused by S3, reported with the operation, key and what to check, without the secret", async () => {
    const prefix = uniquePrefix("secret");
    const wrong = "this-is-not-the-secret-0123456789";
    const cfg = runConfig({ secretAccessKey: wrong, prefix, body: SMALL_ONLY });
    const failed = await runPanorama(["--config", cfg.file, "run"]);
    expect(failed.code).toBe(1);
    const output = failed.stdout + failed.stderr;
    expect(output).toMatch(
      /PutObject s3:\/\/panorama-test\/s3run_secret_\S+\.csv failed: SignatureDoesNotMatch \(HTTP 403\)/,
    );
    expect(output).toContain("check the secret access key");
    expect(output).not.toContain(wrong);
    expect(output).not.toContain(env.s3.secretAccessKey);
    expect(spoolFiles(cfg.stateDir).length).toBeGreaterThan(0);
  }, 60_000);
});
