// MongoDB edge: a client for the modulestore built from [mongodb] (a URI, or host/port/user/
// password/database/auth_source), and driver errors turned into messages for a person that name
// the server, the user and the database, never the password.
import {
  type Db,
  MongoClient,
  type MongoClientOptions,
  MongoNetworkTimeoutError,
  MongoParseError,
  MongoServerError,
  MongoServerSelectionError,
} from "mongodb";
import { blankUriPassword, decodeOrNull, splitUri, uriCredentials } from "../config/secrets.ts";
import type { MongodbConfig } from "../config/types.ts";
import { PanoramaError } from "../errors.ts";
import { tutorContainerHostAdvice } from "../setup/tutor-hosts.ts";
import { releaseConsumedReads } from "./mongodb-read-release.ts";
import type { ServerWait } from "./server-wait.ts";

export class MongodbError extends PanoramaError {
  /** the server's codeName (AuthenticationFailed, Unauthorized, ...) or the network error code */
  readonly code: string;
  constructor(message: string, code: string, hint?: string) {
    super(message, hint);
    this.code = code;
  }
}

/** How to reach the server: what the driver needs, and what a person is told. */
export interface MongoTarget {
  uri: string;
  options: MongoClientOptions;
  database: string;
  /** "user@host:port/database" (or "(no user)@..."): never the password */
  description: string;
}

/** Short, because a wrong host should fail a cron run in seconds, not after the driver's 30 s. */
const SERVER_SELECTION_TIMEOUT_MS = 10_000;

interface ParsedUri {
  scheme: "mongodb" | "mongodb+srv";
  user: string;
  password: string;
  hosts: string[];
  database: string;
  /** query parameter names, lower case */
  params: Set<string>;
  /** "user name", "password": the parts holding characters the driver wants percent-encoded */
  unescaped: string[];
}

function decode(text: string): string {
  return decodeOrNull(text) ?? text;
}

/** What the driver refuses unencoded in a user name or password (besides a "%" not followed by hex). */
const UNESCAPED = /[:/?#[\]@]|%(?![0-9A-Fa-f]{2})/;

function parseUri(uri: string): ParsedUri {
  const { head, user, password, rest } = splitUri(uri);
  const m = /^([^/?]*)(?:\/([^?]*))?(?:\?(.*))?$/.exec(rest);
  if (!m || (head !== "mongodb://" && head !== "mongodb+srv://")) {
    throw new MongodbError(
      "MongoDB: [mongodb] uri is not a mongodb:// or mongodb+srv:// URI",
      "BadUri",
      "write it as mongodb://user:password@host:port/database",
    );
  }
  const params = new Set(
    (m[3] ?? "")
      .split("&")
      .filter((p) => p !== "")
      .map((p) => (p.split("=")[0] ?? "").toLowerCase()),
  );
  return {
    scheme: head === "mongodb+srv://" ? "mongodb+srv" : "mongodb",
    user: decode(user),
    password,
    hosts: (m[1] ?? "").split(",").filter((h) => h !== ""),
    database: decode(m[2] ?? ""),
    params,
    unescaped: [UNESCAPED.test(user) && "user name", UNESCAPED.test(password) && "password"].filter(
      (part): part is string => part !== false,
    ),
  };
}

/** The URI (or URIs within a text) with the password replaced by ***, for messages. */
export function redactUri(text: string): string {
  return text.replace(/mongodb(?:\+srv)?:\/\/\S+/g, blankUriPassword);
}

function hostWithPort(host: string, port: number): string {
  if (host.startsWith("[") || /^[^:]+:\d+$/.test(host)) return host;
  // A bare IPv6 address: brackets keep its colons apart from the port's.
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}

/** The driver's URI and options for a config; options the URI sets itself are left to the URI. */
export function mongoTarget(config: MongodbConfig): MongoTarget {
  if (config.uri) {
    const parsed = parseUri(config.uri);
    const database = parsed.database || config.database;
    const options: MongoClientOptions = {};
    const unset = (name: string) => !parsed.params.has(name.toLowerCase());
    if (unset("appName")) options.appName = "panorama";
    if (unset("readPreference")) options.readPreference = "secondaryPreferred";
    if (unset("serverSelectionTimeoutMS")) options.serverSelectionTimeoutMS = SERVER_SELECTION_TIMEOUT_MS;
    if (config.tls && unset("tls") && unset("ssl")) options.tls = true;
    // One named server is read directly (no replica-set discovery, which fails when the members'
    // advertised names do not resolve from this host); seed lists, SRV records and URIs that
    // choose for themselves keep the driver's discovery.
    const single = parsed.scheme === "mongodb" && parsed.hosts.length === 1;
    if (single && unset("directConnection") && unset("replicaSet") && unset("loadBalanced")) {
      options.directConnection = true;
    }
    if (config.password && !parsed.user) {
      throw new MongodbError(
        "MongoDB: [mongodb] password is set but the uri names no user",
        "BadUri",
        "put the user in the uri (mongodb://user@host/...) or leave password out",
      );
    }
    if (parsed.user && !parsed.password && config.password) {
      options.auth = { username: parsed.user, password: config.password };
    }
    if (config.auth_source && unset("authSource")) options.authSource = config.auth_source;
    const description = `${parsed.user || "(no user)"}@${parsed.hosts.join(",")}/${database}`;
    if (parsed.unescaped.length > 0) {
      throw new MongodbError(
        `MongoDB ${description}: the ${parsed.unescaped.join(" and ")} in [mongodb] uri ${parsed.unescaped.length > 1 ? "hold" : "holds"} characters that must be percent-encoded`,
        "BadUri",
        "in the uri write % as %25, @ as %40, / as %2F, : as %3A, ? as %3F, # as %23; or leave the password out of the uri and set [mongodb] password",
      );
    }
    return { uri: config.uri, options, database, description };
  }
  const hosts = config.host
    .split(",")
    .filter((h) => h !== "")
    .map((h) => hostWithPort(h, config.port));
  const options: MongoClientOptions = {
    appName: "panorama",
    readPreference: "secondaryPreferred",
    serverSelectionTimeoutMS: SERVER_SELECTION_TIMEOUT_MS,
    directConnection: hosts.length === 1,
  };
  if (config.tls) options.tls = true;
  if (config.user) {
    options.auth = { username: config.user, password: config.password };
    // Upstream authenticated against the data's database; Tutor creates its user in admin.
    options.authSource = config.auth_source || config.database;
  }
  return {
    uri: `mongodb://${hosts.join(",")}/`,
    options,
    database: config.database,
    description: `${config.user || "(no user)"}@${hosts.join(",")}/${config.database}`,
  };
}

/** Every form of the configured password that could appear in a driver message. */
function passwords(config: MongodbConfig): string[] {
  const found = [config.password];
  if (config.uri) {
    const raw = uriCredentials(config.uri).password;
    found.push(raw, decode(raw));
  }
  return found.filter((p) => p.length > 0).sort((a, b) => b.length - a.length);
}

function redact(text: string, config: MongodbConfig): string {
  let out = redactUri(text);
  for (const secret of passwords(config)) out = out.split(secret).join("***");
  return out;
}

const NETWORK_HINTS: [RegExp, string, string][] = [
  [
    /ECONNREFUSED/,
    "ECONNREFUSED",
    "is MongoDB running and listening there? check [mongodb] host and port (or uri)",
  ],
  [
    /ENOTFOUND|EAI_AGAIN|getaddrinfo/,
    "ENOTFOUND",
    "the host name does not resolve: check [mongodb] host (or uri)",
  ],
  [
    /ETIMEDOUT|timed out|timeout/i,
    "ETIMEDOUT",
    "no answer: check [mongodb] host, port and tls, and any firewall between this host and MongoDB",
  ],
  [
    /SSL|TLS|certificate|EPROTO/i,
    "TLS",
    "the TLS handshake failed: check [mongodb] tls (and the server's certificate)",
  ],
];

/** Codes of a server never reached: the network ones above but TLS (which got an answer). */
const UNREACHABLE = new Set(["ECONNREFUSED", "ENOTFOUND", "ETIMEDOUT", "ServerSelection"]);

/** Whether `error` (from mongodbError) is a server that could not be reached at all. */
export function isUnreachable(error: unknown): error is MongodbError {
  return error instanceof MongodbError && UNREACHABLE.has(error.code);
}

/**
 * The connection lost under a read: closed by the server or the network (a restart, a cut), or
 * the server said it is going down or changing its replica set's primary. The driver tries a
 * lost `find` again by itself, not the getMore of a cursor half read.
 */
const LOST = new Set([
  "MongoNetworkError",
  "ShutdownInProgress",
  "InterruptedAtShutdown",
  "InterruptedDueToReplStateChange",
  "PrimarySteppedDown",
  "NotPrimaryOrSecondary",
]);

/** Whether `error` (from mongodbError) is a connection lost mid-read (see LOST). */
export function isConnectionLost(error: unknown): error is MongodbError {
  return error instanceof MongodbError && LOST.has(error.code);
}

/** A driver error as a MongodbError: "MongoDB user@host:port/db: <doing>: <reason>" plus a hint. */
export function mongodbError(error: unknown, config: MongodbConfig, doing: string): MongodbError {
  if (error instanceof MongodbError) return error;
  let description: string;
  try {
    description = mongoTarget(config).description;
  } catch {
    description = redactUri(config.uri);
  }
  const message = error instanceof Error ? error.message : String(error);
  const reason = redact(message, config);
  const where = `MongoDB ${description}: ${doing}: ${reason}`;
  if (error instanceof MongoServerError) {
    const codeName = error.codeName ?? String(error.code ?? "ServerError");
    if (error.code === 18 || codeName === "AuthenticationFailed") {
      return new MongodbError(
        where,
        "AuthenticationFailed",
        "check [mongodb] user, password and auth_source (the database holding the user: Tutor's is admin)",
      );
    }
    if (error.code === 13 || codeName === "Unauthorized") {
      return new MongodbError(
        where,
        "Unauthorized",
        `give the user the read role on the database: db.grantRolesToUser("<user>", [{role: "read", db: "${mongoTarget(config).database}"}])`,
      );
    }
    return new MongodbError(where, codeName);
  }
  if (error instanceof MongoParseError) return new MongodbError(where, "BadUri", "check [mongodb] uri");
  for (const [pattern, code, hint] of NETWORK_HINTS) {
    if (!pattern.test(message)) continue;
    const tutor =
      code === "ENOTFOUND" && !config.uri ? tutorContainerHostAdvice("mongodb", config.host) : undefined;
    return new MongodbError(where, code, tutor ? `${hint}; ${tutor}` : hint);
  }
  if (error instanceof MongoServerSelectionError || error instanceof MongoNetworkTimeoutError) {
    return new MongodbError(where, "ServerSelection", NETWORK_HINTS[2]![2]);
  }
  return new MongodbError(where, error instanceof Error ? error.name : "Error");
}

export interface MongoConnection {
  client: MongoClient;
  db: Db;
  target: MongoTarget;
}

/**
 * Until the server that went away answers again (a connection that pings), within `wait`'s
 * budget: then the last failure is thrown. Each attempt waits up to the driver's server
 * selection timeout.
 */
export async function waitForMongo(config: MongodbConfig, wait: ServerWait): Promise<void> {
  await wait.whenBack(async () => {
    const { client } = await connectMongo(config);
    await client.close().catch(() => {});
  }, isUnreachable);
}

/** Connect, authenticate and ping, so that a wrong host or password fails here, clearly. */
export async function connectMongo(config: MongodbConfig): Promise<MongoConnection> {
  const target = mongoTarget(config);
  releaseConsumedReads();
  let client: MongoClient;
  try {
    client = new MongoClient(target.uri, target.options);
  } catch (error) {
    throw mongodbError(error, config, "invalid connection settings");
  }
  try {
    await client.connect();
    const db = client.db(target.database);
    await db.command({ ping: 1 });
    return { client, db, target };
  } catch (error) {
    await client.close().catch(() => {});
    throw mongodbError(error, config, "cannot connect");
  }
}
