// A loopback server that authenticates clients as MySQL 8.0/8.4 does, in front of the test
// MariaDB. No MySQL 8 server package exists on this machine, so this stands in for one where it
// matters to panorama: the handshake. It greets as "8.0.36", authenticates with
// caching_sha2_password (after an AuthSwitchRequest when the greeting names
// mysql_native_password, as MySQL 8 does for accounts whose plugin differs from the announced
// one), answers fast-auth success for an account in its cache, and otherwise performs full
// authentication: the cleartext password over TLS, or over plain TCP the RSA public-key request
// and the OAEP-encrypted password. An account fully authenticated once is cached, as in MySQL 8,
// so the next connection takes the fast path. Then it logs into MariaDB with the same
// credentials and relays the session byte for byte.
//
// The capabilities it greets with are MariaDB's (plus SSL when TLS is offered), so that the
// session relayed after authentication means the same to both ends.
import {
  createHash,
  constants as cryptoConstants,
  generateKeyPairSync,
  privateDecrypt,
  randomBytes,
} from "node:crypto";
import { createServer, connect as netConnect, type Server, type Socket } from "node:net";
import { Duplex } from "node:stream";
import { TLSSocket } from "node:tls";

const CLIENT_LONG_PASSWORD = 0x1;
const CLIENT_CONNECT_WITH_DB = 0x8;
const CLIENT_PROTOCOL_41 = 0x200;
const CLIENT_SSL = 0x800;
const CLIENT_SECURE_CONNECTION = 0x8000;
const CLIENT_PLUGIN_AUTH = 0x80000;
const CLIENT_CONNECT_ATTRS = 0x100000;
const CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA = 0x200000;

const REQUEST_PUBLIC_KEY = 0x02;
const FAST_AUTH_SUCCESS = 0x03;
const PERFORM_FULL_AUTHENTICATION = 0x04;

export interface Mysql8ServerOptions {
  /** the MariaDB the session is relayed to */
  upstream: { host: string; port: number };
  /** the one account this server knows: checked here, then used to log into MariaDB */
  user: string;
  password: string;
  /** the plugin the greeting names; "mysql_native_password" makes the server switch */
  greetingPlugin: "caching_sha2_password" | "mysql_native_password";
  /** TLS offered (CLIENT_SSL) with this key and certificate */
  tls?: { key: string; cert: string };
  /** accounts whose password hash is already cached: fast authentication from the start */
  cached?: boolean;
}

/** How one connection authenticated. */
export interface Mysql8Login {
  user: string;
  tls: boolean;
  /** an AuthSwitchRequest to caching_sha2_password was sent */
  switched: boolean;
  /** "fast": fast-auth success; "full-rsa": public key sent, password decrypted; "full-tls": cleartext over TLS */
  path: "fast" | "full-rsa" | "full-tls" | "denied";
  publicKeyRequested: boolean;
}

export interface Mysql8Server {
  port: number;
  logins: Mysql8Login[];
  /** the RSA public key (PEM) sent on request */
  publicKey: string;
  close(): Promise<void>;
}

interface Packet {
  seq: number;
  payload: Buffer;
}

/** MySQL packets off a stream: 3-byte length, sequence id, payload. */
class PacketReader {
  private buffer = Buffer.alloc(0);
  private readonly waiting: { resolve: (p: Packet) => void; reject: (e: Error) => void }[] = [];
  private failure: Error | null = null;
  private readonly onData = (chunk: Buffer) => {
    this.buffer = Buffer.concat([this.buffer, chunk]);
    this.deliver();
  };
  private readonly onEnd = () => this.fail(new Error("connection closed during the handshake"));

  constructor(private readonly socket: Socket) {
    socket.on("data", this.onData);
    socket.on("close", this.onEnd);
    socket.on("error", this.onEnd);
  }

  private deliver(): void {
    while (this.waiting.length > 0 && this.buffer.length >= 4) {
      const length = this.buffer.readUIntLE(0, 3);
      if (this.buffer.length < 4 + length) return;
      const packet = { seq: this.buffer[3]!, payload: this.buffer.subarray(4, 4 + length) };
      this.buffer = this.buffer.subarray(4 + length);
      this.waiting.shift()!.resolve(packet);
    }
  }

  private fail(error: Error): void {
    this.failure ??= error;
    for (const w of this.waiting.splice(0)) w.reject(error);
  }

  next(): Promise<Packet> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.waiting.push({ resolve, reject });
      this.deliver();
    });
  }

  /** Stop reading; returns the bytes read past the last packet. */
  detach(): Buffer {
    this.socket.off("data", this.onData);
    this.socket.off("close", this.onEnd);
    this.socket.off("error", this.onEnd);
    return this.buffer;
  }
}

function packet(seq: number, payload: Buffer): Buffer {
  const header = Buffer.alloc(4);
  header.writeUIntLE(payload.length, 0, 3);
  header[3] = seq & 0xff;
  return Buffer.concat([header, payload]);
}

function errPacket(code: number, state: string, message: string): Buffer {
  const head = Buffer.alloc(3);
  head[0] = 0xff;
  head.writeUInt16LE(code, 1);
  return Buffer.concat([head, Buffer.from(`#${state}${message}`)]);
}

function nulString(buffer: Buffer, at: number): { value: string; end: number } {
  let end = buffer.indexOf(0, at);
  if (end < 0) end = buffer.length;
  return { value: buffer.toString("utf8", at, end), end: end + 1 };
}

function lenencInt(buffer: Buffer, at: number): { value: number; end: number } {
  const first = buffer[at]!;
  if (first < 0xfb) return { value: first, end: at + 1 };
  if (first === 0xfc) return { value: buffer.readUInt16LE(at + 1), end: at + 3 };
  if (first === 0xfd) return { value: buffer.readUIntLE(at + 1, 3), end: at + 4 };
  return { value: Number(buffer.readBigUInt64LE(at + 1)), end: at + 9 };
}

const sha1 = (...parts: Buffer[]) => createHash("sha1").update(Buffer.concat(parts)).digest();
const sha256 = (...parts: Buffer[]) => createHash("sha256").update(Buffer.concat(parts)).digest();

function xor(a: Buffer, b: Buffer): Buffer {
  const out = Buffer.alloc(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i]! ^ b[i % b.length]!;
  return out;
}

/** The caching_sha2_password scramble: SHA256(p) XOR SHA256(SHA256(SHA256(p)) + nonce). */
function sha2Scramble(password: string, nonce: Buffer): Buffer {
  const stage1 = sha256(Buffer.from(password));
  return xor(stage1, sha256(sha256(stage1), nonce));
}

/** mysql_native_password: SHA1(p) XOR SHA1(nonce + SHA1(SHA1(p))). */
function nativeScramble(password: string, nonce: Buffer): Buffer {
  const stage1 = sha1(Buffer.from(password));
  return xor(stage1, sha1(nonce, sha1(stage1)));
}

interface Greeting {
  capabilities: number;
  charset: number;
  status: number;
  nonce: Buffer;
  plugin: string;
}

function parseGreeting(payload: Buffer): Greeting {
  if (payload[0] === 0xff) throw new Error(`MariaDB refused the connection: ${payload.toString("utf8", 9)}`);
  let at = nulString(payload, 1).end + 4;
  const part1 = payload.subarray(at, at + 8);
  at += 9;
  const lower = payload.readUInt16LE(at);
  const charset = payload[at + 2]!;
  const status = payload.readUInt16LE(at + 3);
  const upper = payload.readUInt16LE(at + 5);
  const dataLength = payload[at + 7]!;
  at += 8 + 10;
  const part2Length = Math.max(13, dataLength - 8);
  const part2 = payload.subarray(at, at + part2Length - 1);
  const plugin = nulString(payload, at + part2Length).value;
  return {
    capabilities: (lower | (upper << 16)) >>> 0,
    charset,
    status,
    nonce: Buffer.concat([part1, part2]),
    plugin,
  };
}

interface HandshakeResponse {
  capabilities: number;
  charset: number;
  user: string;
  auth: Buffer;
  database: string;
  plugin: string;
}

function parseHandshakeResponse(payload: Buffer): HandshakeResponse {
  const capabilities = payload.readUInt32LE(0);
  const charset = payload[8]!;
  const user = nulString(payload, 32);
  let at = user.end;
  let auth: Buffer;
  if (capabilities & CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA) {
    const length = lenencInt(payload, at);
    auth = payload.subarray(length.end, length.end + length.value);
    at = length.end + length.value;
  } else {
    const length = payload[at]!;
    auth = payload.subarray(at + 1, at + 1 + length);
    at += 1 + length;
  }
  let database = "";
  if (capabilities & CLIENT_CONNECT_WITH_DB) {
    const db = nulString(payload, at);
    database = db.value;
    at = db.end;
  }
  const plugin = capabilities & CLIENT_PLUGIN_AUTH ? nulString(payload, at).value : "";
  return { capabilities, charset, user: user.value, auth, database, plugin };
}

function greetingPacket(
  upstream: Greeting,
  nonce: Buffer,
  plugin: string,
  tls: boolean,
  connectionId: number,
): Buffer {
  const capabilities =
    ((upstream.capabilities & ~CLIENT_SSL) |
      CLIENT_LONG_PASSWORD |
      CLIENT_PROTOCOL_41 |
      CLIENT_SECURE_CONNECTION |
      CLIENT_PLUGIN_AUTH |
      (tls ? CLIENT_SSL : 0)) >>>
    0;
  const fixed = Buffer.alloc(4 + 8 + 1 + 2 + 1 + 2 + 2 + 1 + 10);
  let at = fixed.writeUInt32LE(connectionId, 0);
  nonce.copy(fixed, at, 0, 8);
  at += 9;
  at = fixed.writeUInt16LE(capabilities & 0xffff, at);
  fixed[at++] = upstream.charset;
  at = fixed.writeUInt16LE(upstream.status, at);
  at = fixed.writeUInt16LE(capabilities >>> 16, at);
  fixed[at] = 21;
  return Buffer.concat([
    Buffer.from([10]),
    Buffer.from("8.0.36\0"),
    fixed,
    nonce.subarray(8, 20),
    Buffer.from([0]),
    Buffer.from(`${plugin}\0`),
  ]);
}

/** The handshake response panorama's client would have sent MariaDB, rebuilt for it. */
function upstreamResponse(client: HandshakeResponse, greeting: Greeting, password: string): Buffer {
  // MariaDB's own capabilities, as the client saw them; no TLS and no attributes towards MariaDB;
  // CLIENT_MYSQL (bit 0) set: no MariaDB extended capabilities, as for the client.
  const capabilities =
    (((client.capabilities & greeting.capabilities) | CLIENT_LONG_PASSWORD | CLIENT_PLUGIN_AUTH) &
      ~(CLIENT_SSL | CLIENT_CONNECT_ATTRS | CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA)) >>>
    0;
  const head = Buffer.alloc(32);
  head.writeUInt32LE(capabilities, 0);
  head.writeUInt32LE(16 * 1024 * 1024, 4);
  head[8] = client.charset;
  const auth = nativeScramble(password, greeting.nonce);
  return Buffer.concat([
    head,
    Buffer.from(`${client.user}\0`),
    Buffer.from([auth.length]),
    auth,
    capabilities & CLIENT_CONNECT_WITH_DB ? Buffer.from(`${client.database}\0`) : Buffer.alloc(0),
    Buffer.from("mysql_native_password\0"),
  ]);
}

/** `socket`'s bytes from now on, after `already` (read from it before), as a stream. */
function rawStream(socket: Socket, already: Buffer): Duplex {
  const stream = new Duplex({
    read() {},
    write(chunk, _encoding, done) {
      socket.write(chunk, done);
    },
    final(done) {
      socket.end();
      done();
    },
    destroy(error, done) {
      socket.destroy();
      done(error);
    },
  });
  if (already.length > 0) stream.push(already);
  socket.on("data", (chunk: Buffer) => stream.push(chunk));
  socket.on("end", () => stream.push(null));
  socket.on("close", () => stream.destroy());
  return stream;
}

export async function startMysql8Server(options: Mysql8ServerOptions): Promise<Mysql8Server> {
  const { publicKey, privateKey } = generateKeyPairSync("rsa", {
    modulusLength: 2048,
    publicKeyEncoding: { type: "spki", format: "pem" },
    privateKeyEncoding: { type: "pkcs8", format: "pem" },
  });
  const logins: Mysql8Login[] = [];
  const sockets = new Set<Socket>();
  let cached = options.cached ?? false;
  let connections = 0;

  async function session(raw: Socket): Promise<void> {
    const upstream = netConnect(options.upstream.port, options.upstream.host);
    sockets.add(upstream);
    upstream.on("close", () => sockets.delete(upstream));
    const fromServer = new PacketReader(upstream);
    const greeting = parseGreeting((await fromServer.next()).payload);

    let client: Socket | TLSSocket = raw;
    let fromClient = new PacketReader(client);
    const nonce = Buffer.from(randomBytes(20).map((b) => (b % 94) + 33));
    client.write(
      packet(0, greetingPacket(greeting, nonce, options.greetingPlugin, !!options.tls, ++connections)),
    );

    let received = await fromClient.next();
    let tls = false;
    if (received.payload.length === 32 && received.payload.readUInt32LE(0) & CLIENT_SSL) {
      if (!options.tls) throw new Error("SSLRequest without TLS offered");
      // The client sends its TLS ClientHello right behind the SSLRequest, so part of it may have
      // been read already: TLS runs over a stream that starts with those bytes.
      const secure = new TLSSocket(rawStream(client, fromClient.detach()), {
        isServer: true,
        key: options.tls.key,
        cert: options.tls.cert,
      });
      await new Promise<void>((resolve, reject) => {
        secure.once("secure", resolve);
        secure.once("error", reject);
      });
      client = secure;
      fromClient = new PacketReader(client);
      tls = true;
      received = await fromClient.next();
    }
    const response = parseHandshakeResponse(received.payload);
    let seq = received.seq + 1;
    const send = (payload: Buffer) => client.write(packet(seq++, payload));
    const login: Mysql8Login = {
      user: response.user,
      tls,
      switched: false,
      path: "denied",
      publicKeyRequested: false,
    };
    logins.push(login);
    const deny = (why: string) => {
      send(errPacket(1045, "28000", `Access denied for user '${response.user}'@'localhost' (${why})`));
      client.end();
      upstream.destroy();
    };

    let scrambleNonce = nonce;
    let token = response.auth;
    if (response.plugin !== "caching_sha2_password" || options.greetingPlugin !== "caching_sha2_password") {
      // MySQL 8 with an account of caching_sha2_password: switch, with a fresh nonce.
      scrambleNonce = Buffer.from(randomBytes(20).map((b) => (b % 94) + 33));
      send(
        Buffer.concat([
          Buffer.from([0xfe]),
          Buffer.from("caching_sha2_password\0"),
          scrambleNonce,
          Buffer.from([0]),
        ]),
      );
      login.switched = true;
      const answer = await fromClient.next();
      seq = answer.seq + 1;
      token = answer.payload;
    }
    if (response.user !== options.user || !token.equals(sha2Scramble(options.password, scrambleNonce))) {
      deny("using password: YES");
      return;
    }
    if (cached) {
      send(Buffer.from([0x01, FAST_AUTH_SUCCESS]));
      login.path = "fast";
    } else {
      send(Buffer.from([0x01, PERFORM_FULL_AUTHENTICATION]));
      let answer = await fromClient.next();
      seq = answer.seq + 1;
      let password: string;
      if (tls) {
        password = answer.payload.toString("utf8").replace(/\0$/, "");
        login.path = "full-tls";
      } else {
        if (answer.payload.length !== 1 || answer.payload[0] !== REQUEST_PUBLIC_KEY) {
          // MySQL 8 never takes a cleartext password over an insecure connection.
          deny("cleartext password over an insecure connection");
          return;
        }
        login.publicKeyRequested = true;
        send(Buffer.concat([Buffer.from([0x01]), Buffer.from(publicKey)]));
        answer = await fromClient.next();
        seq = answer.seq + 1;
        const decrypted = privateDecrypt(
          { key: privateKey, padding: cryptoConstants.RSA_PKCS1_OAEP_PADDING, oaepHash: "sha1" },
          answer.payload,
        );
        password = xor(decrypted, scrambleNonce).toString("utf8").replace(/\0$/, "");
        login.path = "full-rsa";
      }
      if (password !== options.password) {
        login.path = "denied";
        deny("using password: YES");
        return;
      }
      cached = true;
    }

    // Into MariaDB with the same account, then its OK goes to the client and the bytes flow.
    upstream.write(packet(1, upstreamResponse(response, greeting, options.password)));
    let upstreamAnswer = await fromServer.next();
    if (upstreamAnswer.payload[0] === 0xfe) {
      const plugin = nulString(upstreamAnswer.payload, 1);
      const switchNonce = upstreamAnswer.payload.subarray(plugin.end, plugin.end + 20);
      upstream.write(packet(upstreamAnswer.seq + 1, nativeScramble(options.password, switchNonce)));
      upstreamAnswer = await fromServer.next();
    }
    send(upstreamAnswer.payload);
    if (upstreamAnswer.payload[0] !== 0x00) {
      client.end();
      upstream.destroy();
      return;
    }
    const clientRest = fromClient.detach();
    const serverRest = fromServer.detach();
    if (clientRest.length > 0) upstream.write(clientRest);
    if (serverRest.length > 0) client.write(serverRest);
    client.pipe(upstream);
    upstream.pipe(client);
    client.on("error", () => upstream.destroy());
    upstream.on("error", () => client.destroy());
    client.on("close", () => upstream.destroy());
    upstream.on("close", () => client.destroy());
  }

  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    socket.on("error", () => {});
    session(socket).catch(() => socket.destroy());
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : 0;
  return {
    port,
    logins,
    publicKey,
    close() {
      for (const socket of sockets) socket.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
