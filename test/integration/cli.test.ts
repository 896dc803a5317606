// The command line as an operator meets it: help, version, usage errors, the compiled binary.
import { describe, expect, test } from "bun:test";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pkg from "../../package.json" with { type: "json" };
import { ROOT, runPanorama } from "../support/cli.ts";

describe("command line", () => {
  test("--version prints the package version", async () => {
    const result = await runPanorama(["--version"]);
    expect(result).toMatchObject({ code: 0, stdout: `${pkg.version}\n` });
  });

  test("--help lists the commands, without colours when piped", async () => {
    const result = await runPanorama(["--help"]);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain(
      "run|extract|upload|catalog|log-ship|schema|status|verify|doctor|crontab|iam-policy|init|k8s|completions",
    );
    expect(result.stdout).not.toContain("\x1b[");
  });

  test("a subcommand's --help names it with its whole path", async () => {
    const pull = await runPanorama(["schema", "pull", "--help"]);
    expect(pull.code).toBe(0);
    expect(pull.stdout).toContain("USAGE panorama schema pull ");
    expect(pull.stdout).not.toContain("panorama pull");
    const run = await runPanorama(["run", "--help"]);
    expect(run.stdout).toContain("USAGE panorama run ");
  });

  test("an unknown command exits 2 with a suggestion", async () => {
    const result = await runPanorama(["extarct"]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('unknown command \\"extarct\\" (did you mean \\"extract\\"?)');
  });

  test("an unknown option exits 2 with a suggestion, before any config is read", async () => {
    const result = await runPanorama(["--config", "/nonexistent.toml", "run", "--ful"]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("unknown option --ful for `panorama run` (did you mean --full?)");
  });

  test("an option missing its value exits 2", async () => {
    const result = await runPanorama(["run", "--tables"]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("option --tables needs a value");
  });

  test("a missing config file exits 2 and says how to write one", async () => {
    const result = await runPanorama(["--config", "/nonexistent/panorama.toml", "run"]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("/nonexistent/panorama.toml");
    expect(result.stderr).toContain("panorama init");
  });

  test("a bad --log-level exits 2", async () => {
    const result = await runPanorama(["--log-level", "loud", "--version", "x"]);
    expect(result.code).toBe(2);
  });
});

describe("compiled binary", () => {
  test("scripts/build.sh builds a binary that runs with no Bun and no node_modules", async () => {
    // Built straight into an empty directory of its own (another test run may be using dist/).
    const dir = mkdtempSync(join(tmpdir(), "panorama-binary-"));
    const binary = join(dir, "panorama");
    const build = Bun.spawnSync(["bash", "scripts/build.sh", "--out", binary], {
      cwd: ROOT,
      stdout: "pipe",
      stderr: "pipe",
    });
    expect(build.exitCode).toBe(0);
    // A bare environment in an empty directory: nothing of this checkout is reachable.
    const run = (args: string[]) =>
      Bun.spawnSync([binary, ...args], {
        cwd: dir,
        env: { PATH: "/usr/bin:/bin" },
        stdout: "pipe",
        stderr: "pipe",
      });
    const version = run(["--version"]);
    expect(version.exitCode).toBe(0);
    expect(version.stdout.toString()).toBe(`${pkg.version}\n`);
    const completions = run(["completions", "bash"]);
    expect(completions.exitCode).toBe(0);
    expect(completions.stdout.toString()).toContain("complete -F");
  }, 120_000);
});
