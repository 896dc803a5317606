// The connections an extraction keeps beside its main one, up to `[mysql] connections` in all:
// opened while the main one is (a handshake is 10 ms of this thread, and the read of a big
// table's second range waited for it), and handed from table to table instead of opened and
// closed for each. A server that refuses more (the DBA's MAX_USER_CONNECTIONS, max_connections
// reached) leaves the reads to the connections they have, said once.
import type { Connection } from "mysql2";
import type { MysqlConfig } from "../config/types.ts";
import { messageOf, PanoramaError } from "../errors.ts";
import { log } from "../log.ts";
import { close, connect, describeTarget, isConnectionLimit } from "./mysql.ts";

export class SpareConnections {
  /** null: one that could not be opened (the read that needs it opens its own, and says why) */
  private readonly spare: Promise<Connection | null>[] = [];
  /** the server refused a connection for a limit: no more are asked for in this extraction */
  private refused = false;

  constructor(private readonly config: MysqlConfig) {}

  /** Start opening connections until `count` are spare or on their way. */
  fill(count: number): void {
    while (this.spare.length < count) {
      this.spare.push(connect(this.config).catch(() => null));
    }
  }

  /**
   * A spare connection that is still open, or a new one (which throws when it cannot be opened).
   * `open` false: only one already opened, or null.
   */
  async take(open?: true): Promise<Connection>;
  async take(open: false): Promise<Connection | null>;
  async take(open = true): Promise<Connection | null> {
    for (let next = this.spare.shift(); next !== undefined; next = this.spare.shift()) {
      const connection = await next;
      // Dropped while it waited (the server restarted, wait_timeout): not worth a failed read.
      if (connection?.state === "authenticated") return connection;
      connection?.destroy();
    }
    return open ? connect(this.config) : null;
  }

  /**
   * An extra connection for a read that can go on without it: a spare, or a new one; null when
   * the server refuses it for a limit (said once, then not asked again). Other failures throw.
   */
  async takeIfAllowed(): Promise<Connection | null> {
    if (this.refused) return this.take(false);
    try {
      return await this.take();
    } catch (error) {
      if (!isConnectionLimit(error)) throw error;
      this.refuse(error);
      return null;
    }
  }

  /** The server refused a connection for a limit: said once; no more are asked for. */
  refuse(error: unknown): void {
    if (this.refused) return;
    this.refused = true;
    const target = describeTarget(this.config);
    const reason = messageOf(error).replace(`MySQL ${target}: cannot connect: `, "");
    const hint = error instanceof PanoramaError && error.hint ? ` (${error.hint})` : "";
    log.warn(
      `MySQL ${target}: the server refuses more connections: ${reason}; reading on over those it gave, fewer than [mysql] connections = ${this.config.connections}${hint}`,
    );
  }

  /** A connection whose last query ended well, for the next table. */
  give(connection: Connection): void {
    this.spare.push(Promise.resolve(connection));
  }

  async closeAll(): Promise<void> {
    const all = this.spare.splice(0);
    await Promise.all(
      all.map(async (next) => {
        const connection = await next;
        if (connection) await close(connection);
      }),
    );
  }
}
