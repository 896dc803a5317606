// log-ship and the test writer as processes, for the tests that kill and restart them: a
// `log-ship --follow` (the service), the writer (test/support/log-writer.ts) and the wait for a
// started log-ship to hold its lock (a kill before that would land in a process not running yet).
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { CLI, cleanEnv, ROOT } from "./cli.ts";

const WRITER = join(ROOT, "test", "support", "log-writer.ts");

function childEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries({ ...process.env, ...cleanEnv() })) if (v !== undefined) env[k] = v;
  return env;
}

export function spawnFollow(configFile: string, stderr: "pipe" | "ignore" = "pipe") {
  return Bun.spawn([process.execPath, CLI, "--config", configFile, "--json", "log-ship", "--follow"], {
    env: childEnv(),
    stdout: "ignore",
    stderr,
  });
}

/**
 * Waits (up to 30 s: a loaded machine starts a process slowly) until the log-ship of `pid` holds
 * the log-ship lock of `stateDir`; its signal handlers are in place from then on.
 */
export async function waitForLock(stateDir: string, pid: number): Promise<void> {
  const lock = join(stateDir, "logship", "panorama.lock");
  for (
    let i = 0;
    i < 3000 && !(existsSync(lock) && readFileSync(lock, "utf8").includes(`pid ${pid},`));
    i++
  ) {
    await Bun.sleep(10);
  }
}

export interface WriterResult {
  written: number;
  /** the lines in the files it removed or truncated away */
  destroyed: number[];
}

/** Starts the writer and waits until it has opened its file. */
export async function startWriter(args: string[]) {
  const writer = Bun.spawn([process.execPath, WRITER, ...args], { stdout: "pipe", stderr: "inherit" });
  const reader = writer.stdout.getReader();
  let out = "";
  while (!out.includes("ready\n")) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`the writer exited: ${out}`);
    out += new TextDecoder().decode(value);
  }
  return {
    process: writer,
    /** SIGTERM, then what it wrote */
    async stop(): Promise<WriterResult> {
      writer.kill("SIGTERM");
      let rest = out;
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        rest += new TextDecoder().decode(value);
      }
      await writer.exited;
      return JSON.parse(rest.trim().split("\n").at(-1)!);
    },
  };
}

/** A child's stderr read as it comes: `until` waits (up to 30 s) for a text, `all` for the end. */
export function watchStderr(stderr: ReadableStream<Uint8Array>) {
  let text = "";
  const ended = (async () => {
    const decoder = new TextDecoder();
    for await (const chunk of stderr) text += decoder.decode(chunk, { stream: true });
  })();
  return {
    async until(needle: string): Promise<boolean> {
      const deadline = performance.now() + 30_000;
      while (!text.includes(needle) && performance.now() < deadline) await Bun.sleep(20);
      return text.includes(needle);
    },
    async all(): Promise<string> {
      await ended;
      return text;
    },
  };
}
