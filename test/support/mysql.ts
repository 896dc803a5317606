// Helpers for tests against the real MariaDB started by scripts/test-env.sh.
import { chmodSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import mysql from "mysql2/promise";
import { testEnv } from "./env.ts";

/** A connection as the test user, to `database` (default: the edxapp database). */
export async function testConnection(database?: string): Promise<mysql.Connection> {
  const env = testEnv().mysql;
  return mysql.createConnection({
    host: env.host,
    port: env.port,
    user: env.user,
    password: env.password,
    database: database ?? env.database,
    multipleStatements: true,
    dateStrings: true,
    supportBigNumbers: true,
    bigNumberStrings: true,
    jsonStrings: true,
    charset: "utf8mb4",
  });
}

/** A connection as root, for grants and killing other sessions. */
export async function rootConnection(): Promise<mysql.Connection> {
  const env = testEnv().mysql;
  return mysql.createConnection({
    host: env.host,
    port: env.port,
    user: "root",
    password: env.rootPassword,
    multipleStatements: true,
  });
}

/**
 * A fresh directory with a panorama.toml for a local datalake on the test database (`port`: a
 * stand-in's in front of it); `body` follows the [mysql] keys.
 */
export function writeTestConfig(
  body = "",
  options: { database?: string; mode?: string; user?: string; password?: string; port?: number } = {},
): { dir: string; file: string; stateDir: string; datalake: string } {
  const env = testEnv().mysql;
  const dir = mkdtempSync(join(tmpdir(), "panorama-test-"));
  const file = join(dir, "panorama.toml");
  const text = `mode = "${options.mode ?? "CUSTOM"}"
lms_host = "lms.example.com"
state_dir = "${join(dir, "state")}"

[datalake]
target = "local"
path = "${join(dir, "datalake")}"

[mysql]
host = "${env.host}"
port = ${options.port ?? env.port}
user = "${options.user ?? env.user}"
password = "${options.password ?? env.password}"
database = "${options.database ?? env.scratchDatabase}"

${body}`;
  writeFileSync(file, text);
  chmodSync(file, 0o600);
  return { dir, file, stateDir: join(dir, "state"), datalake: join(dir, "datalake") };
}
