// A TCP proxy in front of MySQL (or MongoDB) that drops every connection it carries, as a server restart, a
// failover or a network cut does: when one connection has carried `afterBytes` bytes from the
// server, or when the client sends a given query, at most `times` times. With `downMs`, its port is closed for that long after a drop (a
// server restarting refuses connections), then listens again on the same port.
import { createConnection, createServer, type Server, type Socket } from "node:net";

export interface DroppingProxy {
  port: number;
  /** drops so far */
  drops(): number;
  /** connections accepted so far */
  accepted(): number;
  /** the most bytes one connection has carried from the server */
  carried(): number;
  close(): Promise<void>;
}

export async function droppingProxy(
  target: { host: string; port: number },
  options: {
    afterBytes: number;
    times?: number;
    downMs?: number;
    /** also drop, instead of passing it on, a packet from the client that holds this text */
    onQuery?: string;
  },
): Promise<DroppingProxy> {
  const { afterBytes, times = 1, downMs = 0, onQuery } = options;
  let drops = 0;
  let accepted = 0;
  let most = 0;
  let closed = false;
  const sockets = new Set<Socket>();
  const drop = () => {
    drops++;
    for (const s of sockets) s.destroy();
    sockets.clear();
    if (downMs > 0) {
      server.close();
      setTimeout(() => {
        if (!closed) server.listen(port, "127.0.0.1");
      }, downMs);
    }
  };
  const server: Server = createServer((client) => {
    accepted++;
    const upstream = createConnection({ host: target.host, port: target.port });
    sockets.add(client).add(upstream);
    let carried = 0;
    client.on("data", (data: Buffer) => {
      if (onQuery !== undefined && drops < times && data.includes(onQuery)) drop();
      else upstream.write(data);
    });
    upstream.on("data", (data: Buffer) => {
      carried += data.length;
      most = Math.max(most, carried);
      client.write(data);
      if (carried >= afterBytes && drops < times) drop();
    });
    const end = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on("close", end).on("error", end);
    upstream.on("close", end).on("error", end);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("the proxy has no port");
  const port = address.port;
  return {
    port,
    drops: () => drops,
    accepted: () => accepted,
    carried: () => most,
    close: () =>
      new Promise<void>((resolve) => {
        closed = true;
        for (const s of sockets) s.destroy();
        if (!server.listening) resolve();
        else server.close(() => resolve());
      }),
  };
}
