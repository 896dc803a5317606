// MySQL 8.0/8.4 authentication through the compiled binary (DESIGN §10: Tutor runs MySQL 8, whose
// default plugin is caching_sha2_password). There is no MySQL 8 server package on this machine,
// so test/support/mysql8-server.ts stands in for MySQL 8: it speaks MySQL 8's handshake (auth
// switch, fast auth, full auth with the RSA public key over TCP, cleartext over TLS) in front of
// the test MariaDB and relays the session. `bash scripts/build.sh` builds the binary, which is
// what runs here: the RSA exchange goes through node:crypto's publicEncrypt inside the Bun binary.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createConnection } from "mysql2";
import type mysql from "mysql2/promise";
import { batchReads, LOW_WATER_BYTES, WAIT_MS } from "../../src/extract/read-batching.ts";
import { makeCertificate } from "../support/certificate.ts";
import { cleanEnv, ROOT } from "../support/cli.ts";
import { skipWithoutTestEnv, type TestEnv, testEnv } from "../support/env.ts";
import { testConnection, writeTestConfig } from "../support/mysql.ts";
import { type Mysql8Server, type Mysql8ServerOptions, startMysql8Server } from "../support/mysql8-server.ts";

const skip = skipWithoutTestEnv();
const work = mkdtempSync(join(tmpdir(), "panorama-mysql8-"));
// Built here, not in dist/: another test run may be building or running that one.
const BINARY = join(work, "panorama");
const TABLES = `[extract]
preset = "none"

[[tables]]
name = "mysql8_items"
partition_fields = ["course_id"]
`;
/** One table of several MiB, unpartitioned: one streamed result whose reads are gathered. */
const BIG_TABLE = `[extract]
preset = "none"

[[tables]]
name = "mysql8_big"
`;
let env: TestEnv;
let db: mysql.Connection;
let tls: { key: string; cert: string; certFile: string };
const dirs: string[] = [];
const servers: Mysql8Server[] = [];

async function binary(
  args: string[],
  extraEnv: Record<string, string> = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const child = Bun.spawn([BINARY, ...args], {
    cwd: work,
    env: Object.fromEntries(
      Object.entries({ ...process.env, ...cleanEnv(extraEnv) }).filter(
        (pair): pair is [string, string] => pair[1] !== undefined,
      ),
    ),
    stdout: "pipe",
    stderr: "pipe",
  });
  const [stdout, stderr, code] = await Promise.all([
    new Response(child.stdout).text(),
    new Response(child.stderr).text(),
    child.exited,
  ]);
  return { code, stdout, stderr };
}

/** A local-datalake config reading MySQL at `port` (ssl as given) for `tables`. */
function configFor(port: number, ssl = false, tables = TABLES): { file: string; datalake: string } {
  const cfg = writeTestConfig(`ssl = ${ssl}\n${tables}`, { port });
  dirs.push(cfg.dir);
  return { file: cfg.file, datalake: cfg.datalake };
}

/** Every file of a local datalake: relative path → SHA-256. */
function datalakeFiles(root: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const name of readdirSync(root, { recursive: true }) as string[]) {
    const path = join(root, name);
    if (statSync(path).isFile()) out.set(name, createHash("sha256").update(readFileSync(path)).digest("hex"));
  }
  return out;
}

async function mysql8(options: Partial<Mysql8ServerOptions>): Promise<Mysql8Server> {
  const server = await startMysql8Server({
    upstream: { host: env.mysql.host, port: env.mysql.port },
    user: env.mysql.user,
    password: env.mysql.password,
    greetingPlugin: "caching_sha2_password",
    ...options,
  });
  servers.push(server);
  return server;
}

let direct: Map<string, string>;

beforeAll(async () => {
  if (skip) return;
  env = testEnv();
  const build = Bun.spawnSync(["bash", "scripts/build.sh", "--out", BINARY], {
    cwd: ROOT,
    stdout: "pipe",
    stderr: "pipe",
  });
  if (build.exitCode !== 0) throw new Error(`scripts/build.sh failed: ${build.stderr.toString()}`);
  const { keyFile, certFile } = makeCertificate(work, "mysql8.test");
  tls = { key: readFileSync(keyFile, "utf8"), cert: readFileSync(certFile, "utf8"), certFile };
  db = await testConnection(env.mysql.scratchDatabase);
  // utf8mb4 beyond the BMP and a JSON column (MariaDB's JSON is LONGTEXT with a json_valid check;
  // MySQL 8's binary JSON type is covered by the packet-encoder tests in test/unit/raw-csv.test.ts).
  await db.query(`DROP TABLE IF EXISTS mysql8_items;
    CREATE TABLE mysql8_items (id INT PRIMARY KEY, course_id VARCHAR(100), title VARCHAR(200),
      meta JSON) CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
    INSERT INTO mysql8_items VALUES
      (1, 'course-v1:M8+A+2024', 'Café 😀 "quoted", line\\nbreak', '{"lang": "fr", "emoji": "🎓"}'),
      (2, 'course-v1:M8+A+2024', NULL, NULL),
      (3, 'course-v1:M8+B+2024', '日本語', '[1, 2.50, {"k": null}]');`);
  // The reference: the same binary straight to MariaDB.
  const reference = configFor(env.mysql.port);
  const run = await binary(["--config", reference.file, "run"]);
  if (run.code !== 0) throw new Error(`direct run failed: ${run.stderr}`);
  direct = datalakeFiles(reference.datalake);
  // The build and a run of the binary: longer than the default hook timeout on a busy machine.
}, 120_000);

afterAll(async () => {
  for (const server of servers) await server.close();
  if (!skip) {
    await db.query("DROP TABLE IF EXISTS mysql8_items");
    await db.end();
  }
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  rmSync(work, { recursive: true, force: true });
});

describe.skipIf(skip)("the compiled binary against MySQL 8's caching_sha2_password (stand-in server)", () => {
  test("plain TCP, auth switch, full authentication with the RSA public-key request, then fast auth: run extracts the same bytes as from MariaDB directly", async () => {
    const server = await mysql8({ greetingPlugin: "mysql_native_password" });
    const cfg = configFor(server.port);
    const run = await binary(["--config", cfg.file, "run"]);
    expect({ code: run.code, errors: run.code === 0 ? "" : run.stderr }).toEqual({ code: 0, errors: "" });
    expect(direct.size).toBe(2);
    expect(datalakeFiles(cfg.datalake)).toEqual(direct);
    // The first connection knew no cached hash: full authentication over RSA. The run's other
    // connection opens beside it, so it finds the hash cached or not, as the two race: either
    // path; the next run's connections are all fast.
    expect(server.logins.length).toBeGreaterThanOrEqual(1);
    expect(server.logins.every((l) => l.switched && !l.tls && l.user === env.mysql.user)).toBe(true);
    expect(server.logins[0]).toMatchObject({ path: "full-rsa", publicKeyRequested: true });
    expect(
      server.logins.every((l) => l.path === "fast" || (l.path === "full-rsa" && l.publicKeyRequested)),
    ).toBe(true);
    const first = server.logins.length;
    const again = await binary(["--config", cfg.file, "run"]);
    expect({ code: again.code, errors: again.code === 0 ? "" : again.stderr }).toEqual({
      code: 0,
      errors: "",
    });
    expect(server.logins.length).toBeGreaterThan(first);
    expect(server.logins.slice(first).every((l) => l.switched && l.path === "fast")).toBe(true);
    expect(datalakeFiles(cfg.datalake)).toEqual(direct);
  }, 60_000);

  test("plain TCP, caching_sha2_password greeted as MySQL 8.4 does (no native plugin, no switch): the token in the handshake, then RSA; schema pull", async () => {
    const server = await mysql8({ greetingPlugin: "caching_sha2_password" });
    const cfg = configFor(server.port);
    const pull = await binary(["--config", cfg.file, "schema", "pull", "--tables", "mysql8_items"]);
    expect({ code: pull.code, errors: pull.code === 0 ? "" : pull.stderr }).toEqual({ code: 0, errors: "" });
    expect(pull.stdout).toContain('name = "title"');
    expect(server.logins[0]).toMatchObject({
      switched: false,
      tls: false,
      path: "full-rsa",
      publicKeyRequested: true,
    });
  }, 60_000);

  test("TLS, caching_sha2_password greeted: full authentication sends the password in cleartext over TLS, no public key; then fast", async () => {
    const server = await mysql8({ tls });
    const cfg = configFor(server.port, true);
    // The stand-in's certificate is self-signed: trusted the way an operator would trust a
    // private CA for the binary.
    const trust = { NODE_EXTRA_CA_CERTS: tls.certFile };
    const pull = await binary(["--config", cfg.file, "schema", "pull", "--tables", "mysql8_items"], trust);
    expect({ code: pull.code, errors: pull.code === 0 ? "" : pull.stderr }).toEqual({ code: 0, errors: "" });
    expect(pull.stdout).toContain('name = "mysql8_items"');
    expect(pull.stdout).toContain('name = "meta"');
    const run = await binary(["--config", cfg.file, "run"], trust);
    expect({ code: run.code, errors: run.code === 0 ? "" : run.stderr }).toEqual({ code: 0, errors: "" });
    expect(datalakeFiles(cfg.datalake)).toEqual(direct);
    expect(server.logins.length).toBeGreaterThanOrEqual(2);
    expect(server.logins.every((l) => l.tls && !l.switched && !l.publicKeyRequested)).toBe(true);
    expect(server.logins[0]?.path).toBe("full-tls");
    expect(server.logins.slice(1).every((l) => l.path === "fast")).toBe(true);
  }, 60_000);

  test("TLS: a result of several MiB, its reads gathered by the TCP socket's low-water mark under TLS, is the same bytes as from MariaDB directly", async () => {
    // Above START_AFTER_BYTES (1 MiB): the reads of this one query are batched (read-batching.ts).
    try {
      await db.query(`DROP TABLE IF EXISTS mysql8_big;
        CREATE TABLE mysql8_big (id INT PRIMARY KEY, course_id VARCHAR(100), body TEXT) CHARACTER SET utf8mb4;
        INSERT INTO mysql8_big WITH RECURSIVE d(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM d WHERE i < 299)
          SELECT a.i * 100 + b.i + 1, CONCAT('course-v1:M8+', b.i % 7, '+2024'), CONCAT(REPEAT('é "x", line\\n', 12), a.i)
          FROM d AS a JOIN d AS b ON b.i < 100;`);
      const server = await mysql8({ tls });
      // In this process: the TLS socket mysql2 reads has the TCP descriptor, and it takes the mark.
      const connection = createConnection({
        host: "127.0.0.1",
        port: server.port,
        user: env.mysql.user,
        password: env.mysql.password,
        database: env.mysql.scratchDatabase,
        ssl: { ca: tls.cert },
      });
      try {
        await new Promise<void>((resolve, reject) =>
          connection.connect((error) => (error ? reject(error) : resolve())),
        );
        const stream = (connection as unknown as { stream: { encrypted?: boolean } }).stream;
        expect(stream.encrypted).toBe(true);
        const batching = batchReads(stream, LOW_WATER_BYTES, WAIT_MS, 0);
        expect(batching).not.toBeNull();
        batching?.stop();
      } finally {
        connection.destroy();
      }
      const reference = configFor(env.mysql.port, false, BIG_TABLE);
      const plain = await binary(["--config", reference.file, "run"]);
      expect({ code: plain.code, errors: plain.code === 0 ? "" : plain.stderr }).toEqual({
        code: 0,
        errors: "",
      });
      const cfg = configFor(server.port, true, BIG_TABLE);
      const run = await binary(["--config", cfg.file, "run"], { NODE_EXTRA_CA_CERTS: tls.certFile });
      expect({ code: run.code, errors: run.code === 0 ? "" : run.stderr }).toEqual({ code: 0, errors: "" });
      const files = datalakeFiles(cfg.datalake);
      const csv = [...files.keys()].filter((name) => name.endsWith("mysql8_big.csv"));
      expect(csv).toHaveLength(1);
      expect(statSync(join(cfg.datalake, csv[0]!)).size).toBeGreaterThan(4 << 20);
      expect(files).toEqual(datalakeFiles(reference.datalake));
    } finally {
      await db.query("DROP TABLE IF EXISTS mysql8_big");
    }
  }, 60_000);

  test("TLS with a certificate the binary does not trust: exit 1, the reason and how to trust it", async () => {
    const server = await mysql8({ tls });
    const cfg = configFor(server.port, true);
    const run = await binary(["--config", cfg.file, "run"]);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain("cannot connect: self signed certificate");
    expect(run.stderr).toContain("NODE_EXTRA_CA_CERTS=/path/to/ca.pem");
    expect(server.logins).toEqual([]);
  }, 60_000);

  test("a wrong password: refused at the scramble, exit 1, MySQL's message and the hint, the password never printed", async () => {
    const server = await mysql8({ greetingPlugin: "mysql_native_password" });
    const cfg = configFor(server.port);
    const wrong = "not-the-password-7d1f";
    writeFileSync(
      cfg.file,
      readFileSync(cfg.file, "utf8").replace(`password = "${env.mysql.password}"`, `password = "${wrong}"`),
    );
    const run = await binary(["--config", cfg.file, "run"]);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain(`Access denied for user '${env.mysql.user}'`);
    expect(run.stderr).toContain("check [mysql] user and password");
    expect(run.stderr).not.toContain(wrong);
    expect(server.logins.every((l) => l.path === "denied")).toBe(true);
  }, 60_000);
});
