// Helpers for tests against the real MariaDB started by scripts/test-env.sh.
import { chmodSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import mysql from "mysql2/promise";
import {
  type GenerateOptions,
  type GenerateResult,
  generateOpenedxData,
} from "../../scripts/gen-openedx-data.ts";
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

/**
 * A database of the test's own, made anew by root and given to the test user whole; `statements`
 * run after, as root (tables made in it). dropTestDatabase removes it.
 */
export async function freshDatabase(name: string, statements = ""): Promise<void> {
  const env = testEnv().mysql;
  const root = await rootConnection();
  try {
    await root.query(
      `DROP DATABASE IF EXISTS ${name}; CREATE DATABASE ${name} CHARACTER SET utf8mb4; GRANT ALL ON ${name}.* TO ?@'%', ?@'localhost';${statements}`,
      [env.user, env.user],
    );
  } finally {
    await root.end();
  }
}

/** An Open edX database generated into a fresh database `name` (scripts/gen-openedx-data.ts): its rows per table. */
export async function generatedDatabase(
  name: string,
  sizes: Omit<GenerateOptions, "connection">,
): Promise<GenerateResult["tables"]> {
  await freshDatabase(name);
  const env = testEnv().mysql;
  const { host, port, user, password } = env;
  return (await generateOpenedxData({ ...sizes, connection: { host, port, user, password, database: name } }))
    .tables;
}

/**
 * A user who may SELECT every table of `database` but those of `denied` and `partly.table`
 * whole, and of `partly.table` every column but `partly.without`: what information_schema
 * hides from such a user looks absent.
 */
export async function limitedReader(
  database: string,
  reader: { user: string; password: string; host?: string },
  options: { denied?: string[]; partly: { table: string; without: string[] } },
): Promise<void> {
  const root = await rootConnection();
  try {
    const [tables] = await root.query(
      "SELECT TABLE_NAME AS name FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME NOT IN (?)",
      [database, [...(options.denied ?? []), options.partly.table]],
    );
    const [columns] = await root.query(
      "SELECT COLUMN_NAME AS name FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND COLUMN_NAME NOT IN (?)",
      [database, options.partly.table, options.partly.without],
    );
    const to = `'${reader.user}'@'${reader.host ?? "%"}'`;
    await root.query(
      `DROP USER IF EXISTS ${to}; CREATE USER ${to} IDENTIFIED BY '${reader.password}';
       ${(tables as { name: string }[]).map((t) => `GRANT SELECT ON ${database}.\`${t.name}\` TO ${to};`).join("\n")}
       GRANT SELECT (${(columns as { name: string }[]).map((c) => `\`${c.name}\``).join(", ")}) ON ${database}.${options.partly.table} TO ${to}`,
    );
  } finally {
    await root.end();
  }
}

/** Drops a database freshDatabase made, and the users made for it ('name'@'%', or 'name'@'host'). */
export async function dropTestDatabase(name: string, users: string[] = []): Promise<void> {
  const root = await rootConnection();
  try {
    await root.query(
      `${users.map((u) => `DROP USER IF EXISTS ${u.includes("'") ? u : `'${u}'@'%'`};`).join("")}DROP DATABASE IF EXISTS ${name}`,
    );
  } finally {
    await root.end();
  }
}
