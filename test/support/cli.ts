// Run the real CLI in a child process, as an operator or cron would.
import { join } from "node:path";

export const ROOT = join(import.meta.dir, "..", "..");
export const CLI = join(ROOT, "src", "cli.ts");

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export async function runPanorama(
  args: string[],
  options: {
    env?: Record<string, string | undefined>;
    cwd?: string;
    stdin?: string;
    /** killed (SIGKILL) after this long: a test of a bounded run fails instead of hanging */
    timeoutMs?: number;
    /** run as this user id (and group id), without supplementary groups, through setpriv */
    uid?: number;
  } = {},
): Promise<CliResult> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries({ ...process.env, ...options.env })) {
    if (v !== undefined) env[k] = v;
  }
  const as =
    options.uid === undefined
      ? []
      : ["setpriv", `--reuid=${options.uid}`, `--regid=${options.uid}`, "--clear-groups"];
  const child = Bun.spawn([...as, process.execPath, CLI, ...args], {
    cwd: options.cwd ?? ROOT,
    env,
    stdin: options.stdin === undefined ? "ignore" : new TextEncoder().encode(options.stdin),
    stdout: "pipe",
    stderr: "pipe",
    ...(options.timeoutMs === undefined ? {} : { timeout: options.timeoutMs, killSignal: "SIGKILL" }),
  });
  const [stdout, stderr, code] = await Promise.all([
    new Response(child.stdout).text(),
    new Response(child.stderr).text(),
    child.exited,
  ]);
  return { code, stdout, stderr };
}

/** Environment without any PANORAMA_* / LMS_HOST / AWS_* variable of the machine running the tests. */
export function cleanEnv(extra: Record<string, string> = {}): Record<string, string | undefined> {
  const env: Record<string, string | undefined> = {};
  for (const key of Object.keys(process.env)) {
    if (/^(PANORAMA_(?!TEST_)|LMS_HOST$|AWS_)/.test(key)) env[key] = undefined;
  }
  return { ...env, ...extra };
}
