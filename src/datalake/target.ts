// The configured target.
import type { Config } from "../config/types.ts";
import { S3Target } from "./s3-target.ts";
import { LocalTarget, type Target } from "./targets.ts";

export function createTarget(config: Config): Target {
  if (config.datalake.target === "s3") return new S3Target(config);
  return new LocalTarget(config.datalake.path);
}
