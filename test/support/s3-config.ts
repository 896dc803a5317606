// A panorama.toml for an S3 datalake on the test environment's s3rver (through a signing proxy),
// and the same config loaded, for tests of the S3 client, the S3 target and `run`.
import { chmodSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseConfig } from "../../src/config/load.ts";
import type { Config } from "../../src/config/types.ts";
import { testEnv } from "./env.ts";

export interface S3TestConfig {
  dir: string;
  file: string;
  stateDir: string;
  config: Config;
}

export function writeS3Config(
  options: {
    endpoint?: string;
    accessKeyId?: string;
    secretAccessKey?: string;
    bucket?: string;
    /** extra [datalake] lines */
    datalake?: string;
    /** everything after [mysql] */
    body?: string;
  } = {},
): S3TestConfig {
  const env = testEnv();
  const dir = mkdtempSync(join(tmpdir(), "panorama-s3-test-"));
  const file = join(dir, "panorama.toml");
  const text = `mode = "CUSTOM"
lms_host = "lms.example.com"
state_dir = "${join(dir, "state")}"

[datalake]
target = "s3"
bucket = "${options.bucket ?? env.s3.bucket}"
region = "${env.s3.region}"
endpoint = "${options.endpoint ?? env.s3.endpoint}"
${options.datalake ?? ""}

[aws]
access_key_id = "${options.accessKeyId ?? env.s3.accessKeyId}"
secret_access_key = "${options.secretAccessKey ?? env.s3.secretAccessKey}"

[mysql]
host = "${env.mysql.host}"
port = ${env.mysql.port}
user = "${env.mysql.user}"
password = "${env.mysql.password}"
database = "${env.mysql.scratchDatabase}"

${options.body ?? ""}`;
  writeFileSync(file, text);
  chmodSync(file, 0o600);
  const { config } = parseConfig(text, file, {});
  return { dir, file, stateDir: join(dir, "state"), config };
}
