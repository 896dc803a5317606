// A loopback container credentials endpoint, as the EKS Pod Identity agent (and the ECS agent)
// serve it, since the real ones exist only on EKS and ECS nodes: GET with the pod's token as the
// Authorization header gives {AccessKeyId, SecretAccessKey, Token, Expiration}; a missing or
// wrong token gets 401 with {code, message}, as the agent answers. Tests set the token it
// expects, the credentials and their expiration, and make it fail.

export interface ContainerCredentialsServer {
  url: string;
  /** the Authorization value it accepts */
  token: string;
  credentials: { accessKeyId: string; secretAccessKey: string; token: string; expiration: Date };
  /** answers 500 to the next `failures` requests */
  failures: number;
  /** Authorization headers received, in order */
  received: (string | null)[];
  close(): void;
}

export function startContainerCredentialsServer(
  token: string,
  credentials: ContainerCredentialsServer["credentials"],
): ContainerCredentialsServer {
  const state: ContainerCredentialsServer = {
    url: "",
    token,
    credentials,
    failures: 0,
    received: [],
    close: () => server.stop(true),
  };
  const server = Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    fetch(req) {
      if (req.method !== "GET") return new Response("", { status: 405 });
      const authorization = req.headers.get("authorization");
      state.received.push(authorization);
      if (state.failures > 0) {
        state.failures--;
        return new Response("agent busy", { status: 500 });
      }
      if (authorization !== state.token) {
        return Response.json(
          { code: "AccessDeniedException", message: "Invalid authorization token" },
          { status: 401 },
        );
      }
      const c = state.credentials;
      return Response.json({
        AccessKeyId: c.accessKeyId,
        SecretAccessKey: c.secretAccessKey,
        Token: c.token,
        AccountId: "123456789012",
        Expiration: c.expiration.toISOString(),
      });
    },
  });
  state.url = `http://127.0.0.1:${server.port}/v1/credentials`;
  return state;
}
