// A partition worker: its own MySQL connection, parser and encoder on its own thread, so that
// `mysql.connections` partitions are really extracted in parallel (the encoding is CPU-bound).
import type { Connection } from "mysql2";
import type { Config } from "../config/types.ts";
import type { ManifestEntry } from "../datalake/spool.ts";
import { PanoramaError } from "../errors.ts";
import type { Cell } from "./mysql.ts";
import { close, connect, MysqlError, mysqlError } from "./mysql.ts";
import { extractPartition, type PartitionJob } from "./partition.ts";

declare const self: Worker;

export type ToWorker =
  | { type: "init"; config: Config; job: PartitionJob }
  | { type: "partition"; id: number; values: Cell[] }
  | { type: "close" };

export interface SerializedError {
  name: string;
  message: string;
  hint: string | undefined;
  code: string | undefined;
}

export type FromWorker =
  | { type: "ready" }
  | { type: "done"; id: number; entry: ManifestEntry }
  | { type: "failed"; id: number; error: SerializedError }
  | { type: "closed" };

export function serializeError(error: unknown): SerializedError {
  return {
    name: error instanceof Error ? error.name : "Error",
    message: error instanceof Error ? error.message : String(error),
    hint: error instanceof PanoramaError ? error.hint : undefined,
    code: error instanceof MysqlError ? error.code : undefined,
  };
}

let connection: Connection | undefined;
let config: Config;
let job: PartitionJob;

function send(message: FromWorker): void {
  self.postMessage(message);
}

self.onmessage = async (event: MessageEvent<ToWorker>) => {
  const message = event.data;
  if (message.type === "init") {
    config = message.config;
    job = message.job;
    try {
      connection = await connect(config.mysql);
      send({ type: "ready" });
    } catch (error) {
      send({ type: "failed", id: -1, error: serializeError(error) });
    }
    return;
  }
  if (message.type === "partition") {
    try {
      if (!connection) throw new Error("worker has no connection");
      const entry = await extractPartition(connection, config, job, message.values);
      send({ type: "done", id: message.id, entry });
      // Each worker is a heap of its own: collecting between partitions keeps the process small.
      Bun.gc(false);
    } catch (error) {
      // streamRows destroyed the connection mid-result; a fresh one serves the next partition.
      connection = undefined;
      const wrapped =
        error instanceof PanoramaError ? error : mysqlError(error, config.mysql, `reading ${job.table.name}`);
      send({ type: "failed", id: message.id, error: serializeError(wrapped) });
      try {
        connection = await connect(config.mysql);
      } catch {
        // the next partition reports the connection problem
      }
    }
    return;
  }
  if (connection) await close(connection);
  send({ type: "closed" });
};
