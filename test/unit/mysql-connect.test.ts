// connect()'s errors where no MySQL answers: a port where something else listens (it drops the
// connection before any greeting) is told from a session lost later, and a host name that does
// not resolve says so, adding what to do when it is Tutor's container name.
import { afterEach, describe, expect, test } from "bun:test";
import { lookup } from "node:dns/promises";
import type { Socket, TCPSocketListener } from "bun";
import type { MysqlConfig } from "../../src/config/types.ts";
import { connect, isConnectionLost, isServerAway, MysqlError, mysqlError } from "../../src/extract/mysql.ts";

function config(host: string, port: number): MysqlConfig {
  return {
    host,
    port,
    user: "openedx",
    password: "s3cret-pw",
    database: "openedx",
    socket: "",
    ssl: false,
    connections: 1,
  };
}

/** What connect() rejected with. */
async function connectFailure(cfg: MysqlConfig): Promise<MysqlError> {
  try {
    await connect(cfg);
  } catch (error) {
    expect(error).toBeInstanceOf(MysqlError);
    return error as MysqlError;
  }
  throw new Error("connect() succeeded");
}

let server: TCPSocketListener | null = null;
afterEach(() => {
  server?.stop(true);
  server = null;
});

/** A TCP server on a free port: `open` on each connection, `data` on what the client sends. */
function listen(open: (socket: Socket) => void, data: (socket: Socket) => void = () => {}): number {
  server = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { open, data } });
  return server.port;
}

/** A protocol 10 greeting (MySQL 5.7, mysql_native_password) as packet 0. */
function greeting(): Buffer {
  // CLIENT_LONG_PASSWORD | CLIENT_PROTOCOL_41 | CLIENT_SECURE_CONNECTION | CLIENT_PLUGIN_AUTH
  const capabilities = 0x1 | 0x200 | 0x8000 | 0x80000;
  const nonce = Buffer.alloc(20, 0x41);
  const fixed = Buffer.alloc(4 + 8 + 1 + 2 + 1 + 2 + 2 + 1 + 10);
  let at = fixed.writeUInt32LE(7, 0);
  nonce.copy(fixed, at, 0, 8);
  at += 9;
  at = fixed.writeUInt16LE(capabilities & 0xffff, at);
  fixed[at++] = 45; // utf8mb4_general_ci
  at = fixed.writeUInt16LE(2, at); // SERVER_STATUS_AUTOCOMMIT
  at = fixed.writeUInt16LE(capabilities >>> 16, at);
  fixed[at] = 21;
  const payload = Buffer.concat([
    Buffer.from([10]),
    Buffer.from("5.7.44\0"),
    fixed,
    nonce.subarray(8, 20),
    Buffer.from([0]),
    Buffer.from("mysql_native_password\0"),
  ]);
  const header = Buffer.alloc(4);
  header.writeUIntLE(payload.length, 0, 3);
  return Buffer.concat([header, payload]);
}

const LOST = "Connection lost: The server closed the connection.";
const noHandshake = (port: number) =>
  `no MySQL handshake came from 127.0.0.1:${port}: is something else listening there? check [mysql] host and port (and ssl)`;

describe("a port that answers but is not MySQL", () => {
  test("an HTTP server's 400, then the close: no MySQL handshake from host:port", async () => {
    const port = listen((socket) => {
      socket.write("HTTP/1.1 400 Bad Request\r\n\r\n");
      socket.end();
    });
    const error = await connectFailure(config("127.0.0.1", port));
    expect(error.message).toBe(`MySQL openedx@127.0.0.1:${port}/openedx: cannot connect: ${LOST}`);
    expect(error.code).toBe("PROTOCOL_CONNECTION_LOST");
    expect(error.hint).toBe(noHandshake(port));
  });

  test("a server that closes at once: the same", async () => {
    const port = listen((socket) => socket.end());
    const error = await connectFailure(config("127.0.0.1", port));
    expect(error.message).toBe(`MySQL openedx@127.0.0.1:${port}/openedx: cannot connect: ${LOST}`);
    expect(error.hint).toBe(noHandshake(port));
  });

  test("a MySQL greeting, then the close: not a missing handshake, the usual hint", async () => {
    // Closed once the client answered the greeting (with its credentials).
    const port = listen(
      (socket) => socket.write(greeting()),
      (socket) => socket.end(),
    );
    const error = await connectFailure(config("127.0.0.1", port));
    expect(error.code).toBe("PROTOCOL_CONNECTION_LOST");
    expect(error.hint).toBe(
      "the server dropped the connection (a KILL CONNECTION, wait_timeout or net_write_timeout, a restart): check the server's log; the next run reads the table again",
    );
  });

  test("a session lost after connecting keeps the wait_timeout hint", () => {
    const lost = Object.assign(new Error(LOST), { code: "PROTOCOL_CONNECTION_LOST", fatal: true });
    const error = mysqlError(lost, config("127.0.0.1", 3306), "reading auth_user");
    expect(error.message).toBe(`MySQL openedx@127.0.0.1:3306/openedx: reading auth_user: ${LOST}`);
    expect(error.hint).toBe(
      "the server dropped the connection (a KILL CONNECTION, wait_timeout or net_write_timeout, a restart): check the server's log; the next run reads the table again",
    );
  });

  test("lost, or not: what has a table read again (a statement on a connection closed meanwhile too)", () => {
    const target = config("127.0.0.1", 3306);
    // mysql2's own words for a statement given to a connection that has closed: no code, fatal.
    const closed = Object.assign(new Error("Can't add new command when connection is in closed state"), {
      fatal: true,
    });
    const wrapped = mysqlError(closed, target, "reading lost_bits");
    expect(wrapped.code).toBe("PROTOCOL_CONNECTION_LOST");
    expect(wrapped.hint).toContain("the server dropped the connection");
    for (const lost of [closed, wrapped, { code: "ECONNRESET" }, { code: "ER_SERVER_SHUTDOWN" }])
      expect(isConnectionLost(lost)).toBe(true);
    const notLost = [
      Object.assign(new Error("Can't add new command when connection is in closed state"), { fatal: false }),
      { code: "ER_QUERY_INTERRUPTED", errno: 1317 },
      { code: "ER_NO_SUCH_TABLE" },
      { code: "ECONNREFUSED" },
      new Error("some other failure"),
      null,
    ];
    for (const other of notLost) expect(isConnectionLost(other)).toBe(false);
    // Away for now (the server restarting): its port or socket refuses, it closes the handshake,
    // or its container's name does not resolve until it is up.
    for (const code of ["ECONNREFUSED", "ENOENT", "PROTOCOL_CONNECTION_LOST", "ENOTFOUND", "EAI_AGAIN"])
      expect(isServerAway({ code })).toBe(true);
    for (const code of [
      "ER_ACCESS_DENIED_ERROR",
      "ER_DBACCESS_DENIED_ERROR",
      "ER_CON_COUNT_ERROR",
      "HANDSHAKE_SSL_ERROR",
    ])
      expect(isServerAway({ code })).toBe(false);
  });
});

/** Whether `host` resolves here (a network may have a host named mysql). */
async function resolves(host: string): Promise<boolean> {
  try {
    await lookup(host);
    return true;
  } catch {
    return false;
  }
}

const tutorNameResolves = await resolves("mysql");

describe("a host name that does not resolve", () => {
  test("any name: check [mysql] host", async () => {
    // .invalid never resolves (RFC 2606).
    const error = await connectFailure(config("db.invalid", 3306));
    expect(error.code).toBe("ENOTFOUND");
    expect(error.hint).toBe("the host name does not resolve: check [mysql] host");
  });

  test.skipIf(tutorNameResolves)("Tutor's container name: says so, and what to set instead", async () => {
    const error = await connectFailure(config("mysql", 3306));
    expect(error.code).toBe("ENOTFOUND");
    expect(error.hint).toBe(
      'the host name does not resolve: check [mysql] host; "mysql" is Tutor\'s container name, which resolves only inside Tutor\'s Docker network: set [mysql] host = "127.0.0.1" and port to the port Tutor publishes it on, or run panorama inside that network',
    );
  });
});

test("a database denied: the name is questioned first (MySQL denies one that does not exist alike), then the GRANT", () => {
  const denied = Object.assign(new Error("Access denied for user 'openedx'@'%' to database 'edxap'"), {
    code: "ER_DBACCESS_DENIED_ERROR",
  });
  const error = mysqlError(denied, { ...config("127.0.0.1", 3306), database: "edxap" }, "connecting");
  expect(error.hint).toBe(
    "check [mysql] database (is edxap its name? Tutor's is openedx), or grant the user SELECT on it: GRANT SELECT ON edxap.* TO 'openedx'@'%'",
  );
  // The account the server matched, as its message names it: a GRANT to 'openedx' alone would be
  // to 'openedx'@'%', another account.
  const local = Object.assign(new Error("Access denied for user 'openedx'@'localhost' to database 'edxap'"), {
    code: "ER_DBACCESS_DENIED_ERROR",
  });
  expect(mysqlError(local, { ...config("127.0.0.1", 3306), database: "edxap" }, "connecting").hint).toEndWith(
    "GRANT SELECT ON edxap.* TO 'openedx'@'localhost'",
  );
});
