// What the benchmark scripts share: a timed run of one command with its own peak RSS, and medians.
import { readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface Measure {
  /** wall time */
  seconds: number;
  /** peak RSS of the command alone */
  maxRssMiB: number;
  code: number;
  /** the command's standard output, when asked for (else it goes nowhere) */
  stdout?: string;
  stderr: string;
}

let runs = 0;

/**
 * Runs `cmd` under GNU time (`%M`: the command's own peak RSS in KiB). Bun's resourceUsage() of
 * a child reports the largest child ever waited for, so a case would show an earlier case's peak.
 * time's report goes to a file: Bun makes the stderr pipe it shares with its child non-blocking,
 * and time's own write to it can then fail. Throws when the command fails, unless allowFailure.
 */
export async function measure(
  cmd: string[],
  env: Record<string, string> = {},
  options: { stdout?: boolean; allowFailure?: boolean } = {},
): Promise<Measure> {
  const report = join(tmpdir(), `panorama-bench-time-${process.pid}-${++runs}`);
  const started = performance.now();
  const child = Bun.spawn(["/usr/bin/time", "-f", "%M", "-o", report, ...cmd], {
    stdout: options.stdout ? "pipe" : "ignore",
    stderr: "pipe",
    env: { ...process.env, ...env },
  });
  const [code, stdout, stderr] = await Promise.all([
    child.exited,
    options.stdout ? new Response(child.stdout as ReadableStream).text() : undefined,
    new Response(child.stderr).text(),
  ]);
  const seconds = (performance.now() - started) / 1000;
  if (code !== 0 && !options.allowFailure) {
    rmSync(report, { force: true });
    throw new Error(`${cmd.join(" ")} exited ${code}: ${stderr.slice(-2000)}`);
  }
  // A failed command's report starts with "Command exited with non-zero status N".
  const text = readFileSync(report, "utf8");
  rmSync(report, { force: true });
  const kib = /(\d+)\s*$/.exec(text)?.[1];
  if (kib === undefined) throw new Error(`no peak RSS in time's report: ${text}`);
  return { seconds, maxRssMiB: Number(kib) / 1024, code, stdout, stderr };
}

export const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
