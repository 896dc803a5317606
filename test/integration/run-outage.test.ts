// One cause, one error (DESIGN §12): a wrong MySQL password, MySQL down or S3 down gives the
// cause once with its fix, then one line naming the tables not done; no table is blamed for
// another's failure, in the log or in `status`.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { rmSync } from "node:fs";
import { createServer } from "node:net";
import type mysql from "mysql2/promise";
import { CLI, runPanorama } from "../support/cli.ts";
import { skipWithoutTestEnv, testEnv } from "../support/env.ts";
import { testConnection, writeTestConfig } from "../support/mysql.ts";
import { writeS3Config } from "../support/s3-config.ts";

const skip = skipWithoutTestEnv();
const NAMES = ["outage_a", "outage_b", "outage_c", "outage_d", "outage_e", "outage_f"];
const TABLES = `[extract]
preset = "none"
${NAMES.map((name) => `\n[[tables]]\nname = "${name}"\n`).join("")}`;
let db: mysql.Connection;
const dirs: string[] = [];

/** A loopback port nobody listens on: connections to it are refused. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

interface Line {
  level: string;
  message: string;
  table?: string;
}

async function runLines(file: string): Promise<{ code: number; lines: Line[]; errors: Line[] }> {
  // Retries a few ms apart: the tests read what is said, never time.
  const run = await runPanorama(["--config", file, "--json", "run"], {
    env: { PANORAMA_TEST_AWS_RETRY_MS: "10" },
  });
  const lines = run.stderr
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Line);
  return { code: run.code, lines, errors: lines.filter((l) => l.level === "error") };
}

/** The error lines: at most 3, the first the cause, the last naming every table not done. */
function expectOneCause(errors: Line[], cause: RegExp, fix: string): void {
  expect(errors.length).toBeLessThanOrEqual(3);
  expect(errors[0]!.message).toMatch(cause);
  expect(errors[0]!.message).toContain(fix);
  expect(errors[0]!.table).toBeUndefined();
  const last = errors.at(-1)!.message;
  expect(last).toStartWith(`${NAMES.length} of ${NAMES.length} tables failed (`);
  for (const name of NAMES) expect(last).toContain(name);
}

beforeAll(async () => {
  if (skip) return;
  db = await testConnection(testEnv().mysql.scratchDatabase);
  for (const name of NAMES) {
    await db.query(`DROP TABLE IF EXISTS ${name}; CREATE TABLE ${name} (id INT PRIMARY KEY, label VARCHAR(20));
      INSERT INTO ${name} SELECT seq, CONCAT('row', seq) FROM seq_1_to_100`);
  }
});

afterAll(async () => {
  if (skip) return;
  for (const name of NAMES) await db.query(`DROP TABLE IF EXISTS ${name}`);
  await db.end();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

describe.skipIf(skip)("run when a server cannot be reached", () => {
  test("a wrong MySQL password: the cause once with its fix, then the tables not done", async () => {
    const cfg = writeTestConfig(TABLES, { password: "not-the-password" });
    dirs.push(cfg.dir);
    const { code, errors } = await runLines(cfg.file);
    expect(code).toBe(1);
    expectOneCause(errors, /cannot connect: Access denied for user/, "check [mysql] user and password");
  });

  test("MySQL down: the cause once with its fix, then the tables not done", async () => {
    const cfg = writeTestConfig(TABLES);
    dirs.push(cfg.dir);
    const port = await closedPort();
    const file = Bun.file(cfg.file);
    await Bun.write(cfg.file, (await file.text()).replace(/^port = \d+$/m, `port = ${port}`));
    const { code, errors } = await runLines(cfg.file);
    expect(code).toBe(1);
    expectOneCause(
      errors,
      new RegExp(`cannot connect: .*ECONNREFUSED 127\\.0\\.0\\.1:${port}`),
      "is MySQL running",
    );
  });

  for (const [signal, code] of [
    ["SIGTERM", 143],
    ["SIGINT", 130],
  ] as const) {
    test(`${signal} while the run waits on a server: one line saying so, exit ${code}`, async () => {
      // A MySQL that takes the connection and never greets: the run waits in the handshake.
      const server = createServer(() => {});
      await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
      try {
        const cfg = writeTestConfig(TABLES);
        dirs.push(cfg.dir);
        const { port } = server.address() as { port: number };
        await Bun.write(
          cfg.file,
          (await Bun.file(cfg.file).text()).replace(/^port = \d+$/m, `port = ${port}`),
        );
        const child = Bun.spawn([process.execPath, CLI, "--config", cfg.file, "--json", "run"], {
          stdout: "ignore",
          stderr: "pipe",
        });
        await Bun.sleep(1500);
        child.kill(signal);
        const stderr = await new Response(child.stderr).text();
        expect(await child.exited).toBe(code);
        const last = JSON.parse(stderr.trim().split("\n").at(-1)!) as Line;
        expect(last).toMatchObject({
          level: "warn",
          message: `stopped by ${signal}: nothing is lost, the next run takes up what was not finished`,
        });
      } finally {
        server.close();
      }
    });
  }

  test("MySQL dropping every connection: tried once per connection of the pool, not once per table", async () => {
    let accepted = 0;
    const server = createServer((socket) => {
      accepted++;
      socket.destroy();
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    try {
      const cfg = writeTestConfig(TABLES);
      dirs.push(cfg.dir);
      const { port } = server.address() as { port: number };
      await Bun.write(cfg.file, (await Bun.file(cfg.file).text()).replace(/^port = \d+$/m, `port = ${port}`));
      const { code, errors } = await runLines(cfg.file);
      expect(code).toBe(1);
      expect(errors[0]!.message).toContain("cannot connect");
      expect(errors.at(-1)!.message).toStartWith(`${NAMES.length} of ${NAMES.length} tables failed (`);
      // The planning ahead tries each of its 2 connections once; the reads do not try again.
      expect(accepted).toBeGreaterThan(0);
      expect(accepted).toBeLessThanOrEqual(2);
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  test("S3 down: the refused connection first, no table blamed for another's file", async () => {
    const port = await closedPort();
    const cfg = writeS3Config({ endpoint: `http://127.0.0.1:${port}`, body: TABLES });
    dirs.push(cfg.dir);
    const { code, errors: all } = await runLines(cfg.file);
    expect(code).toBe(1);
    // No Glue endpoint is set: AWS's cannot be reached from here either, which the comparison of
    // the raw tables says once, before anything is written; that is Glue's cause, not S3's.
    const glue = all.filter((e) => e.message.startsWith("Glue cannot be reached: "));
    expect(glue.length).toBeLessThanOrEqual(1);
    const errors = all.filter((e) => !glue.includes(e));
    // A datalake that cannot be reached is no file's problem: the cause names the datalake and
    // the address, not a key (which would blame that file's table for all of them).
    expectOneCause(
      errors,
      /^the datalake s3:\/\/\S+ cannot be reached: NetworkError: ECONNREFUSED \(http:\/\/127\.0\.0\.1:\d+\)/,
      "check the network path to that address",
    );
    expect(errors[0]!.message).not.toContain("Is the computer able");
    const status = JSON.parse((await runPanorama(["--config", cfg.file, "status", "--json"])).stdout);
    const runs = status.tables.map((t: { table: string; last_run: { error: string } }) => [
      t.table,
      t.last_run.error,
    ]);
    const blamed = runs.filter(([, error]: [string, string]) => error.includes("upload of"));
    expect(blamed).toEqual([]);
    expect(runs.every(([, error]: [string, string]) => error.length > 0)).toBe(true);
  }, 60_000);
});
