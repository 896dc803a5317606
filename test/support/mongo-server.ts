// A stand-in for MongoDB, which cannot run here: a loopback server (node:net) speaking enough of
// the wire protocol for the real `mongodb` driver (v7) to connect, authenticate and read, so the
// tests exercise panorama's real MongoDB code path, driver included.
//
// Speaks: the legacy OP_QUERY handshake (the driver's first `ismaster`, before it knows the wire
// version), then OP_MSG (a kind 0 body plus kind 1 document sequences). Commands: hello/isMaster,
// ping, buildInfo, saslStart/saslContinue (SCRAM-SHA-256, checked for real, so a wrong password
// fails the way it does against MongoDB), find (filters: equality on dotted paths, $in, $exists,
// $eq; inclusion or exclusion projections; limit), getMore, killCursors, endSessions. Anything else
// gets MongoDB's CommandNotFound error. It serves SMALL batches (3 documents unless told otherwise),
// whatever batchSize the driver asks for, so getMore is always exercised.
//
// Not served: writes, sorting, aggregation, TLS, compression. The hello reply carries no
// topologyVersion, so the driver's monitor polls instead of streaming (no exhaust cursors).
import { createHash, createHmac, pbkdf2Sync, randomBytes, timingSafeEqual } from "node:crypto";
import { createServer, type Server, type Socket } from "node:net";
import { Binary, BSON, type Document, Long, ObjectId } from "mongodb";

const OP_REPLY = 1;
const OP_QUERY = 2004;
const OP_MSG = 2013;
const CHECKSUM_PRESENT = 1;
const MORE_TO_COME = 2;
const SCRAM_ITERATIONS = 4096;

export interface MongoUser {
  user: string;
  password: string;
  /** the authentication database (auth_source) */
  db: string;
}

export interface MongoServerOptions {
  /** when set, every command but the handshake, ping and SASL needs a successful login */
  users?: MongoUser[];
  /** most documents per batch, whatever the driver asks for (default 3) */
  maxBatch?: number;
  /** keep a log of the commands received (default true; the benchmark turns it off) */
  record?: boolean;
}

/** A command as received, for assertions. */
export interface ReceivedCommand {
  name: string;
  db: string;
  body: Document;
}

interface Cursor {
  ns: string;
  docs: Document[];
  projection: Document | undefined;
}

interface Conversation {
  user: MongoUser;
  authMessage: string;
  saltedPassword: Buffer;
}

interface ConnectionState {
  id: number;
  authenticated: boolean;
  conversations: Map<number, Conversation>;
}

class CommandError extends Error {
  constructor(
    message: string,
    readonly code: number,
    readonly codeName: string,
  ) {
    super(message);
  }
}

export class MongoTestServer {
  readonly host = "127.0.0.1";
  port = 0;
  /** every command received, in order (when record is on) */
  readonly commands: ReceivedCommand[] = [];
  private readonly collections = new Map<string, Document[]>();
  /** per collection, documents by hex ObjectId _id: MongoDB's _id index, so $in on _id scales */
  private readonly byId = new Map<string, Map<string, Document>>();
  private readonly cursors = new Map<number, Cursor>();
  private readonly sockets = new Set<Socket>();
  private readonly server: Server;
  private readonly users: MongoUser[];
  private readonly maxBatch: number;
  private readonly record: boolean;
  private nextCursor = 1;
  private nextConnection = 1;
  private nextConversation = 1;
  private nextRequest = 1;

  private constructor(options: MongoServerOptions) {
    this.users = options.users ?? [];
    this.maxBatch = options.maxBatch ?? 3;
    this.record = options.record ?? true;
    this.server = createServer((socket) => this.accept(socket));
  }

  static async start(options: MongoServerOptions = {}): Promise<MongoTestServer> {
    const server = new MongoTestServer(options);
    await new Promise<void>((resolve, reject) => {
      server.server.once("error", reject);
      server.server.listen(0, server.host, () => resolve());
    });
    const address = server.server.address();
    if (address === null || typeof address === "string") throw new Error("mongo test server: no TCP address");
    server.port = address.port;
    return server;
  }

  /** `mongodb://127.0.0.1:<port>` */
  get uri(): string {
    return `mongodb://${this.host}:${this.port}`;
  }

  /** Add documents to `db.collection` (created on first use). */
  insert(db: string, collection: string, docs: Document[]): void {
    const ns = `${db}.${collection}`;
    const list = this.collections.get(ns) ?? [];
    const ids = this.byId.get(ns) ?? new Map<string, Document>();
    for (const doc of docs) {
      list.push(doc);
      if (doc._id instanceof ObjectId) ids.set(doc._id.toHexString(), doc);
    }
    this.collections.set(ns, list);
    this.byId.set(ns, ids);
  }

  /** Empty every collection and forget the command log. */
  reset(): void {
    this.collections.clear();
    this.byId.clear();
    this.cursors.clear();
    this.commands.length = 0;
  }

  /** Commands of one name received so far, optionally against one collection. */
  received(name: string, collection?: string): ReceivedCommand[] {
    return this.commands.filter(
      (c) => c.name === name && (collection === undefined || c.body[name] === collection),
    );
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(socket: Socket): void {
    this.sockets.add(socket);
    const state: ConnectionState = {
      id: this.nextConnection++,
      authenticated: false,
      conversations: new Map(),
    };
    let pending: Buffer = Buffer.alloc(0);
    socket.on("data", (chunk: Buffer) => {
      pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
      while (pending.length >= 4) {
        const length = pending.readInt32LE(0);
        if (pending.length < length) break;
        const message = pending.subarray(0, length);
        pending = pending.subarray(length);
        const reply = this.handleMessage(message, state);
        if (reply) socket.write(reply);
      }
    });
    socket.on("error", () => {});
    socket.on("close", () => this.sockets.delete(socket));
  }

  private handleMessage(message: Buffer, state: ConnectionState): Buffer | null {
    const requestId = message.readInt32LE(4);
    const opCode = message.readInt32LE(12);
    if (opCode === OP_MSG) {
      const flags = message.readUInt32LE(16);
      const body = parseOpMsg(message, flags);
      const reply = this.run(body, state);
      return flags & MORE_TO_COME ? null : this.opMsg(requestId, reply);
    }
    if (opCode === OP_QUERY) {
      // flags (4), full collection name (cstring), numberToSkip (4), numberToReturn (4), query
      const nameEnd = message.indexOf(0, 20);
      const collection = message.toString("utf8", 20, nameEnd);
      const start = nameEnd + 1 + 8;
      const size = message.readInt32LE(start);
      const query = BSON.deserialize(message.subarray(start, start + size));
      const db = collection.split(".")[0] ?? "admin";
      return this.opReply(requestId, this.run({ ...query, $db: db }, state));
    }
    return this.opMsg(requestId, {
      ok: 0,
      errmsg: `the mongo test server does not speak opcode ${opCode}`,
      code: 352,
      codeName: "UnsupportedOpQueryCommand",
    });
  }

  private run(body: Document, state: ConnectionState): Document {
    const name = Object.keys(body)[0] ?? "";
    const db = typeof body.$db === "string" ? body.$db : "admin";
    if (this.record) this.commands.push({ name, db, body });
    try {
      return this.dispatch(name, db, body, state);
    } catch (error) {
      if (error instanceof CommandError) {
        return { ok: 0, errmsg: error.message, code: error.code, codeName: error.codeName };
      }
      return { ok: 0, errmsg: `mongo test server: ${String(error)}`, code: 1, codeName: "InternalError" };
    }
  }

  private dispatch(name: string, db: string, body: Document, state: ConnectionState): Document {
    const open = ["hello", "ismaster", "ping", "buildinfo", "saslstart", "saslcontinue", "endsessions"];
    if (this.users.length > 0 && !state.authenticated && !open.includes(name.toLowerCase())) {
      throw new CommandError(`command ${name} requires authentication`, 13, "Unauthorized");
    }
    switch (name.toLowerCase()) {
      case "hello":
      case "ismaster":
        return this.hello(body, state);
      case "ping":
        return { ok: 1 };
      case "buildinfo":
        return { version: "7.0.0", versionArray: [7, 0, 0, 0], bits: 64, maxBsonObjectSize: 16777216, ok: 1 };
      case "saslstart":
        return this.saslStart(db, body, state);
      case "saslcontinue":
        return this.saslContinue(body, state);
      case "find":
        return this.find(db, body);
      case "getmore":
        return this.getMore(body);
      case "killcursors":
        return this.killCursors(body);
      case "endsessions":
        return { ok: 1 };
      default:
        throw new CommandError(`no such command: '${name}'`, 59, "CommandNotFound");
    }
  }

  private hello(body: Document, state: ConnectionState): Document {
    const reply: Document = {
      helloOk: true,
      ismaster: true,
      isWritablePrimary: true,
      maxBsonObjectSize: 16777216,
      maxMessageSizeBytes: 48000000,
      maxWriteBatchSize: 100000,
      localTime: new Date(),
      logicalSessionTimeoutMinutes: 30,
      connectionId: state.id,
      minWireVersion: 0,
      maxWireVersion: 21,
      readOnly: false,
      ok: 1,
    };
    if (typeof body.saslSupportedMechs === "string" && this.findUser(body.saslSupportedMechs)) {
      reply.saslSupportedMechs = ["SCRAM-SHA-256"];
    }
    return reply;
  }

  private findUser(qualified: string): MongoUser | undefined {
    const dot = qualified.indexOf(".");
    const db = qualified.slice(0, dot);
    const user = qualified.slice(dot + 1);
    return this.users.find((u) => u.db === db && u.user === user);
  }

  // SCRAM-SHA-256 (RFC 7677) as MongoDB runs it: saslStart carries client-first, the reply
  // server-first; saslContinue carries client-final, the reply the server signature, done.
  private saslStart(db: string, body: Document, state: ConnectionState): Document {
    if (body.mechanism !== "SCRAM-SHA-256") {
      throw new CommandError(
        `Received authentication for mechanism ${body.mechanism} which is not enabled`,
        334,
        "MechanismUnavailable",
      );
    }
    const clientFirst = payloadText(body.payload);
    const bare = clientFirst.replace(/^n,[^,]*,/, "");
    const fields = scramFields(bare);
    const user = this.users.find((u) => u.db === db && u.user === fields.n);
    if (!user) throw new CommandError("Authentication failed.", 18, "AuthenticationFailed");
    const salt = randomBytes(16);
    const nonce = `${fields.r}${randomBytes(18).toString("base64")}`;
    const serverFirst = `r=${nonce},s=${salt.toString("base64")},i=${SCRAM_ITERATIONS}`;
    const conversationId = this.nextConversation++;
    state.conversations.set(conversationId, {
      user,
      authMessage: `${bare},${serverFirst}`,
      saltedPassword: pbkdf2Sync(user.password.normalize("NFKC"), salt, SCRAM_ITERATIONS, 32, "sha256"),
    });
    return { conversationId, done: false, payload: new Binary(Buffer.from(serverFirst)), ok: 1 };
  }

  private saslContinue(body: Document, state: ConnectionState): Document {
    const conversationId = Number(body.conversationId);
    const conversation = state.conversations.get(conversationId);
    if (!conversation) throw new CommandError("No SASL session state found", 17, "ProtocolError");
    state.conversations.delete(conversationId);
    const clientFinal = payloadText(body.payload);
    const withoutProof = clientFinal.replace(/,p=[^,]*$/, "");
    const proof = Buffer.from(scramFields(clientFinal).p ?? "", "base64");
    const authMessage = `${conversation.authMessage},${withoutProof}`;
    const clientKey = hmac(conversation.saltedPassword, "Client Key");
    const storedKey = createHash("sha256").update(clientKey).digest();
    const signature = hmac(storedKey, authMessage);
    const claimedKey = Buffer.from(proof.map((b, i) => b ^ (signature[i] ?? 0)));
    const claimedStored = createHash("sha256").update(claimedKey).digest();
    if (proof.length !== 32 || !timingSafeEqual(claimedStored, storedKey)) {
      throw new CommandError("Authentication failed.", 18, "AuthenticationFailed");
    }
    state.authenticated = true;
    const serverSignature = hmac(hmac(conversation.saltedPassword, "Server Key"), authMessage);
    return {
      conversationId,
      done: true,
      payload: new Binary(Buffer.from(`v=${serverSignature.toString("base64")}`)),
      ok: 1,
    };
  }

  private find(db: string, body: Document): Document {
    const collection = String(body.find);
    const ns = `${db}.${collection}`;
    const filter = (body.filter ?? {}) as Document;
    let docs = this.candidates(ns, filter).filter((doc) => matches(doc, filter));
    if (typeof body.limit === "number" && body.limit > 0) docs = docs.slice(0, body.limit);
    const projection = body.projection as Document | undefined;
    const cursor: Cursor = { ns, docs, projection };
    const firstBatch = this.take(cursor, typeof body.batchSize === "number" ? body.batchSize : 101);
    let id = 0;
    if (cursor.docs.length > 0 && body.singleBatch !== true) {
      id = this.nextCursor++;
      this.cursors.set(id, cursor);
    }
    return { cursor: { firstBatch, id: Long.fromNumber(id), ns }, ok: 1 };
  }

  /** The documents a filter can match: through the _id index for `_id: ObjectId` or `{$in: [...]}`. */
  private candidates(ns: string, filter: Document): Document[] {
    const all = this.collections.get(ns) ?? [];
    const wanted =
      filter._id instanceof ObjectId
        ? [filter._id]
        : isOperatorObject(filter._id)
          ? filter._id.$in
          : undefined;
    if (!Array.isArray(wanted) || !wanted.every((id) => id instanceof ObjectId)) return all;
    const ids = this.byId.get(ns);
    const found = new Set<Document>();
    for (const id of wanted as ObjectId[]) {
      const doc = ids?.get(id.toHexString());
      if (doc) found.add(doc);
    }
    // In the order of the $in list: MongoDB promises no order here, and panorama relies on none.
    return [...found];
  }

  private getMore(body: Document): Document {
    const id = Number(body.getMore);
    const cursor = this.cursors.get(id);
    if (!cursor) throw new CommandError(`cursor id ${id} not found`, 43, "CursorNotFound");
    const nextBatch = this.take(cursor, typeof body.batchSize === "number" ? body.batchSize : 101);
    const done = cursor.docs.length === 0;
    if (done) this.cursors.delete(id);
    return { cursor: { nextBatch, id: Long.fromNumber(done ? 0 : id), ns: cursor.ns }, ok: 1 };
  }

  private killCursors(body: Document): Document {
    const ids = ((body.cursors ?? []) as unknown[]).map(Number);
    const killed = ids.filter((id) => this.cursors.delete(id));
    return {
      cursorsKilled: killed.map((id) => Long.fromNumber(id)),
      cursorsNotFound: ids.filter((id) => !killed.includes(id)).map((id) => Long.fromNumber(id)),
      cursorsAlive: [],
      cursorsUnknown: [],
      ok: 1,
    };
  }

  private take(cursor: Cursor, asked: number): Document[] {
    const n = Math.min(asked > 0 ? asked : 101, this.maxBatch);
    const batch = cursor.docs.slice(0, n);
    cursor.docs = cursor.docs.slice(n);
    return cursor.projection ? batch.map((doc) => project(doc, cursor.projection!)) : batch;
  }

  private opMsg(responseTo: number, doc: Document): Buffer {
    const body = BSON.serialize(doc);
    const header = Buffer.alloc(21);
    header.writeInt32LE(21 + body.length, 0);
    header.writeInt32LE(this.nextRequest++, 4);
    header.writeInt32LE(responseTo, 8);
    header.writeInt32LE(OP_MSG, 12);
    header.writeUInt32LE(0, 16);
    header.writeUInt8(0, 20);
    return Buffer.concat([header, body]);
  }

  private opReply(responseTo: number, doc: Document): Buffer {
    const body = BSON.serialize(doc);
    const header = Buffer.alloc(36);
    header.writeInt32LE(36 + body.length, 0);
    header.writeInt32LE(this.nextRequest++, 4);
    header.writeInt32LE(responseTo, 8);
    header.writeInt32LE(OP_REPLY, 12);
    header.writeInt32LE(0, 16); // responseFlags
    header.writeBigInt64LE(0n, 20); // cursorID
    header.writeInt32LE(0, 28); // startingFrom
    header.writeInt32LE(1, 32); // numberReturned
    return Buffer.concat([header, body]);
  }
}

/** The command of an OP_MSG: the kind 0 body, with each kind 1 sequence added as an array field. */
function parseOpMsg(message: Buffer, flags: number): Document {
  const end = message.length - (flags & CHECKSUM_PRESENT ? 4 : 0);
  let pos = 20;
  let body: Document = {};
  const sequences: [string, Document[]][] = [];
  while (pos < end) {
    const kind = message.readUInt8(pos++);
    const size = message.readInt32LE(pos);
    if (kind === 0) {
      body = BSON.deserialize(message.subarray(pos, pos + size));
    } else {
      const idEnd = message.indexOf(0, pos + 4);
      const identifier = message.toString("utf8", pos + 4, idEnd);
      const docs: Document[] = [];
      let p = idEnd + 1;
      while (p < pos + size) {
        const docSize = message.readInt32LE(p);
        docs.push(BSON.deserialize(message.subarray(p, p + docSize)));
        p += docSize;
      }
      sequences.push([identifier, docs]);
    }
    pos += size;
  }
  for (const [identifier, docs] of sequences) body[identifier] = docs;
  return body;
}

function payloadText(payload: unknown): string {
  if (payload instanceof Binary) return Buffer.from(payload.buffer.subarray(0, payload.position)).toString();
  if (payload instanceof Uint8Array) return Buffer.from(payload).toString();
  return String(payload ?? "");
}

function scramFields(message: string): Record<string, string> {
  const fields: Record<string, string> = {};
  for (const part of message.split(",")) {
    const eq = part.indexOf("=");
    if (eq > 0) fields[part.slice(0, eq)] = part.slice(eq + 1);
  }
  return fields;
}

function hmac(key: Buffer, text: string): Buffer {
  return createHmac("sha256", key).update(text).digest();
}

function getPath(doc: unknown, path: string): unknown {
  let value = doc;
  for (const key of path.split(".")) {
    if (value === null || typeof value !== "object") return undefined;
    value = (value as Document)[key];
  }
  return value;
}

function sameValue(a: unknown, b: unknown): boolean {
  if (a instanceof ObjectId || b instanceof ObjectId) {
    return a instanceof ObjectId && b instanceof ObjectId && a.equals(b);
  }
  if (a instanceof Date && b instanceof Date) return a.getTime() === b.getTime();
  if (a === undefined) return b === null;
  return a === b;
}

function isOperatorObject(value: unknown): value is Document {
  if (value === null || typeof value !== "object" || Array.isArray(value)) return false;
  if (value instanceof ObjectId || value instanceof Date) return false;
  const keys = Object.keys(value);
  return keys.length > 0 && keys.every((k) => k.startsWith("$"));
}

function matches(doc: Document, filter: Document): boolean {
  for (const [path, condition] of Object.entries(filter)) {
    if (path.startsWith("$")) {
      throw new CommandError(`the mongo test server does not support ${path}`, 2, "BadValue");
    }
    const value = getPath(doc, path);
    if (!isOperatorObject(condition)) {
      if (!sameValue(value, condition)) return false;
      continue;
    }
    for (const [op, arg] of Object.entries(condition)) {
      if (op === "$in") {
        if (!Array.isArray(arg)) throw new CommandError("$in needs an array", 2, "BadValue");
        if (!arg.some((candidate) => sameValue(value, candidate))) return false;
      } else if (op === "$exists") {
        if ((value !== undefined) !== Boolean(arg)) return false;
      } else if (op === "$eq") {
        if (!sameValue(value, arg)) return false;
      } else {
        throw new CommandError(`the mongo test server does not support ${op}`, 2, "BadValue");
      }
    }
  }
  return true;
}

function isDocument(value: unknown): value is Document {
  return (
    value !== null &&
    typeof value === "object" &&
    !Array.isArray(value) &&
    !(value instanceof ObjectId) &&
    !(value instanceof Date) &&
    !(value instanceof Binary)
  );
}

/**
 * Copy the path `keys` of `source` into `target`, as MongoDB's inclusion projection does: through
 * arrays of documents element by element (`blocks.fields.display_name` keeps, in every element of
 * `blocks`, only fields.display_name; elements that are not documents are dropped).
 */
function includePath(target: Document, source: Document, keys: string[]): void {
  const [key, ...rest] = keys;
  if (key === undefined || !(key in source)) return;
  const value = source[key];
  if (rest.length === 0) {
    target[key] = value;
    return;
  }
  if (Array.isArray(value)) {
    const existing = Array.isArray(target[key]) ? (target[key] as Document[]) : [];
    const elements = value.filter(isDocument);
    target[key] = elements.map((element, i) => {
      const out = existing[i] ?? {};
      includePath(out, element, rest);
      return out;
    });
  } else if (isDocument(value)) {
    const out = isDocument(target[key]) ? target[key] : {};
    includePath(out, value, rest);
    target[key] = out;
  }
}

/** MongoDB's projection: inclusion of (dotted) paths, `_id` kept unless excluded; or exclusions only. */
function project(doc: Document, projection: Document): Document {
  const entries = Object.entries(projection);
  const included = entries.filter(([path, on]) => path !== "_id" && Boolean(on)).map(([path]) => path);
  const keepId = projection._id === undefined || Boolean(projection._id);
  if (included.length === 0) {
    const out: Document = { ...doc };
    for (const [path, on] of entries) if (!on) delete out[path];
    return out;
  }
  const out: Document = {};
  if (keepId && doc._id !== undefined) out._id = doc._id;
  for (const path of included) includePath(out, doc, path.split("."));
  return out;
}
