import { beforeAll, describe, expect, test } from "bun:test";
import mysql from "mysql2/promise";
import { skipWithoutTestEnv, type TestEnv, testEnv } from "../support/env.ts";

describe.skipIf(skipWithoutTestEnv())("MariaDB of the test environment", () => {
  let env: TestEnv;

  beforeAll(() => {
    env = testEnv();
  });

  const connect = (overrides: mysql.ConnectionOptions = {}): Promise<mysql.Connection> =>
    mysql.createConnection({
      host: env.mysql.host,
      port: env.mysql.port,
      user: env.mysql.user,
      password: env.mysql.password,
      database: env.mysql.database,
      ...overrides,
    });

  test("the panorama user connects over TCP with its password", async () => {
    const conn = await connect();
    try {
      const [rows] = await conn.query<mysql.RowDataPacket[]>("SELECT VERSION() AS version, DATABASE() AS db");
      expect(rows[0]?.version).toMatch(/MariaDB/);
      expect(rows[0]?.db).toBe(env.mysql.database);
    } finally {
      await conn.end();
    }
  });

  test("a wrong password is refused", async () => {
    await expect(connect({ password: `${env.mysql.password}x` })).rejects.toMatchObject({
      code: "ER_ACCESS_DENIED_ERROR",
    });
  });

  test("root needs its password, even over the socket", async () => {
    await expect(
      connect({ host: undefined, port: undefined, socketPath: env.mysql.socket, user: "root", password: "" }),
    ).rejects.toMatchObject({ code: "ER_ACCESS_DENIED_ERROR" });
    const root = await connect({
      socketPath: env.mysql.socket,
      user: "root",
      password: env.mysql.rootPassword,
    });
    await root.end();
  });

  test("the user can create tables in the scratch database", async () => {
    const conn = await connect({ database: env.mysql.scratchDatabase });
    const table = `t_${Date.now()}_${Math.floor(Math.random() * 1e6)}`;
    try {
      await conn.query(
        `CREATE TABLE \`${table}\` (id INT PRIMARY KEY, name VARCHAR(64)) CHARACTER SET utf8mb4`,
      );
      await conn.execute(`INSERT INTO \`${table}\` VALUES (?, ?)`, [1, "Zoë 🎓"]);
      const [rows] = await conn.query<mysql.RowDataPacket[]>(`SELECT name FROM \`${table}\``);
      expect(rows.map((r) => r.name)).toEqual(["Zoë 🎓"]);
    } finally {
      await conn.query(`DROP TABLE IF EXISTS \`${table}\``);
      await conn.end();
    }
  });

  test("the user cannot read the grant tables", async () => {
    const conn = await connect();
    try {
      await expect(conn.query("SELECT * FROM mysql.user")).rejects.toMatchObject({
        code: "ER_TABLEACCESS_DENIED_ERROR",
      });
    } finally {
      await conn.end();
    }
  });
});
