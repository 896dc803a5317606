// Partitions of one table over a pool of workers, each with its own connection. The first
// failure stops the dispatch of further partitions; the files already complete stay in the spool.
import type { Config } from "../config/types.ts";
import type { ManifestEntry } from "../datalake/spool.ts";
import { PanoramaError } from "../errors.ts";
import type { Cell } from "./mysql.ts";
import { MysqlError } from "./mysql.ts";
import type { PartitionJob } from "./partition.ts";
import type { FromWorker, SerializedError, ToWorker } from "./partition-worker.ts";

function revive(error: SerializedError): PanoramaError {
  if (error.code !== undefined) return new MysqlError(error.message, error.code, error.hint);
  return new PanoramaError(error.message, error.hint);
}

export async function extractOverWorkers(
  config: Config,
  job: PartitionJob,
  partitions: Cell[][],
  workers: number,
  onEntry: (entry: ManifestEntry) => Promise<void>,
): Promise<void> {
  let next = 0;
  let firstError: unknown;
  const run = (worker: Worker) =>
    new Promise<void>((resolve) => {
      const post = (message: ToWorker) => worker.postMessage(message);
      const dispatch = () => {
        if (firstError !== undefined || next >= partitions.length) {
          post({ type: "close" });
          return;
        }
        const id = next++;
        post({ type: "partition", id, values: partitions[id]! });
      };
      worker.onmessage = async (event: MessageEvent<FromWorker>) => {
        const message = event.data;
        if (message.type === "ready") dispatch();
        else if (message.type === "done") {
          try {
            await onEntry(message.entry);
          } catch (error) {
            firstError ??= error;
          }
          dispatch();
        } else if (message.type === "failed") {
          firstError ??= revive(message.error);
          post({ type: "close" });
        } else if (message.type === "closed") resolve();
      };
      worker.onerror = (event) => {
        firstError ??= new Error(`partition worker crashed: ${event.message}`);
        resolve();
      };
      post({ type: "init", config, job });
    });
  const pool = Array.from(
    { length: Math.min(workers, partitions.length) },
    () => new Worker(new URL("./partition-worker.ts", import.meta.url).href, { smol: true }),
  );
  try {
    await Promise.all(pool.map(run));
  } finally {
    for (const worker of pool) worker.terminate();
  }
  if (firstError !== undefined) throw firstError;
}
