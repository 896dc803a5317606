// A database server that went away in the middle of a command (a restart, a failover, its
// container's name gone from Docker's DNS meanwhile): waited for, within one budget per command,
// rather than failing all that was left to do; what it was doing is done again, once.
import { messageOf } from "../errors.ts";
import { log } from "../log.ts";
import { fromTestEnv } from "../test-overrides.ts";

/**
 * How long a command waits, in all, for a server that stopped answering after it had answered:
 * MariaDB restarts in seconds, an RDS Multi-AZ failover takes one to two minutes.
 */
export const SERVER_WAIT_MS = 120_000;
/** For tests only: the wait for MySQL or MongoDB (a test of a server that does not come back would wait 2 minutes). */
const TEST_WAIT_ENV = "PANORAMA_TEST_SERVER_WAIT_MS";

/** One command's budget of waiting, which starts at its first wait. */
export class ServerWait {
  private until: number | null = null;

  /**
   * `open` tried again while it fails for a reason `away` says is the server's absence, until the
   * budget is spent; then, or for any other reason, its failure is thrown.
   */
  async whenBack<T>(open: () => Promise<T>, away: (error: unknown) => boolean): Promise<T> {
    this.until ??= Date.now() + fromTestEnv(TEST_WAIT_ENV, SERVER_WAIT_MS);
    for (let delay = 250; ; delay = Math.min(delay * 2, 5_000)) {
      try {
        return await open();
      } catch (error) {
        const left = this.until - Date.now();
        if (!away(error) || left <= 0) throw error;
        await Bun.sleep(Math.min(delay, left));
      }
    }
  }
}

/** The one warning of a table's work done again after `error` lost its connection. */
export function sayDoneAgain(error: unknown, table: string, done = "read"): void {
  log.warn(`${messageOf(error).replace(/\.$/, "")}: ${table} is ${done} again once the server answers`, {
    table,
  });
}
