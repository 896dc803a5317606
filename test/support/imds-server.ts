// A loopback EC2 instance metadata service speaking IMDSv2, since the real one exists only on EC2:
// PUT /latest/api/token (needs X-aws-ec2-metadata-token-ttl-seconds, 1-21600) gives a session
// token; every GET needs a live token (401 otherwise, as IMDSv2 with tokens required);
// /latest/meta-data/iam/security-credentials/ names the role and /<role> gives its credentials.
// Tests set the credentials, their expiration, and expire tokens.

export interface ImdsCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  token: string;
  expiration: Date;
}

export interface ImdsServer {
  url: string;
  role: string;
  /** what GET /<role> answers next */
  credentials: ImdsCredentials;
  /** requests by kind, for assertions */
  counts: { token: number; roleList: number; credentials: number; unauthorized: number };
  /** forget every issued token: the next GET with one gets 401 */
  expireTokens(): void;
  close(): void;
}

export function startImdsServer(role: string, credentials: ImdsCredentials): ImdsServer {
  const tokens = new Map<string, number>();
  const counts = { token: 0, roleList: 0, credentials: 0, unauthorized: 0 };
  const base = "/latest/meta-data/iam/security-credentials/";
  const state: ImdsServer = {
    url: "",
    role,
    credentials,
    counts,
    expireTokens: () => tokens.clear(),
    close: () => server.stop(true),
  };
  const server = Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    fetch(req) {
      const url = new URL(req.url);
      if (url.pathname === "/latest/api/token") {
        if (req.method !== "PUT") return new Response("", { status: 405 });
        const ttl = Number(req.headers.get("x-aws-ec2-metadata-token-ttl-seconds"));
        if (!Number.isInteger(ttl) || ttl < 1 || ttl > 21_600) return new Response("", { status: 400 });
        counts.token++;
        const token = `token-${crypto.randomUUID()}`;
        tokens.set(token, Date.now() + ttl * 1000);
        return new Response(token, { headers: { "x-aws-ec2-metadata-token-ttl-seconds": String(ttl) } });
      }
      if (req.method !== "GET") return new Response("", { status: 405 });
      const expires = tokens.get(req.headers.get("x-aws-ec2-metadata-token") ?? "");
      if (expires === undefined || expires < Date.now()) {
        counts.unauthorized++;
        return new Response("", { status: 401 });
      }
      if (url.pathname === base) {
        counts.roleList++;
        // An instance without an instance profile.
        if (!state.role) return new Response("", { status: 404 });
        return new Response(state.role);
      }
      if (state.role && url.pathname === `${base}${state.role}`) {
        counts.credentials++;
        const c = state.credentials;
        return Response.json({
          Code: "Success",
          LastUpdated: new Date().toISOString(),
          Type: "AWS-HMAC",
          AccessKeyId: c.accessKeyId,
          SecretAccessKey: c.secretAccessKey,
          Token: c.token,
          Expiration: c.expiration.toISOString().replace(/\.\d{3}Z$/, "Z"),
        });
      }
      return new Response("", { status: 404 });
    },
  });
  state.url = `http://127.0.0.1:${server.port}`;
  return state;
}
