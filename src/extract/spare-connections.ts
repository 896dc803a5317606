// The connections an extraction keeps beside its main one, up to `[mysql] connections` in all:
// opened while the main one is (a handshake is 10 ms of this thread, and the read of a big
// table's second range waited for it), and handed from table to table instead of opened and
// closed for each.
import type { Connection } from "mysql2";
import type { MysqlConfig } from "../config/types.ts";
import { close, connect } from "./mysql.ts";

export class SpareConnections {
  /** null: one that could not be opened (the read that needs it opens its own, and says why) */
  private readonly spare: Promise<Connection | null>[] = [];

  constructor(private readonly config: MysqlConfig) {}

  /** Start opening connections until `count` are spare or on their way. */
  fill(count: number): void {
    while (this.spare.length < count) {
      this.spare.push(connect(this.config).catch(() => null));
    }
  }

  /** A spare connection that is still open, or a new one (which throws when it cannot be opened). */
  async take(): Promise<Connection> {
    for (let next = this.spare.shift(); next !== undefined; next = this.spare.shift()) {
      const connection = await next;
      // Dropped while it waited (the server restarted, wait_timeout): not worth a failed read.
      if (connection?.state === "authenticated") return connection;
      connection?.destroy();
    }
    return connect(this.config);
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
