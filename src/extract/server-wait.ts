// A database server that went away in the middle of a command (a restart, a failover, its
// container's name gone from Docker's DNS meanwhile): waited for, within one budget per command,
// rather than failing all that was left to do.
import { fromTestEnv } from "../test-overrides.ts";

/**
 * How long a command waits, in all, for a server that stopped answering after it had answered:
 * MariaDB restarts in seconds, an RDS Multi-AZ failover takes one to two minutes.
 */
export const SERVER_WAIT_MS = 120_000;
/** For tests only: the wait for MySQL or MongoDB (a test of a server that does not come back would wait 2 minutes). */
const TEST_WAIT_ENV = "PANORAMA_TEST_SERVER_WAIT_MS";

/** The time (ms since the epoch) until which a command that starts waiting now waits. */
export function serverWaitUntil(): number {
  return Date.now() + fromTestEnv(TEST_WAIT_ENV, SERVER_WAIT_MS);
}

/**
 * `open` tried again while it fails for a reason `away` says is the server's absence, until the
 * time `until`; then, or for any other reason, its failure is thrown.
 */
export async function whenBack<T>(
  open: () => Promise<T>,
  away: (error: unknown) => boolean,
  until: number,
): Promise<T> {
  for (let delay = 250; ; delay = Math.min(delay * 2, 5_000)) {
    try {
      return await open();
    } catch (error) {
      const left = until - Date.now();
      if (!away(error) || left <= 0) throw error;
      await Bun.sleep(Math.min(delay, left));
    }
  }
}
