// A configuration for unit tests, parsed as panorama parses it, in a fresh temporary directory
// (state_dir and the local datalake path under it): tests give only what they vary.
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseConfig } from "../../src/config/load.ts";
import type { Config } from "../../src/config/types.ts";

export function tempConfig(
  options: {
    mode?: string;
    /** another test's state directory, to share it */
    stateDir?: string;
    /** [datalake] lines besides path (target, bucket, compression) */
    datalake?: string;
    /** after [extract] preset = "none": [[tables]] blocks */
    tables?: string;
  } = {},
): Config {
  const dir = mkdtempSync(join(tmpdir(), "panorama-unit-"));
  const text = `mode = "${options.mode ?? "CUSTOM"}"
lms_host = "lms.example.com"
state_dir = "${options.stateDir ?? join(dir, "state")}"
[datalake]
path = "${join(dir, "datalake")}"
${options.datalake ?? 'target = "local"'}
[extract]
preset = "none"
${options.tables ?? ""}
`;
  return parseConfig(text, join(dir, "panorama.toml"), {}).config;
}
