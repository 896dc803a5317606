// The connections an extraction keeps beside its main one (spare-connections.ts), against the
// real MariaDB: an extraction of several tables over `[mysql] connections = 2` opens two
// connections in all, however many tables use both; a spare the server dropped while it waited
// is replaced, not handed to a read; one that could not be opened is opened again by the read
// that needs it, which then fails with the cause; every spare is closed at the end.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { readFileSync, rmSync } from "node:fs";
import type mysql from "mysql2/promise";
import { parseConfig } from "../../src/config/load.ts";
import type { Config } from "../../src/config/types.ts";
import { extractTables } from "../../src/extract/extract.ts";
import { close, query } from "../../src/extract/mysql.ts";
import { SpareConnections } from "../../src/extract/spare-connections.ts";
import { skipWithoutTestEnv, testEnv } from "../support/env.ts";
import { rootConnection, testConnection, writeTestConfig } from "../support/mysql.ts";

const skip = skipWithoutTestEnv();
setDefaultTimeout(60_000);
const TABLES = ["spare_a", "spare_b", "spare_c"];
let db: mysql.Connection;
let root: mysql.Connection;
const dirs: string[] = [];

function config(body: string): Config {
  const cfg = writeTestConfig(body);
  dirs.push(cfg.dir);
  return parseConfig(readFileSync(cfg.file, "utf8"), cfg.file, {}).config;
}

/** Connections the server has accepted since it started (every attempt, those refused too). */
async function connectionsAccepted(): Promise<number> {
  const [rows] = await root.query("SHOW GLOBAL STATUS LIKE 'Connections'");
  return Number((rows as { Value: string }[])[0]!.Value);
}

/** The ids of the test user's sessions the server has open now. */
async function openSessions(): Promise<number[]> {
  const [rows] = await root.query(
    "SELECT ID AS id FROM information_schema.PROCESSLIST WHERE USER = ? ORDER BY ID",
    [testEnv().mysql.user],
  );
  return (rows as { id: number }[]).map((r) => Number(r.id));
}

/** The open sessions once no more than `count` are left, or after 2 s: a session ends a moment after its client said goodbye. */
async function sessionsSettled(count: number): Promise<number[]> {
  let sessions = await openSessions();
  for (let i = 0; i < 100 && sessions.length > count; i++) {
    await Bun.sleep(20);
    sessions = await openSessions();
  }
  return sessions;
}

const threadId = (connection: { threadId: number | null }) => connection.threadId!;

beforeAll(async () => {
  if (skip) return;
  db = await testConnection(testEnv().mysql.scratchDatabase);
  root = await rootConnection();
  for (const name of TABLES) {
    await db.query(`DROP TABLE IF EXISTS ${name};
      CREATE TABLE ${name} (id INT AUTO_INCREMENT PRIMARY KEY, course_id VARCHAR(64), n INT) ENGINE=InnoDB;
      INSERT INTO ${name} (course_id, n) VALUES ('course-v1:A+1+T', 1), ('course-v1:A+1+T', 2),
        ('course-v1:B+2+T', 3), ('course-v1:C+3+T', 4), ('course-v1:C+3+T', 5)`);
  }
});

afterAll(async () => {
  if (skip) return;
  for (const name of TABLES) await db.query(`DROP TABLE IF EXISTS ${name}`);
  await db.end();
  await root.end();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

describe.skipIf(skip)("spare connections", () => {
  test("three partitioned tables over two connections open two connections in all, and close them", async () => {
    const cfg = config(`connections = 2
[extract]
preset = "none"
${TABLES.map((name) => `[[tables]]\nname = "${name}"\npartition_fields = ["course_id"]\n`).join("\n")}`);
    const before = await connectionsAccepted();
    const sessionsBefore = await openSessions();
    const summaries = await extractTables(cfg, cfg.tables, { full: true, dryRun: false });
    expect(summaries.map((s) => [s.table, s.error, s.rows, s.files])).toEqual(
      TABLES.map((name) => [name, null, 5, 3]),
    );
    // Every table read its three partitions over both; before, each table opened its own second one.
    expect((await connectionsAccepted()) - before).toBe(2);
    expect(await sessionsSettled(sessionsBefore.length)).toEqual(sessionsBefore);
  });

  test("a spare the server dropped while it waited is replaced by a new connection that works", async () => {
    const cfg = config("");
    const spares = new SpareConnections(cfg.mysql);
    try {
      spares.fill(1);
      const first = await spares.take();
      const dropped = threadId(first);
      spares.give(first);
      await root.query(`KILL ${dropped}`);
      for (let i = 0; i < 100 && first.state === "authenticated"; i++) await Bun.sleep(20);
      expect(first.state).not.toBe("authenticated");
      const next = await spares.take();
      expect(threadId(next)).not.toBe(dropped);
      expect(await query<{ one: number }>(next, "SELECT 1 AS one")).toEqual([{ one: 1 }]);
      await close(next);
    } finally {
      await spares.closeAll();
    }
  });

  // Seen on a host whose MySQL dropped panorama's sessions mid-run (a restart, a KILL, wait_timeout
  // on a long upload): the next table failed with mysql2's "Can't add new command when connection
  // is in closed state", exit 1, though the server was there again.
  test("the main connection dropped between two tables: the next table opens a new one and is read", async () => {
    const cfg = config(`connections = 1
[extract]
preset = "none"
${TABLES.map((name) => `[[tables]]\nname = "${name}"\n`).join("\n")}`);
    let killed = 0;
    const summaries = await extractTables(cfg, cfg.tables, {
      full: true,
      dryRun: false,
      onFile: async () => {
        if (killed > 0) return;
        const mine = threadId(db as unknown as { threadId: number });
        const others = (await openSessions()).filter((id) => id !== mine);
        for (const id of others) await root.query(`KILL ${id}`);
        killed = others.length;
        await sessionsSettled(1);
      },
    });
    expect(killed).toBe(1);
    expect(summaries.map((s) => [s.table, s.error, s.rows])).toEqual(TABLES.map((name) => [name, null, 5]));
  });

  test("a spare that could not be opened: the read's own attempt fails with the cause", async () => {
    const cfg = config("");
    const spares = new SpareConnections({ ...cfg.mysql, host: "127.0.0.1", port: 1 });
    spares.fill(2);
    await expect(spares.take()).rejects.toThrow(/cannot connect: .*ECONNREFUSED/);
    await spares.closeAll();
  });

  test("fill opens no more than asked, give keeps a connection for the next take, closeAll closes them all", async () => {
    const cfg = config("");
    const spares = new SpareConnections(cfg.mysql);
    const sessionsBefore = await openSessions();
    spares.fill(2);
    spares.fill(2);
    const a = await spares.take();
    const b = await spares.take();
    expect((await openSessions()).length - sessionsBefore.length).toBe(2);
    spares.give(a);
    expect(threadId(await spares.take())).toBe(threadId(a));
    spares.give(a);
    spares.give(b);
    await spares.closeAll();
    expect(await sessionsSettled(sessionsBefore.length)).toEqual(sessionsBefore);
  });
});
