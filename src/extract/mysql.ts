// MySQL edge: connections with the options that keep values exact, clear connection errors,
// information_schema look-ups, and a streamed query that hands rows over in batches with
// backpressure (the connection is paused while the consumer is busy).
import mysql, { type Connection, type ConnectionOptions, type FieldPacket, type QueryError } from "mysql2";
import { closest, IDENTIFIER } from "../config/reader.ts";
import type { MysqlConfig } from "../config/types.ts";
import { PanoramaError } from "../errors.ts";
import { tutorContainerHostAdvice } from "../setup/tutor-hosts.ts";
import { type ColumnKind, encodeRows } from "./csv.ts";
import { paceGc } from "./gc-pace.ts";
import { type PseudonymColumns, type RawField, RawRowEncoder, rawPlan, withPseudonyms } from "./raw-csv.ts";
import { batchReads } from "./read-batching.ts";
import { BatchRowEncoder, RoutingRefused, type RowRoute } from "./wasm/rows-to-csv.ts";

export class MysqlError extends PanoramaError {
  /** the server's or driver's error code (ER_ACCESS_DENIED_ERROR, ECONNREFUSED, ...) */
  readonly code: string;
  constructor(message: string, code: string, hint?: string) {
    super(message, hint);
    this.code = code;
  }
}

export function connectionOptions(config: MysqlConfig): ConnectionOptions {
  return {
    ...(config.socket ? { socketPath: config.socket } : { host: config.host, port: config.port }),
    user: config.user,
    password: config.password,
    database: config.database,
    charset: "utf8mb4",
    // Exact values (DESIGN §5): server text for dates, strings for BIGINT/DECIMAL, JSON as text.
    dateStrings: true,
    supportBigNumbers: true,
    bigNumberStrings: true,
    jsonStrings: true,
    decimalNumbers: false,
    connectTimeout: 15_000,
    ...(config.ssl ? { ssl: {} } : {}),
  };
}

/** "user@host:port/database" — what an operator needs to find the right server; never the password. */
export function describeTarget(config: MysqlConfig): string {
  const where = config.socket ? `socket ${config.socket}` : `${config.host}:${config.port}`;
  return `${config.user}@${where}/${config.database}`;
}

const HINTS: Record<string, string> = {
  ECONNREFUSED: "is MySQL running and listening there? check [mysql] host and port, or socket",
  ENOTFOUND: "the host name does not resolve: check [mysql] host",
  ETIMEDOUT: "no answer: check [mysql] host, port and any firewall between this host and MySQL",
  ENOENT: "no such socket: check [mysql] socket",
  ER_ACCESS_DENIED_ERROR: "check [mysql] user and password, or password_file",
  // MySQL denies a database that does not exist as it denies one not granted.
  ER_DBACCESS_DENIED_ERROR:
    "check [mysql] database (is <database> its name? Tutor's is openedx), or grant the user SELECT on it: GRANT SELECT ON <database>.* TO <user>",
  ER_BAD_DB_ERROR: "check [mysql] database (Tutor's default is openedx)",
  ER_TABLEACCESS_DENIED_ERROR:
    "grant the user SELECT on the table: GRANT SELECT ON <database>.<table> TO <user>",
  ER_NO_SUCH_TABLE: "check the table name, or leave it out with [extract] exclude",
  ER_BAD_FIELD_ERROR: "check the table's fields in the config; `panorama schema pull` prints the real ones",
  // [mysql] ssl = true verifies the server's certificate; MySQL 8 makes itself a self-signed one.
  // (mysql2 gives every TLS failure of the handshake this code; the message says which.)
  HANDSHAKE_SSL_ERROR:
    "if the server's certificate is not trusted (MySQL 8 makes itself a self-signed one), give panorama its CA with NODE_EXTRA_CA_CERTS=/path/to/ca.pem, or set [mysql] ssl = false on a trusted network",
  HANDSHAKE_NO_SSL_SUPPORT: "the server offers no TLS: enable it there, or set [mysql] ssl = false",
  PROTOCOL_CONNECTION_LOST:
    "the server dropped the connection (a KILL CONNECTION, wait_timeout or net_write_timeout, a restart): check the server's log; the next run reads the table again",
  ECONNRESET:
    "the server dropped the connection (a KILL CONNECTION, wait_timeout or net_write_timeout, a restart) or something between reset it: check the server's log; the next run reads the table again",
  ER_LOCK_WAIT_TIMEOUT:
    "another session held the table locked longer than lock_wait_timeout (an ALTER TABLE, LOCK TABLES, an online schema change's cut-over): the next run reads it again; if it recurs, run panorama outside the LMS's schema changes",
  // Statements the DBA's server stopped: the connection itself is still there.
  ER_QUERY_INTERRUPTED:
    "another session stopped the query (KILL QUERY: the DBA, or a query killer such as pt-kill) or the server is shutting down: the next run reads the table again; ask the DBA to spare <user>'s SELECTs",
  ER_STATEMENT_TIMEOUT:
    "MariaDB's max_statement_time stopped the query: the next run tries again, and fails alike while the limit holds; ask the DBA to lift it for this user: ALTER USER <user> WITH MAX_STATEMENT_TIME 0",
  ER_QUERY_TIMEOUT:
    "MySQL's max_execution_time stopped the query: the next run tries again, and fails alike while the limit holds; ask the DBA to lift it (SET GLOBAL max_execution_time = 0), or to let this user's SELECTs run longer",
  // The DBA's limits (DESIGN: a server shared with the LMS).
  ER_CON_COUNT_ERROR:
    "the server's max_connections is reached by its other clients: the next run tries again; if it lasts, ask the DBA to raise max_connections",
  ER_TOO_MANY_USER_CONNECTIONS:
    "the server's max_user_connections is reached for <user> (another panorama, or other sessions of this user?): set [mysql] connections below it, or ask the DBA to raise it",
  ER_USER_LIMIT_REACHED:
    "the DBA set this limit on the account (ALTER USER ... WITH MAX_USER_CONNECTIONS ...): set [mysql] connections to at most its MAX_USER_CONNECTIONS (sessions of another program or panorama logged in as this user count too), or ask the DBA to raise it",
};

const CONNECTION_LIMITS = new Set([
  "ER_CON_COUNT_ERROR",
  "ER_TOO_MANY_USER_CONNECTIONS",
  "ER_USER_LIMIT_REACHED",
]);

/** MariaDB's max_statement_time error, which mysql2 has no name for. */
const ER_STATEMENT_TIMEOUT = 1969;
const STOPPED = new Set([ER_STATEMENT_TIMEOUT, 3024 /* ER_QUERY_TIMEOUT */, 1317 /* ER_QUERY_INTERRUPTED */]);

/**
 * A statement the server stopped, on a connection that is still open: a time limit (MariaDB's
 * max_statement_time, MySQL's max_execution_time) or another session's KILL QUERY.
 */
export function isStatementStopped(error: unknown): boolean {
  return STOPPED.has(Number((error as { errno?: unknown }).errno));
}

/**
 * The connection went away under a read: the server closed it (a restart, a failover, a KILL
 * CONNECTION: MariaDB gives all of them as "Connection lost") or the network cut it.
 */
const LOST = new Set([
  "PROTOCOL_CONNECTION_LOST",
  "ECONNRESET",
  "EPIPE",
  "ER_SERVER_SHUTDOWN",
  "ER_CONNECTION_KILLED",
]);

export function isConnectionLost(error: unknown): boolean {
  return LOST.has(errorCode(error));
}

/**
 * A connection that could not be opened because the server is not there for now: it is
 * restarting (its port or socket refuses, or it closes the handshake), shutting down, or its
 * container's name is gone from Docker's DNS until it is up again. Only asked of a server that
 * answered earlier in the run, so a wrong host or socket is not waited for.
 */
const AWAY = new Set([...LOST, "ECONNREFUSED", "ENOENT", "ENOTFOUND", "EAI_AGAIN"]);

export function isServerAway(error: unknown): boolean {
  return AWAY.has(errorCode(error));
}

/**
 * A connection the server refused because a limit is reached (max_connections, the account's
 * MAX_USER_CONNECTIONS, max_user_connections): an extra connection that it refuses is done
 * without, not a failed read.
 */
export function isConnectionLimit(error: unknown): boolean {
  return CONNECTION_LIMITS.has(String((error as { code?: unknown }).code));
}

/**
 * The account each server let the configured user in as (CURRENT_USER(): 'panorama'@'localhost'),
 * by target: a GRANT to 'panorama' alone means 'panorama'@'%', another account, which MySQL 8
 * refuses to make and MariaDB makes without a password.
 */
const accounts = new Map<string, string>();
const accountKey = (config: MysqlConfig): string => `${describeTarget(config)}\0${config.user}`;

/** The account to GRANT to: the one the server matched, once a session has said it; else the user. */
export function grantee(config: MysqlConfig): string {
  return accounts.get(accountKey(config)) ?? `'${config.user}'`;
}

/**
 * grantee(), asking this session's server for its account (CURRENT_USER()) the first time: only
 * where a GRANT is to be said, not a round trip at every connection.
 */
export async function granteeOf(connection: Connection, config: MysqlConfig): Promise<string> {
  if (!accounts.has(accountKey(config))) {
    const [row] = await query<{ account: string }>(connection, "SELECT CURRENT_USER() AS account").catch(
      () => [],
    );
    const account = row ? quotedAccount(row.account) : null;
    if (account) accounts.set(accountKey(config), account);
  }
  return grantee(config);
}

/** `user@host` as CURRENT_USER() gives it, quoted for a GRANT. */
function quotedAccount(account: string): string | null {
  const at = account.lastIndexOf("@");
  if (at < 1) return null;
  const quote = (part: string) => `'${part.replaceAll("'", "''")}'`;
  return `${quote(account.slice(0, at))}@${quote(account.slice(at + 1))}`;
}

/**
 * The code of a driver's or server's error (a MysqlError keeps it), with a name for those mysql2
 * gives none: MariaDB's max_statement_time, and a statement given to a connection that the server
 * or the network had closed meanwhile (between two partitions' reads), which is one lost.
 */
function errorCode(error: unknown): string {
  const e = (error ?? {}) as { code?: unknown; errno?: unknown; fatal?: unknown; message?: unknown };
  if (typeof e.code === "string") return e.code;
  if (e.errno === ER_STATEMENT_TIMEOUT) return "ER_STATEMENT_TIMEOUT";
  if (e.fatal === true && /connection is in closed state/.test(String(e.message)))
    return "PROTOCOL_CONNECTION_LOST";
  return "UNKNOWN";
}

/** `error` as a MysqlError naming the server; `hint` replaces the one its code has. */
export function mysqlError(error: unknown, config: MysqlConfig, doing: string, hint?: string): MysqlError {
  const e = error as Partial<QueryError> & { message?: string };
  const code = errorCode(error);
  // Refused a database when connecting, before any session could say its account: the server's
  // message names it ("Access denied for user 'panorama'@'localhost' to database ...").
  const named =
    code === "ER_DBACCESS_DENIED_ERROR"
      ? /for user ('(?:[^']|'')*'@'[^']*')/.exec(e.message ?? "")?.[1]
      : undefined;
  const fix = (hint ?? HINTS[code] ?? "")
    .replaceAll("<database>", config.database)
    .replaceAll("<user>", named ?? grantee(config));
  const reason = (e.message ?? String(error)).replaceAll(config.password || "\u0000", "***");
  return new MysqlError(`MySQL ${describeTarget(config)}: ${doing}: ${reason}`, code, fix || undefined);
}

/**
 * The hint for a failed connect(), where it says more than the code's: a Tutor container name that
 * does not resolve here, and a server reached that never sent MySQL's greeting.
 */
function connectHint(
  code: unknown,
  config: MysqlConfig,
  reached: boolean,
  greeted: boolean,
): string | undefined {
  if (code === "ENOTFOUND" && !config.socket) {
    const tutor = tutorContainerHostAdvice("mysql", config.host);
    if (tutor) return `${HINTS.ENOTFOUND}; ${tutor}`;
  }
  // Reached, then dropped or left waiting before the greeting: something else listens there (an
  // HTTP server closes on bytes it cannot read, or waits for a request that never comes). A
  // session lost after connecting keeps the wait_timeout hint.
  if ((code === "PROTOCOL_CONNECTION_LOST" || code === "ETIMEDOUT") && reached && !greeted) {
    return config.socket
      ? `no MySQL handshake came from socket ${config.socket}: check [mysql] socket`
      : `no MySQL handshake came from ${config.host}:${config.port}: is something else listening there? check [mysql] host and port (and ssl)`;
  }
  return undefined;
}

/** What mysql2 keeps of a connection being opened: its socket, and the greeting's flags once read. */
interface Opening {
  stream: { once(event: "connect", listener: () => void): unknown };
  serverCapabilityFlags: number;
}

export async function connect(config: MysqlConfig): Promise<Connection> {
  const connection = mysql.createConnection(connectionOptions(config));
  const opening = connection as unknown as Opening;
  let reached = false;
  opening.stream.once("connect", () => {
    reached = true;
  });
  await new Promise<void>((resolve, reject) => {
    connection.connect((error) =>
      error
        ? reject(
            mysqlError(
              error,
              config,
              "cannot connect",
              connectHint(error.code, config, reached, opening.serverCapabilityFlags !== 0),
            ),
          )
        : resolve(),
    );
  });
  // A dropped connection is reported by the query that was running; this keeps it from crashing the process.
  connection.on("error", () => {});
  // mysql2 writes a placeholder's value into the SQL text with backslash escapes. A server whose
  // sql_mode has NO_BACKSLASH_ESCAPES reads `'a\\b'` as `a\\b`, so a partition value holding a
  // backslash selected no row (its object replaced by a header alone) and one holding a quote
  // failed the query: this session reads backslashes as escapes, whatever the server's mode.
  // And the character set asked for in the handshake is set again: the server's `init_connect`
  // runs after it, and a `SET NAMES utf8` there (an old my.cnf's) sent every emoji as `?`, so
  // a partition value holding one selected no row. So is autocommit, which an `init_connect =
  // 'SET autocommit=0'` (MySQL's manual's own example) turned off: the first SELECT opened a
  // transaction that no statement ended, and a ranged read could not begin its read view.
  await query(
    connection,
    "SET NAMES utf8mb4, SESSION autocommit = 1, SESSION sql_mode = TRIM(BOTH ',' FROM REPLACE(CONCAT(',', @@SESSION.sql_mode, ','), ',NO_BACKSLASH_ESCAPES,', ','))",
  ).catch((error) => {
    connection.destroy();
    throw mysqlError(error, config, "cannot set the session's character set, autocommit and sql_mode");
  });
  return connection;
}

/** End a connection politely, or destroy it when it cannot answer (it died mid-query). */
export function close(connection: Connection): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      connection.destroy();
      resolve();
    }, 1000);
    try {
      connection.end(() => {
        clearTimeout(timer);
        resolve();
      });
    } catch {
      clearTimeout(timer);
      connection.destroy();
      resolve();
    }
  });
}

export function query<T>(
  connection: Connection,
  sql: string,
  values: unknown[] = [],
  rowsAsArray = false,
): Promise<T[]> {
  return new Promise((resolve, reject) => {
    const lost = (error: unknown) => reject(error);
    connection.once("error", lost);
    connection.query({ sql, values, rowsAsArray }, (error, rows) => {
      connection.off("error", lost);
      if (error) reject(error);
      else resolve(rows as T[]);
    });
  });
}

/** Quote an identifier that the config validated ([A-Za-z0-9_]+). */
export function ident(name: string): string {
  if (!/^[A-Za-z0-9_]+$/.test(name)) throw new Error(`not a valid identifier: ${JSON.stringify(name)}`);
  return `\`${name}\``;
}

export interface ColumnInfo {
  name: string;
  /** DATA_TYPE: int, varchar, datetime, ... */
  type: string;
  /** COLUMN_TYPE: int(11), varchar(255), datetime(6), ... */
  columnType: string;
  /** IS_NULLABLE: the column may hold NULL */
  nullable: boolean;
}

/** Columns of a table in table order, or null when the table does not exist. */
export async function tableColumns(
  connection: Connection,
  database: string,
  table: string,
): Promise<ColumnInfo[] | null> {
  const rows = await query<{ name: string; type: string; columnType: string; nullable: string }>(
    connection,
    `SELECT COLUMN_NAME AS name, DATA_TYPE AS type, COLUMN_TYPE AS columnType, IS_NULLABLE AS nullable
       FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION`,
    [database, table],
  );
  if (rows.length === 0) return null;
  return rows.map(columnInfo);
}

/** The table of `database` whose name is closest to `name` (a typo in [[tables]]), if one is close. */
export async function similarTable(
  connection: Connection,
  database: string,
  name: string,
): Promise<string | undefined> {
  const rows = await query<{ name: string }>(
    connection,
    "SELECT TABLE_NAME AS name FROM information_schema.TABLES WHERE TABLE_SCHEMA = ?",
    [database],
  );
  return closest(
    name,
    rows.map((row) => row.name),
  );
}

/**
 * Whether a table, or columns of it, that information_schema does not show are hidden from this
 * user rather than not there: MySQL lists only the tables and columns the user holds a privilege
 * on, so one without SELECT looks absent. Null when they are really not there (or the user may
 * see that they are not); else the server's refusal (ER_TABLEACCESS_DENIED_ERROR,
 * ER_COLUMNACCESS_DENIED_ERROR). `columns` null: the table itself. One `LIMIT 0` query each.
 */
export async function hiddenFromUser(
  connection: Connection,
  table: string,
  columns: string[] | null,
): Promise<QueryError | null> {
  for (const selected of columns === null ? ["1"] : columns.map(ident)) {
    try {
      await query(connection, `SELECT ${selected} FROM ${ident(table)} LIMIT 0`);
    } catch (error) {
      const code = (error as QueryError).code;
      if (code === "ER_TABLEACCESS_DENIED_ERROR" || code === "ER_COLUMNACCESS_DENIED_ERROR")
        return error as QueryError;
      if (code !== "ER_NO_SUCH_TABLE" && code !== "ER_BAD_FIELD_ERROR") throw error;
    }
  }
  return null;
}

/**
 * Fails with the missing privilege when a preset table (`columns` null) or columns of it that
 * information_schema does not show are only hidden from this user (hiddenFromUser): reading on
 * would skip the table, or write its columns empty, every run without a word of the GRANT.
 */
export async function refuseHidden(
  connection: Connection,
  config: MysqlConfig,
  table: string,
  columns: string[] | null,
): Promise<void> {
  const refusal = await hiddenFromUser(connection, table, columns);
  if (!refusal) return;
  const what = refusal.code === "ER_COLUMNACCESS_DENIED_ERROR" ? "a column of it" : "it";
  throw new PanoramaError(
    `${table}: ${config.user} may not SELECT ${what}, so information_schema hides it (${(refusal as { sqlMessage?: string }).sqlMessage ?? refusal.message})`,
    `GRANT SELECT ON ${config.database}.* TO ${await granteeOf(connection, config)}; a user without SELECT on the whole database is refused a table this Open edX release lacks the same way: leave such a table out with [extract] exclude`,
  );
}

/**
 * The columns of a table that panorama cannot name in SQL (only [A-Za-z0-9_]+ is quoted, DESIGN
 * §3): a table read whole (no `fields`) with one of them fails with this, not a bare "not a
 * valid identifier" from deep in a query.
 */
export function unnamableColumns(table: string, columns: { name: string }[]): PanoramaError | null {
  const odd = columns.map((c) => c.name).filter((name) => !IDENTIFIER.test(name));
  if (odd.length === 0) return null;
  return new PanoramaError(
    `${table}: column${odd.length > 1 ? "s" : ""} ${odd.map((n) => JSON.stringify(n)).join(", ")} of the table ${odd.length > 1 ? "are not names" : "is not a name"} panorama reads (letters, digits and underscores only)`,
    "list the table's other columns as its fields in [[tables]] (`panorama schema pull` prints them)",
  );
}

/**
 * Every MySQL table of a run absent, auth_user (a preset table, Django's own, in every release)
 * among them: the configured database is not the LMS's, not a release that lacks tables. The
 * error to fail with; null when some table is there.
 */
export function notTheLmsDatabase(
  config: MysqlConfig,
  tables: ReadonlyArray<{ name: string; preset?: boolean }>,
  absent: ReadonlyArray<string>,
): PanoramaError | null {
  const everyRelease = tables.some((t) => t.preset && t.name === "auth_user");
  if (!everyRelease || !tables.every((t) => absent.includes(t.name))) return null;
  return new PanoramaError(
    `${config.database} has none of the ${tables.length} tables: it is not the LMS's database`,
    "set [mysql] database to the LMS's (Tutor's is openedx)",
  );
}

/** A column as information_schema.COLUMNS gives it (name, type, columnType, nullable aliased). */
export function columnInfo(row: {
  name: string;
  type: string;
  columnType: string;
  nullable: string;
}): ColumnInfo {
  return {
    name: String(row.name),
    type: String(row.type).toLowerCase(),
    columnType: String(row.columnType),
    nullable: String(row.nullable).toUpperCase() !== "NO",
  };
}

export type Cell = string | number | Uint8Array | null;
export type Row = Cell[];

/**
 * Where CSV goes: text or bytes (only valid during the call) and the rows they complete; a
 * returned promise means "wait before sending more".
 */
export type CsvSink = (bytes: Uint8Array | string, rows: number) => undefined | Promise<void>;

interface RowPacket {
  buffer: Buffer;
  /** where its 4-byte header starts */
  start: number;
  offset: number;
  end: number;
  isEOF(): boolean;
}

type RowState = (this: unknown, packet: RowPacket, connection: unknown) => unknown;

/**
 * Rows routed by their first cell (streamCsv's `route`; partition-scan.ts): the CSV of each
 * partition's rows, the module's and the reference encoder's. A promise says "wait".
 */
export interface CsvRoute {
  /** the partitions' values as the server sends them (null: NULL) */
  keys: (Uint8Array | null)[];
  deliver(part: number, csv: Uint8Array, rows: number): undefined | Promise<void>;
}

/** What streamRows() uses of mysql2's PacketParser. */
interface PacketParser {
  execute(chunk: Buffer): unknown;
  /** the payload length of the packet it holds a part of */
  length: number;
  /** bytes it holds of that packet after the 3 length bytes */
  bufferLength: number;
  largePacketParts: unknown[];
}

/**
 * The bytes that complete the packet mysql2's parser holds a part of (0: none), or null when
 * this chunk does not tell (it ends inside the length).
 */
function bytesToFinish(parser: PacketParser, chunk: Buffer): number | null {
  const prototype = Object.getPrototypeOf(parser) as Record<string, unknown>;
  if (parser.execute === prototype.executeStart) return 0;
  if (parser.execute === prototype.executePayload) return parser.length + 1 - parser.bufferLength;
  if (parser.execute === prototype.executeHeader2)
    return chunk.length < 2 ? null : 3 + parser.length + (chunk[0]! << 8) + (chunk[1]! << 16);
  if (parser.execute === prototype.executeHeader3)
    return chunk.length < 1 ? null : 2 + parser.length + (chunk[0]! << 16);
  return null;
}

/**
 * mysql2 hands packets to JS one at a time; the rows of a streamed query go from the socket
 * straight to the batch encoder instead, until the first packet that is not a row (the end of
 * the rows, an error, a row in several packets), from which mysql2's parser goes on. This uses
 * two of mysql2's internals: the connection's `packetParser`, looked up on every read, and its
 * `sequenceId`; a packet the parser holds a part of when the rows start is finished by it.
 */
/**
 * Free a socket read the module has copied whole. Every read is a fresh buffer: freed at once,
 * its memory serves the next read, instead of fresh pages for each (a page fault every 4 KiB)
 * and a pile of garbage for the collector. Only a buffer of its own, which mysql2 never saw.
 */
function release(chunk: Buffer): void {
  if (chunk.byteOffset === 0 && chunk.buffer.byteLength === chunk.length) {
    (chunk.buffer as ArrayBuffer).transfer(0);
  }
}

function streamRows(
  connection: Connection,
  encoder: BatchRowEncoder,
  fail: (error: unknown) => void,
): () => void {
  const conn = connection as unknown as { packetParser: PacketParser; sequenceId: number; stream: unknown };
  const parser = conn.packetParser;
  const batching = batchReads(conn.stream);
  // The rows may all have come with the fields, the end too: the query's end gives the parser back.
  const restore = () => {
    conn.packetParser = parser;
    batching?.stop();
  };
  conn.packetParser = {
    ...parser,
    execute(chunk: Buffer) {
      batching?.read(chunk.length);
      try {
        let rows: Buffer = chunk;
        const finish = parser.largePacketParts.length > 0 ? null : bytesToFinish(parser, chunk);
        if (finish === null || finish > chunk.length) {
          parser.execute(chunk);
          return;
        }
        if (finish > 0) {
          parser.execute(chunk.subarray(0, finish));
          rows = chunk.subarray(finish);
          // That was the first of a row's several packets: the parser reads the others.
          if (parser.largePacketParts.length > 0) {
            parser.execute(rows);
            return;
          }
        }
        const rest = encoder.stream(rows);
        if (rest === null) {
          if (finish === 0) release(chunk);
          return;
        }
        restore();
        conn.sequenceId = rest[3]!;
        parser.execute(Buffer.from(rest.buffer, rest.byteOffset, rest.byteLength));
      } catch (error) {
        restore();
        fail(error);
      }
    },
  };
  return restore;
}

/** mysql2's parsed values of the pseudonymized columns replaced: text as UTF-8, binary as bytes. */
function pseudonymizeRow(row: Row, pseudonyms: PseudonymColumns): void {
  for (const i of pseudonyms.columns) {
    const value = row[i];
    if (value === null || value === undefined || value === "") continue;
    if (value instanceof Uint8Array && value.length === 0) continue;
    row[i] = pseudonyms.pseudonymizer.of(typeof value === "number" ? String(value) : value);
  }
}

/**
 * Stream a query's rows into `sink` as CSV (DESIGN §5). When every column can be copied from
 * the protocol's bytes (rawPlan), rows are encoded straight from the packets; otherwise through
 * mysql2's parser and encodeRows(), in batches of `batchRows`. Backpressure either way: the
 * connection is paused while the sink is busy. Resolves with the number of rows and whether they
 * were encoded from the packets. `pseudonyms` names the columns written as pseudonyms (text
 * columns): the same values in both paths, taken before CSV quoting.
 */
export function streamCsv(
  connection: Connection,
  sql: string,
  values: unknown[],
  kinds: ReadonlyArray<ColumnKind>,
  sink: CsvSink,
  batchRows = 500,
  pseudonyms: PseudonymColumns | null = null,
  route: CsvRoute | null = null,
): Promise<{ rows: number; raw: boolean }> {
  return new Promise((resolve, reject) => {
    let failed = false;
    let busy: Promise<void> | null = null;
    /** gives mysql2 its packet parser back (streamRows) */
    let giveBack = () => {};
    const fail = (error: unknown) => {
      if (failed) return;
      failed = true;
      connection.off("error", fail);
      giveBack();
      connection.destroy();
      // Neither mysql2's parser nor streamRows' gets what the socket still delivers, the rest of
      // an abandoned result: dropped, not parsed into rows (memory) and warnings about its order.
      (connection as unknown as { packetParser: Pick<PacketParser, "execute"> }).packetParser = {
        execute() {},
      };
      reject(error);
    };
    connection.on("error", fail);
    const settle = (current: Promise<void>) => {
      current.then(() => {
        // A later wait includes this one and settles itself.
        if (busy !== current) return;
        busy = null;
        if (!failed) connection.resume();
      }, fail);
    };
    /** A sink's answer: a promise means "wait before sending more". */
    const waitFor = (result: undefined | Promise<void>) => {
      if (!result) return;
      connection.pause();
      const current = busy ? Promise.all([busy, result]).then(() => undefined) : result;
      busy = current;
      settle(current);
    };
    // The sink takes the bytes at once (the raw encoder reuses its buffer) and says when to wait.
    const deliver = (bytes: Uint8Array | string, rows: number) => {
      paceGc(bytes.length);
      waitFor(sink(bytes, rows));
    };
    const routedDeliver = (part: number, csv: Uint8Array, rows: number) => {
      paceGc(csv.length);
      waitFor(route!.deliver(part, csv, rows));
    };
    /** the partition of the row the reference encoder is writing (routed) */
    let referencePart = -1;

    let raw: BatchRowEncoder | RawRowEncoder | null = null;
    let batch: Row[] = [];
    let total = 0;
    const q = connection.query({ sql, values, rowsAsArray: true });
    q.on("fields", (fields: FieldPacket[]) => {
      const defs = fields as unknown as RawField[];
      const plan = rawPlan(route ? defs.slice(1) : defs, kinds);
      const codes = plan && withPseudonyms(plan, pseudonyms);
      if (route && !(codes && BatchRowEncoder.covers(codes))) {
        fail(new RoutingRefused("a column the WebAssembly encoder does not encode"));
        return;
      }
      if (!codes) return;
      const reference = new RawRowEncoder(
        codes,
        route ? (bytes, rows) => routedDeliver(referencePart, bytes, rows) : deliver,
        undefined,
        pseudonyms?.pseudonymizer,
      );
      const routed: RowRoute | null = route && {
        keys: route.keys,
        deliver: routedDeliver,
        reference: (part, buffer, start, end) => {
          referencePart = part;
          reference.row(buffer, start, end);
          reference.flush();
        },
      };
      const batched = BatchRowEncoder.covers(codes)
        ? new BatchRowEncoder(codes, deliver, reference, routed)
        : null;
      raw = batched ?? reference;
      // mysql2 reads rows in the command's `row` state, which fieldsEOF looks up on the instance.
      const command = q as unknown as { row: RowState };
      const parsedRow = Object.getPrototypeOf(command).row as RowState;
      const rawRow: RowState = function (this: unknown, packet, conn) {
        if (packet.isEOF()) {
          giveBack();
          return parsedRow.call(this, packet, conn);
        }
        if (failed) return rawRow;
        try {
          if (batched) batched.packet(packet.buffer, packet.start, packet.offset, packet.end);
          else reference.row(packet.buffer, packet.offset, packet.end);
        } catch (error) {
          fail(error);
        }
        return rawRow;
      };
      command.row = rawRow;
      if (batched) giveBack = streamRows(connection, batched, fail);
    });
    q.on("result", (row: unknown) => {
      if (failed) return;
      if (pseudonyms) pseudonymizeRow(row as Row, pseudonyms);
      batch.push(row as Row);
      if (batch.length >= batchRows) {
        const full = batch;
        batch = [];
        total += full.length;
        try {
          deliver(encodeRows(full, kinds), full.length);
        } catch (error) {
          fail(error);
        }
      }
    });
    q.on("error", fail);
    q.on("end", async () => {
      if (failed) return;
      try {
        const encoder = raw as BatchRowEncoder | RawRowEncoder | null;
        if (encoder) {
          encoder.flush();
          if (encoder instanceof BatchRowEncoder) encoder.release();
          total = encoder.rows;
        } else if (batch.length > 0) {
          total += batch.length;
          deliver(encodeRows(batch, kinds), batch.length);
        }
        while (busy) await busy;
        if (failed) return;
        connection.off("error", fail);
        resolve({ rows: total, raw: encoder !== null });
      } catch (error) {
        fail(error);
      }
    });
  });
}
