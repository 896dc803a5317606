// A TCP proxy that passes the server's bytes to the client in small pieces of random sizes, each
// in a write of its own a turn of the event loop apart, so that the client's reads end at every
// kind of place: inside a packet's header, inside a row, between packets.
import { createConnection, createServer, type Server, type Socket } from "node:net";

export interface ChunkingProxy {
  port: number;
  /** pieces sent to clients so far */
  pieces(): number;
  close(): Promise<void>;
}

export async function chunkingProxy(
  target: { host: string; port: number },
  maxPiece: number,
  seed = 1,
): Promise<ChunkingProxy> {
  let state = seed;
  const random = () => {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;
    return state / 2 ** 32;
  };
  let sent = 0;
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = createConnection(target);
    sockets.add(client).add(upstream);
    client.setNoDelay(true);
    client.on("data", (data) => upstream.write(data));
    // Pieces go out one per turn of the event loop, in order.
    let queue = Promise.resolve();
    upstream.on("data", (data: Buffer) => {
      upstream.pause();
      queue = queue.then(async () => {
        for (let at = 0; at < data.length; ) {
          const n = 1 + Math.floor(random() * maxPiece);
          client.write(data.subarray(at, at + n));
          sent++;
          at += n;
          await new Promise((resolve) => setImmediate(resolve));
        }
        upstream.resume();
      });
    });
    const end = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on("close", end).on("error", end);
    upstream.on("close", end).on("error", end);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("the proxy has no port");
  return {
    port: address.port,
    pieces: () => sent,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
