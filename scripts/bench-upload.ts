// Upload benchmark, run by hand: about 1 GB of spool files (a mix of sizes, some multipart) sent
// by `panorama upload` (the executable cron runs, built by scripts/build.sh into the benchmark's
// directory) to a private s3rver, and in the same run the same files by
// `aws s3 cp --recursive` to the same server (the natural baseline). Prints both times, the
// ratio, and the peak RSS of each (/usr/bin/time). s3rver answers over HTTPS, as S3 does, with a
// certificate made here that both clients are told to trust (--http: plain HTTP): over TLS, Bun
// holds each body in memory while it is sent, where over HTTP it sends it from the file.
//
//   node_modules/.bin/bun scripts/bench-upload.ts [--mib 1024] [--http] [--keep]
import { randomBytes } from "node:crypto";
import { linkSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { parseArgs } from "node:util";
import { makeCertificate } from "../test/support/certificate.ts";
import { buildExecutable, measure, startS3rver } from "./bench-support.ts";

const MIB = 1024 * 1024;
const BUCKET = "bench-upload";

const { values } = parseArgs({
  options: {
    mib: { type: "string", default: "1024" },
    http: { type: "boolean", default: false },
    keep: { type: "boolean", default: false },
  },
});
const totalMib = Number(values.mib);
const work = mkdtempSync(join(tmpdir(), "panorama-bench-upload-"));

/** Sizes in the proportions of a real spool: a few large partitions, many small ones. */
function plan(total: number): number[] {
  const sizes: number[] = [];
  let seed = 1;
  const random = (): number => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed / 2 ** 31;
  };
  // 70 % in files of 16-48 MiB (multipart), 25 % in 256 KiB - 4 MiB, 5 % in 1-64 KiB.
  const share = (fraction: number, min: number, max: number): void => {
    for (let left = total * fraction; left > 0; ) {
      const size = Math.floor(min + random() * (max - min));
      sizes.push(size);
      left -= size;
    }
  };
  share(0.7, 16 * MIB, 48 * MIB);
  share(0.25, MIB / 4, 4 * MIB);
  share(0.05, 1024, 64 * 1024);
  return sizes;
}

/** How many of `keys` s3rver holds with the right size (its ListObjects fails past 1000 keys). */
async function countStored(endpoint: string, keys: [string, number][]): Promise<number> {
  let count = 0;
  for (const [key, size] of keys) {
    const path = key.split("/").map(encodeURIComponent).join("/");
    const res = await fetch(`${endpoint}/${BUCKET}/${path}`, {
      method: "HEAD",
      tls: { rejectUnauthorized: false },
    });
    if (res.ok && Number(res.headers.get("content-length")) === size) count++;
  }
  return count;
}

async function main(): Promise<void> {
  const sizes = plan(totalMib * MIB);
  const source = join(work, "files");
  const stateDir = join(work, "state");
  const spool = join(stateDir, "spool");
  let total = 0;
  const files: [string, number][] = [];
  console.log(`generating ${sizes.length} files, ${totalMib} MiB, in ${work}`);
  const block = randomBytes(64 * MIB);
  for (const [i, size] of sizes.entries()) {
    const key = `openedx/bench_${i % 7}/lms=bench.example.com/course_id=course-v1%3ABench%2B${i}%2B2024/bench_${i % 7}.csv`;
    const path = join(source, key);
    mkdirSync(dirname(path), { recursive: true });
    // Distinct content per file: a rotating window of one random block.
    const offset = (i * 7919) % (block.length - Math.min(size, block.length));
    const data =
      size <= block.length
        ? block.subarray(offset, offset + size)
        : Buffer.concat([block, randomBytes(size - block.length)]);
    writeFileSync(path, data);
    files.push([key, size]);
    total += size;
    // The spool holds hard links: panorama removes them once uploaded, the sources stay for aws.
    mkdirSync(dirname(join(spool, key)), { recursive: true });
    linkSync(path, join(spool, key));
    writeFileSync(
      `${join(spool, key)}.manifest.json`,
      JSON.stringify({
        key,
        table: `bench_${i % 7}`,
        partitions: [],
        rows: 0,
        bytes: size,
        hash: `xxh64:${i.toString(16).padStart(16, "0")}`,
        written_at: new Date(Date.UTC(2024, 0, 1, 0, 0, i)).toISOString(),
      }),
    );
  }
  const tls = values.http ? null : makeCertificate(work, "s3.bench");
  const s3rver = await startS3rver(join(work, "s3rver"), BUCKET, tls);
  try {
    const endpoint = `${tls ? "https" : "http"}://127.0.0.1:${s3rver.port}`;
    const config = join(work, "panorama.toml");
    writeFileSync(
      config,
      `mode = "CUSTOM"\nlms_host = "bench.example.com"\nstate_dir = "${stateDir}"\n\n[datalake]\ntarget = "s3"\nbucket = "${BUCKET}"\nregion = "us-east-1"\nendpoint = "${endpoint}"\nbase_prefix = "panorama"\n\n[aws]\naccess_key_id = "S3RVER"\nsecret_access_key = "S3RVER"\n\n[extract]\npreset = "none"\n`,
      { mode: 0o600 },
    );
    // The keys start with "openedx/": aws gets the same keys under another first segment.
    const panorama = await measure(
      [buildExecutable(work), "--config", config, "--json", "upload"],
      tls ? { NODE_EXTRA_CA_CERTS: tls.certFile } : {},
      { allowFailure: true },
    );
    if (panorama.code !== 0) throw new Error(`panorama upload failed:\n${panorama.stderr.slice(-2000)}`);
    const aws = await measure(
      [
        "aws",
        "s3",
        "cp",
        "--recursive",
        "--only-show-errors",
        "--endpoint-url",
        endpoint,
        join(source, "openedx"),
        `s3://${BUCKET}/awscli/`,
      ],
      {
        AWS_ACCESS_KEY_ID: "S3RVER",
        AWS_SECRET_ACCESS_KEY: "S3RVER",
        AWS_DEFAULT_REGION: "us-east-1",
        AWS_CONFIG_FILE: "/dev/null",
        AWS_SHARED_CREDENTIALS_FILE: "/dev/null",
        ...(tls ? { AWS_CA_BUNDLE: tls.certFile } : {}),
        // Over HTTPS, botocore sends a body aws-chunked with a trailing checksum, which s3rver
        // stores as it came (the chunk headers in the object): plain bodies, as panorama sends.
        AWS_REQUEST_CHECKSUM_CALCULATION: "when_required",
      },
      { allowFailure: true },
    );
    if (aws.code !== 0) throw new Error(`aws s3 cp failed:\n${aws.stderr.slice(-2000)}`);
    const multipart = sizes.filter((s) => s >= 16 * MIB).length;
    console.log(
      `${sizes.length} files (${multipart} of 16 MiB or more), ${(total / MIB).toFixed(0)} MiB, to s3rver on loopback over ${tls ? "HTTPS" : "HTTP"}`,
    );
    console.log(
      `panorama upload     ${panorama.seconds.toFixed(1)} s   peak RSS ${panorama.maxRssMiB.toFixed(0)} MiB`,
    );
    console.log(
      `aws s3 cp --recursive ${aws.seconds.toFixed(1)} s   peak RSS ${aws.maxRssMiB.toFixed(0)} MiB`,
    );
    console.log(`ratio panorama / aws: ${(panorama.seconds / aws.seconds).toFixed(2)}`);
    const ours = await countStored(endpoint, files);
    const theirs = await countStored(
      endpoint,
      files.map(([key, size]) => [key.replace(/^openedx\//, "awscli/"), size]),
    );
    if (ours !== sizes.length || theirs !== sizes.length) {
      throw new Error(`objects stored: panorama ${ours}, aws ${theirs}, expected ${sizes.length} each`);
    }
    console.log(`verified: ${ours} objects each`);
  } finally {
    s3rver.stop();
    if (!values.keep) rmSync(work, { recursive: true, force: true });
  }
}

await main();
