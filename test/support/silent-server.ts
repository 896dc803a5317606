// HTTP endpoints that accept connections and then fall silent, as a black-holed proxy or a hung
// load balancer does, one that reads slowly but keeps reading, and one that answers a byte at a
// time: for the AWS client's limits on silence and on an answer's pace. Plain TCP (node:net), so that a socket can stop reading what is sent to it.
import { createServer, type Server, type Socket } from "node:net";

export type Silence =
  /** reads nothing and answers nothing */
  | "silent"
  /** reads the request, sends the answer's headers and one byte of its body, then nothing */
  | "headers"
  /** reads the request in small bites, pausing `pauseMs` after each, then answers 200 */
  | "slow"
  /** reads the request, sends the answer's headers, then one byte of its body every `pauseMs`, never the end */
  | "trickle";

export interface SilentServer {
  url: string;
  /** connections accepted so far */
  readonly connections: number;
  stop(): Promise<void>;
}

const HEADER_END = "\r\n\r\n";

/** The length of a request's body once its headers are in `head`; null while they are not. */
function bodyLength(head: string): number | null {
  const end = head.indexOf(HEADER_END);
  if (end < 0) return null;
  const match = /\r\ncontent-length: *(\d+)/i.exec(head.slice(0, end));
  return match ? Number(match[1]) : 0;
}

function follow(socket: Socket, behaviour: Silence, pauseMs: number): void {
  if (behaviour === "silent") {
    socket.pause();
    return;
  }
  let head = "";
  let length: number | null = null;
  let body = 0;
  socket.on("data", (data: Buffer) => {
    if (length === null) {
      head += data.toString("latin1");
      length = bodyLength(head);
      if (length === null) return;
      body = Buffer.byteLength(head.slice(head.indexOf(HEADER_END) + HEADER_END.length), "latin1");
    } else {
      body += data.length;
    }
    if (behaviour === "slow" && body < length) {
      socket.pause();
      setTimeout(() => socket.resume(), pauseMs);
      return;
    }
    if (body < length) return;
    if (behaviour === "headers") {
      socket.write("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{");
    } else if (behaviour === "trickle") {
      socket.write("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000000\r\n\r\n");
      const drip = setInterval(() => socket.write(" "), pauseMs);
      socket.on("close", () => clearInterval(drip));
    } else {
      socket.write("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    }
  });
}

export async function startSilentServer(behaviour: Silence, pauseMs = 0): Promise<SilentServer> {
  const sockets = new Set<Socket>();
  let connections = 0;
  const server: Server = createServer((socket) => {
    connections++;
    sockets.add(socket);
    socket.on("error", () => {});
    socket.on("close", () => sockets.delete(socket));
    follow(socket, behaviour, pauseMs);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    get connections() {
      return connections;
    },
    stop: () => {
      for (const socket of sockets) socket.destroy();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
