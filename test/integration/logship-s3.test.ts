// log-ship with the S3 target: s3rver behind the SigV4 / Content-MD5 verifying proxy (a proxy of
// this file's own, so that it can take S3 down), real tracking events in every line format, an
// outage in --follow while the log grows, and --once against an S3 that refuses everything. The
// day partitions go to the loopback Glue of test/support, which stands in for AWS.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import {
  appendFileSync,
  existsSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  rmSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { encodeKey } from "../../src/aws/s3.ts";
import { parseConfig } from "../../src/config/load.ts";
import type { Config } from "../../src/config/types.ts";
import { setupLogging } from "../../src/log.ts";
import { readCheckpoints } from "../../src/logship/checkpoint.ts";
import { shipLogs } from "../../src/logship/ship.ts";
import { createLogSink } from "../../src/logship/upload.ts";
import { type AwsJsonServer, startAwsJsonServer } from "../support/aws-json-server.ts";
import { cleanEnv, runPanorama } from "../support/cli.ts";
import { skipWithoutTestEnv, type TestEnv, testEnv } from "../support/env.ts";
import {
  asBytes,
  dockerWrapped,
  fixtureEvents,
  prefixed,
  rotateLog,
  writerEvent,
} from "../support/log-writer.ts";
import { type FaultHook, type S3Proxy, startS3Proxy } from "../support/s3-proxy.ts";

const skip = skipWithoutTestEnv();
let env: TestEnv;
let proxy: S3Proxy;
let glue: AwsJsonServer;
const registered: string[][] = [];
// Retries a few ms apart: the tests count and read, never time.
const cliEnv = cleanEnv({ PANORAMA_TEST_AWS_RETRY_MS: "10" });

setupLogging({ level: "error" });

/**
 * Glue for log-ship (test/support/aws-json-server.ts: AWS cannot run here; it verifies signatures
 * and checks requests against the AWS API model): each setup's tracking-logs table exists,
 * partitioned by lms/year/month/day. Every partition entry sent is recorded, repeats included.
 */
async function startGlue(): Promise<AwsJsonServer> {
  const server = await startAwsJsonServer({
    accessKeyId: env.s3.accessKeyId,
    secretAccessKey: env.s3.secretAccessKey,
    region: env.s3.region,
    databases: ["panorama"],
    existingTable: (name) =>
      name.endsWith("_raw_tracking_logs")
        ? {
            Name: name,
            PartitionKeys: ["lms", "year", "month", "day"].map((Name) => ({ Name, Type: "string" })),
            StorageDescriptor: {
              Columns: [{ Name: "line", Type: "string" }],
              Location: "s3://x/",
              InputFormat: "org.apache.hadoop.mapred.TextInputFormat",
              OutputFormat: "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat",
              SerdeInfo: { SerializationLibrary: "org.openx.data.jsonserde.JsonSerDe", Parameters: {} },
            },
          }
        : null,
  });
  server.failPartitions((values) => {
    registered.push(values);
    return null;
  });
  return server;
}

/** While set, PUTs fail: 503 SlowDown, or (every third) the object is stored and the answer lost. */
let outage = false;
let refused = 0;
const faults: FaultHook = (request) => {
  if (!outage || request.method !== "PUT") return undefined;
  refused++;
  return refused % 3 === 0
    ? { kind: "reset", after: "upstream" }
    : { kind: "error", status: 503, code: "SlowDown", message: "Please reduce your request rate." };
};

beforeAll(async () => {
  if (skip) return;
  env = testEnv();
  proxy = await startS3Proxy({
    upstream: env.s3.directEndpoint,
    credentials: { accessKeyId: env.s3.accessKeyId, secretAccessKey: env.s3.secretAccessKey },
    faults,
  });
  glue = await startGlue();
});

const dirs: string[] = [];
afterAll(async () => {
  await proxy?.close();
  await glue?.stop();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

interface S3Setup {
  file: string;
  configFile: string;
  stateDir: string;
  config: Config;
  bucket: string;
  /** where this setup's objects are, in `bucket` */
  prefix: string;
  lmsHost: string;
}

function s3Setup(options: { separateBucket?: boolean; logs?: string } = {}): S3Setup {
  const dir = mkdtempSync(join(tmpdir(), "panorama-logship-s3-"));
  dirs.push(dir);
  const id = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}`;
  const lmsHost = `lms-${id}.example.com`;
  const basePrefix = `logship_${id}`;
  const file = join(dir, "tracking.log");
  const stateDir = join(dir, "state");
  const bucket = options.separateBucket ? env.s3.logsBucket : env.s3.bucket;
  const toml = `mode = "CUSTOM"
lms_host = "${lmsHost}"
state_dir = "${stateDir}"

[datalake]
target = "s3"
bucket = "${env.s3.bucket}"
${options.separateBucket ? `logs_bucket = "${env.s3.logsBucket}"` : ""}
base_prefix = "${basePrefix}"
region = "${env.s3.region}"
endpoint = "${proxy.url}"
glue_endpoint = "${glue.url}"

[aws]
access_key_id = "${env.s3.accessKeyId}"
secret_access_key = "${env.s3.secretAccessKey}"

[logs]
paths = ["${file}"]
upload_timeout = "1s"
${options.logs ?? ""}
`;
  const configFile = join(dir, "panorama.toml");
  writeFileSync(configFile, toml, { mode: 0o600 });
  const config = parseConfig(toml, configFile, {}).config;
  const prefix = options.separateBucket
    ? `tracking_logs/${lmsHost}/`
    : `${basePrefix}/tracking_logs/lms=${lmsHost}/`;
  return { file, configFile, stateDir, config, bucket, prefix, lmsHost };
}

interface StoredObject {
  key: string;
  fileId: string;
  offset: number;
  /** the object's lines as bytes (latin1: one character per byte) */
  lines: string[];
}

const KEY = /\/tracking\.log-\d{8}-\d{6}-([0-9a-f]{12})-(\d+)\.gz$/;

/** The objects under the setup's prefix, read from s3rver directly, by file then offset. */
async function stored(setup: S3Setup): Promise<StoredObject[]> {
  const objects: StoredObject[] = [];
  let token = "";
  do {
    const query = `list-type=2&prefix=${encodeURIComponent(setup.prefix)}${token ? `&continuation-token=${encodeURIComponent(token)}` : ""}`;
    const xml = await (await fetch(`${env.s3.directEndpoint}/${setup.bucket}?${query}`)).text();
    for (const m of xml.matchAll(/<Key>([^<]*)<\/Key>/g)) {
      const key = (m[1] ?? "").replace(/&amp;/g, "&");
      const match = KEY.exec(key);
      if (!match) throw new Error(`unexpected object ${key}`);
      const body = new Uint8Array(
        await (await fetch(`${env.s3.directEndpoint}/${setup.bucket}/${encodeKey(key)}`)).arrayBuffer(),
      );
      const text = gunzipSync(body).toString("latin1");
      expect(text.endsWith("\n")).toBe(true);
      objects.push({
        key,
        fileId: match[1]!,
        offset: Number(match[2]),
        lines: text.slice(0, -1).split("\n"),
      });
    }
    token = /<NextContinuationToken>([^<]*)</.exec(xml)?.[1] ?? "";
  } while (token);
  return objects.sort((a, b) => (a.fileId === b.fileId ? a.offset - b.offset : a.fileId < b.fileId ? -1 : 1));
}

const text = (lines: string[]) => lines.map((l) => `${l}\n`).join("");
const events = (from: number, to: number) =>
  Array.from({ length: to - from + 1 }, (_, i) => writerEvent(from + i));

/** Each writer event once, in order, byte for byte. */
function expectExactlyOnce(objects: StoredObject[], written: number): void {
  const seqs = objects.flatMap((o) =>
    o.lines.map((line) => {
      const seq = Number(/"seq": (\d+)/.exec(line)?.[1]);
      expect(line).toBe(asBytes(writerEvent(seq)));
      return seq;
    }),
  );
  expect(seqs).toEqual(Array.from({ length: written }, (_, i) => i + 1));
}

/** Fixture lines `from` to `to` (1-based, as `sed -n from,top` prints them). */
const fixtureLines = (from: number, to: number) => fixtureEvents().slice(from - 1, to);

/** Each of `written` (real events, which share no sequence number) in exactly one object line. */
function expectEachLineOnce(objects: StoredObject[], written: string[]): void {
  const all = fixtureEvents().map(asBytes);
  const count = new Map<number, number>(written.map((line) => [all.indexOf(asBytes(line)) + 1, 0]));
  for (const line of objects.flatMap((o) => o.lines)) {
    const number = all.indexOf(line) + 1;
    count.set(number, (count.get(number) ?? 0) + 1);
  }
  // fixture line number → times shipped, when not once (0: a line that is no fixture event)
  expect(Object.fromEntries([...count].filter(([, n]) => n !== 1))).toEqual({});
}

describe.skipIf(skip)("log-ship to S3", () => {
  test("real events in every format land byte-identical, under the keys and partitions of DESIGN §8", async () => {
    const setup = s3Setup({ logs: 'max_file_size = "64K"' });
    const body: Buffer[] = [];
    const wanted: string[] = [];
    const line = (raw: string | Buffer) => body.push(Buffer.concat([Buffer.from(raw), Buffer.from("\n")]));
    // Every fixture event bare, behind Tutor's prefix, and in a Docker wrapper of that line.
    fixtureEvents().forEach((event, i) => {
      line(event);
      line(prefixed(event, i));
      line(dockerWrapped(prefixed(event, i)));
      wanted.push(asBytes(event), asBytes(event), asBytes(event));
    });
    const big = `{"name": "big", "time": "2024-03-01T10:00:00.000000+00:00", "text": "${"Ωμέγα ✓ 😀 ".repeat(9000)}"}`;
    line(prefixed(big));
    const message = `${prefixed(big)}\n`;
    for (let i = 0; i < message.length; i += 16384) {
      line(
        JSON.stringify({ log: message.slice(i, i + 16384), stream: "stdout", time: "2024-03-01T10:00:00Z" }),
      );
    }
    wanted.push(asBytes(big), asBytes(big));
    const invalid = Buffer.concat([
      Buffer.from('{"time": "2024-03-01T10:00:01Z", "v": "'),
      Buffer.from([0xff, 0xc3, 0x28]),
      Buffer.from('"}'),
    ]);
    line(invalid);
    wanted.push(invalid.toString("latin1"));
    line("2024-03-01 10:00:00,000 INFO 7 [django.request] not an event");
    writeFileSync(setup.file, Buffer.concat(body));

    const first = proxy.requests.length;
    const result = await runPanorama(["--config", setup.configFile, "--json", "log-ship", "--once"], {
      env: cliEnv,
    });
    expect(result.stderr).not.toContain('"level":"error"');
    expect(result.code).toBe(0);
    const objects = await stored(setup);
    expect(objects.flatMap((o) => o.lines)).toEqual(wanted);
    for (const o of objects) {
      expect(o.key).toMatch(
        new RegExp(
          `^${setup.prefix.replace(/\./g, "\\.")}year=(\\d{4})/month=(\\d{2})/day=(\\d{2})/tracking\\.log-\\1\\2\\3-\\d{6}-`,
        ),
      );
    }
    // Every PUT signed (the proxy refuses others) and carrying its Content-MD5.
    const puts = proxy.requests.slice(first).filter((r) => r.method === "PUT");
    expect(puts).toHaveLength(objects.length);
    for (const put of puts) {
      expect(put.auth).toBe("ok");
      expect(put.headers["content-md5"]).toMatch(/^[A-Za-z0-9+/]{22}==$/);
    }
    // Each day written is registered once, as (lms, year, month, day).
    const days = [
      ...new Set(objects.map((o) => /year=(\d+)\/month=(\d+)\/day=(\d+)/.exec(o.key)!.slice(1).join("-"))),
    ];
    const mine = registered.filter((v) => v[0] === setup.lmsHost).map((v) => v.slice(1).join("-"));
    expect(mine.sort()).toEqual(days.sort());
    const [checkpoint] = readCheckpoints(setup.stateDir);
    expect(checkpoint?.offset).toBe(Buffer.concat(body).length);
  }, 60_000);

  test("a separate logs bucket: tracking_logs/<lms_host>/... in that bucket", async () => {
    const setup = s3Setup({ separateBucket: true });
    writeFileSync(setup.file, text(events(1, 5)));
    const result = await runPanorama(["--config", setup.configFile, "log-ship", "--once"], { env: cliEnv });
    expect(result.code).toBe(0);
    const objects = await stored(setup);
    expect(objects).toHaveLength(1);
    expect(objects[0]!.key).toMatch(
      new RegExp(
        `^tracking_logs/${setup.lmsHost.replace(/\./g, "\\.")}/year=2024/month=03/day=01/tracking\\.log-20240301-100001-`,
      ),
    );
    expectExactlyOnce(objects, 5);
  });

  test("--follow through an outage while the log grows: nothing lost, nothing twice, nothing committed meanwhile", async () => {
    const setup = s3Setup({ logs: 'max_file_size = "4K"' });
    // Few fast retries inside the client: the shipper's own backoff is what is under test.
    const sink = await createLogSink(setup.config, { retry: { attempts: 2, baseMs: 10, maxMs: 50 } });
    const stop = new AbortController();
    const running = shipLogs(setup.config, {
      follow: true,
      sink,
      signal: stop.signal,
      pollMs: 100,
      retryMs: 100,
    });
    let written = 0;
    const append = (n: number) => {
      appendFileSync(setup.file, text(events(written + 1, written + n)));
      written += n;
    };
    const offset = () => readCheckpoints(setup.stateDir)[0]?.offset ?? 0;
    const size = () => readFileSync(setup.file).length;
    const until = async (done: () => boolean, what: string) => {
      for (let i = 0; i < 300 && !done(); i++) await Bun.sleep(50);
      if (!done()) throw new Error(`timed out waiting for ${what}`);
    };

    for (let i = 0; i < 10; i++, await Bun.sleep(60)) append(7);
    await until(() => offset() === size(), "the first events to be shipped");
    const before = offset();
    refused = 0;
    outage = true;
    for (let i = 0; i < 25; i++, await Bun.sleep(60)) append(7);
    await Bun.sleep(1500);
    expect(refused).toBeGreaterThan(3);
    // Stored-but-unanswered PUTs aside, nothing advanced: the log file is the buffer.
    expect(offset()).toBe(before);
    outage = false;
    for (let i = 0; i < 5; i++, await Bun.sleep(60)) append(7);
    await until(() => offset() === size(), "the backlog to be shipped");
    stop.abort();
    expect((await running).ok).toBe(true);
    expectExactlyOnce(await stored(setup), written);
  }, 60_000);

  test("a new live file whose first 1,024 bytes equal the rotated one's (real events, lines 1 and 75): shipped, once", async () => {
    // The operator's trial, with the executable: sed -n 1,10p, mv to .1, sed -n 75,81p, sed -n 11,20p >>.
    const setup = s3Setup();
    const uploaded = async () => {
      const result = await runPanorama(["--config", setup.configFile, "log-ship", "--once"], { env: cliEnv });
      expect(result.code).toBe(0);
      expect(result.stderr).not.toContain("warn");
      return Number(/uploaded (\d+) events/.exec(result.stderr)?.[1]);
    };
    writeFileSync(setup.file, text(fixtureLines(1, 10)));
    expect(await uploaded()).toBe(10);
    renameSync(setup.file, `${setup.file}.1`);
    writeFileSync(setup.file, text(fixtureLines(75, 81)));
    expect(await uploaded()).toBe(7);
    appendFileSync(setup.file, text(fixtureLines(11, 20)));
    expect(await uploaded()).toBe(10);
    rmSync(`${setup.file}.1`);
    expect(await uploaded()).toBe(0);
    expectEachLineOnce(await stored(setup), [...fixtureLines(1, 20), ...fixtureLines(75, 81)]);
  }, 60_000);

  test("delaycompress, rotate 7, new files starting like earlier ones, --once between writes: every event once", async () => {
    const setup = s3Setup();
    // Each file starts like one before it that is still on disk, plain or compressed by then.
    const files = [
      [1, 10],
      [75, 81, 11, 14],
      [29, 29, 15, 20],
      [30, 30, 21, 28],
      [31, 33, 37, 47],
      [36, 36, 48, 65],
      [66, 74, 34, 35],
    ].map(([a, b, c, d]) => [...fixtureLines(a!, b ?? a!), ...(c ? fixtureLines(c, d!) : [])]);
    expect(files.flat().sort()).toEqual([...fixtureEvents()].sort());
    for (const [i, lines] of files.entries()) {
      if (i > 0) expect(rotateLog(setup.file, "delaycompress", 7, i).destroyed).toEqual([]);
      const half = Math.ceil(lines.length / 2);
      for (const part of [lines.slice(0, half), lines.slice(half)]) {
        appendFileSync(setup.file, text(part));
        // Written a while before the run, as between two cron runs: a rotated file no run
        // shipped is then older than the last run, never read again.
        const past = new Date(Date.now() - 3600_000);
        utimesSync(setup.file, past, past);
        const result = await runPanorama(["--config", setup.configFile, "log-ship", "--once"], {
          env: cliEnv,
        });
        expect(result.code).toBe(0);
      }
    }
    expectEachLineOnce(await stored(setup), fixtureEvents());
  }, 120_000);

  test("--once with S3 refusing: exit 1 with the reason, nothing committed; the next run ships all once", async () => {
    const setup = s3Setup({ logs: 'max_file_size = "4K"' });
    writeFileSync(setup.file, text(events(1, 30)));
    outage = true;
    refused = 0;
    try {
      const failed = await runPanorama(["--config", setup.configFile, "--json", "log-ship", "--once"], {
        env: cliEnv,
      });
      expect(failed.code).toBe(1);
      expect(failed.stderr).toContain(`failed: `);
      expect(failed.stderr).toContain("the next run sends it again");
      expect(refused).toBeGreaterThan(1);
    } finally {
      outage = false;
    }
    const checkpoints = existsSync(join(setup.stateDir, "logship", "checkpoints.json"))
      ? readCheckpoints(setup.stateDir)
      : [];
    expect(checkpoints.every((c) => c.offset === 0)).toBe(true);

    const again = await runPanorama(["--config", setup.configFile, "log-ship", "--once"], { env: cliEnv });
    expect(again.code).toBe(0);
    expectExactlyOnce(await stored(setup), 30);
    expect(readCheckpoints(setup.stateDir)[0]?.offset).toBe(Buffer.byteLength(text(events(1, 30))));
  }, 60_000);
});
