// The configured target.
import type { Config } from "../config/types.ts";
import { LocalTarget, type Target } from "./targets.ts";

export function createTarget(config: Config): Target {
  return new LocalTarget(config.datalake.path);
}
