// The command line as an operator meets it: help, version, usage errors, the compiled binary.
import { describe, expect, test } from "bun:test";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pkg from "../../package.json" with { type: "json" };
import { cleanEnv, ROOT, runPanorama } from "../support/cli.ts";

/** The messages of the JSON log lines on stderr (stderr is a pipe here: JSON is the default). */
function messages(stderr: string): string[] {
  return stderr
    .split("\n")
    .filter((line) => line.startsWith("{"))
    .map((line) => (JSON.parse(line) as { message: string }).message);
}

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

  describe("no command to run is a usage error, with the help on stderr", () => {
    test("bare `panorama` exits 2: a cron line that lost its command does not pass for a job done", async () => {
      const result = await runPanorama([], { env: cleanEnv() });
      expect(result.code).toBe(2);
      expect(result.stdout).toBe("");
      expect(result.stderr).toContain("USAGE panorama [OPTIONS] run|extract|");
      expect(messages(result.stderr)).toEqual(["`panorama` needs a command (listed above)"]);
    });

    test("`panorama --config status`: the command was read as the value of --config", async () => {
      const result = await runPanorama(["--config", "status"], { env: cleanEnv() });
      expect(result.code).toBe(2);
      expect(result.stdout).toBe("");
      expect(result.stderr).toContain("USAGE panorama [OPTIONS] run|extract|");
      expect(messages(result.stderr)).toEqual([
        '`panorama` needs a command (listed above): "status" was read as the value of --config',
        "hint: give --config its value first: `panorama --config FILE status`",
      ]);
    });

    test("a command group without its subcommand", async () => {
      const result = await runPanorama(["--json", "schema"], { env: cleanEnv() });
      expect(result.code).toBe(2);
      expect(result.stdout).toBe("");
      expect(result.stderr).toContain("USAGE panorama schema [OPTIONS] pull");
      expect(messages(result.stderr)).toEqual(["`panorama schema` needs a subcommand (pull)"]);
    });

    test("--help alone still prints the help on stdout and exits 0", async () => {
      const result = await runPanorama(["--config", "x.toml", "--help"], { env: cleanEnv() });
      expect(result.code).toBe(0);
      expect(result.stdout).toContain("USAGE panorama [OPTIONS] run|extract|");
      expect(result.stderr).toBe("");
    });
  });

  describe("a word no argument takes exits 2, before any config is read", () => {
    // /nonexistent.toml: were the word let through, the missing file would be the error.
    const unexpected = async (args: string[]) => {
      const result = await runPanorama(["--config", "/nonexistent.toml", ...args], { env: cleanEnv() });
      expect(result.code).toBe(2);
      expect(result.stdout).toBe("");
      return messages(result.stderr);
    };

    test("where the command takes --tables, the option is suggested", async () => {
      expect(await unexpected(["run", "--full", "auth_user"])).toEqual([
        'unexpected argument "auth_user" for `panorama run` (did you mean --tables auth_user?)',
        "hint: see `panorama run --help`",
      ]);
      expect(await unexpected(["verify", "auth_user"])).toEqual([
        'unexpected argument "auth_user" for `panorama verify` (did you mean --tables auth_user?)',
        "hint: see `panorama verify --help`",
      ]);
      expect(await unexpected(["schema", "pull", "auth_user"])).toEqual([
        'unexpected argument "auth_user" for `panorama schema pull` (did you mean --tables auth_user?)',
        "hint: see `panorama schema pull --help`",
      ]);
    });

    test("not when --tables was given (a list split by a space)", async () => {
      expect(await unexpected(["run", "--tables", "auth_user,", "student_courseenrollment"])).toEqual([
        'unexpected argument "student_courseenrollment" for `panorama run`',
        "hint: see `panorama run --help`",
      ]);
    });

    test("commands without --tables", async () => {
      expect(await unexpected(["crontab", "foo"])).toEqual([
        'unexpected argument "foo" for `panorama crontab`',
        "hint: see `panorama crontab --help`",
      ]);
      expect(await unexpected(["log-ship", "--once", "extra"])).toEqual([
        'unexpected argument "extra" for `panorama log-ship`',
        "hint: see `panorama log-ship --help`",
      ]);
    });

    test("words after -- too", async () => {
      expect(await unexpected(["status", "--", "x"])).toEqual([
        'unexpected argument "x" for `panorama status`',
        "hint: see `panorama status --help`",
      ]);
    });

    test("a command's positional argument is taken, one more is not", async () => {
      const ok = await runPanorama(["completions", "fish"], { env: cleanEnv() });
      expect(ok.code).toBe(0);
      expect(ok.stdout).toContain("complete -c panorama");
      expect(await unexpected(["completions", "bash", "zsh"])).toEqual([
        'unexpected argument "zsh" for `panorama completions`',
        "hint: see `panorama completions --help`",
      ]);
    });

    test("a missing positional argument points to the command's help", async () => {
      expect(await unexpected(["completions"])).toEqual([
        "Missing required positional argument: SHELL",
        "hint: see `panorama completions --help`",
      ]);
    });
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
    // A missing command fails there too.
    expect(run([]).exitCode).toBe(2);
  }, 120_000);
});
