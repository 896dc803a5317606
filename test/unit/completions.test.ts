import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { main } from "../../src/cli.ts";
import {
  COMPLETION_FILES,
  type CommandLike,
  completionScript,
  describeCommands,
  SHELLS,
} from "../../src/setup/completions.ts";
import { cleanEnv, ROOT, runPanorama } from "../support/cli.ts";

const spec = await describeCommands(main);
const work = mkdtempSync(join(tmpdir(), "panorama-completions-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const scriptFile = (shell: string, text: string) => {
  const file = join(work, `panorama.${shell}`);
  writeFileSync(file, text);
  return file;
};
const bashFile = scriptFile("bash", completionScript("bash", spec));

describe("committed completion scripts", () => {
  for (const shell of SHELLS) {
    test(`${COMPLETION_FILES[shell]} matches the command definitions`, () => {
      const path = join(ROOT, COMPLETION_FILES[shell]);
      const committed = existsSync(path) ? readFileSync(path, "utf8") : "";
      if (committed !== completionScript(shell, spec)) {
        throw new Error(
          `${COMPLETION_FILES[shell]} is not what the command definitions give: run \`bun scripts/gen-completions.ts\``,
        );
      }
    });
  }
});

/** What bash offers for the last word, as `complete -F _panorama panorama` would ask it. */
async function bashComplete(words: string[], cwd = ROOT, file = bashFile): Promise<string[]> {
  const script = `source "$1"
shift
COMP_WORDS=("$@")
COMP_CWORD=$(($# - 1))
COMP_LINE="$*"
COMP_POINT=\${#COMP_LINE}
_panorama
printf "%s\\n" "\${COMPREPLY[@]}"`;
  const child = Bun.spawn(["bash", "--norc", "--noprofile", "-c", script, "bash", file, ...words], {
    cwd,
    stdout: "pipe",
    stderr: "pipe",
  });
  const [out, err, code] = await Promise.all([
    new Response(child.stdout).text(),
    new Response(child.stderr).text(),
    child.exited,
  ]);
  expect(err).toBe("");
  expect(code).toBe(0);
  return out.split("\n").filter(Boolean);
}

describe("bash completion", () => {
  test("command names", async () => {
    expect(await bashComplete(["panorama", "cr"])).toEqual(["crontab"]);
    const all = await bashComplete(["panorama", ""]);
    for (const name of ["crontab", "iam-policy", "init", "completions", "verify"])
      expect(all).toContain(name);
  });

  test("the options of a command", async () => {
    const options = await bashComplete(["panorama", "crontab", "--"]);
    expect(options).toContain("--install");
    expect(options).toContain("--binary");
    expect(options).toContain("--config");
    expect(await bashComplete(["panorama", "init", "--f"])).toEqual(["--from-tutor", "--force"]);
    const verify = await bashComplete(["panorama", "verify", "--"]);
    for (const option of ["--tables", "--repair", "--json"]) expect(verify).toContain(option);
  });

  test("the shells of `completions`, once", async () => {
    expect(await bashComplete(["panorama", "completions", ""])).toEqual(["bash", "zsh", "fish"]);
    expect(await bashComplete(["panorama", "completions", "z"])).toEqual(["zsh"]);
    expect(await bashComplete(["panorama", "completions", "bash", ""])).toEqual([]);
  });

  test("the log levels, also after --option=", async () => {
    const levels = ["debug", "info", "warn", "error"];
    expect(await bashComplete(["panorama", "--log-level", ""])).toEqual(levels);
    expect(await bashComplete(["panorama", "run", "--log-level", "w"])).toEqual(["warn"]);
    // bash splits `--log-level=d` into --log-level, =, d.
    expect(await bashComplete(["panorama", "--log-level", "=", "d"])).toEqual(["debug"]);
    expect(await bashComplete(["panorama", "--log-level", "="])).toEqual(levels.map((l) => `=${l}`));
  });

  test("a nested command and its options", async () => {
    expect(await bashComplete(["panorama", "schema", ""])).toEqual(["pull"]);
    expect(await bashComplete(["panorama", "--json", "schema", "pull", "--w"])).toEqual(["--write"]);
  });

  test("an option's value is not taken for a command", async () => {
    expect(await bashComplete(["panorama", "--config", "crontab", "cr"])).toEqual(["crontab"]);
    expect(await bashComplete(["panorama", "--config", "x.toml", "crontab", "--bin"])).toEqual(["--binary"]);
  });

  test("options that take a file complete file names", async () => {
    const dir = join(work, "files");
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, "abc.toml"), "");
    const cases = [
      ["panorama", "--config"],
      ["panorama", "crontab", "--file"],
      ["panorama", "crontab", "--binary"],
      ["panorama", "init", "--from-tutor"],
      ["panorama", "init", "--output"],
      ["panorama", "schema", "pull", "--write"],
    ];
    for (const words of cases) expect(await bashComplete([...words, "ab"], dir)).toEqual(["abc.toml"]);
    expect(await bashComplete(["panorama", "init", "--from-tutor", "test/fixtures/tutor/c"])).toEqual([
      "test/fixtures/tutor/config.yml",
    ]);
    // A value that is free text offers nothing (no file names either).
    expect(await bashComplete(["panorama", "run", "--tables", "ab"], dir)).toEqual([]);
  });

  test("a command added later is completed without touching the generator", async () => {
    const extra: CommandLike = {
      meta: { description: "root" },
      args: {},
      subCommands: {
        doctor: async () => ({
          meta: { description: "test every connection" },
          args: { fix: { type: "boolean", description: "try to fix" } },
        }),
      },
    };
    const file = scriptFile("extra.bash", completionScript("bash", await describeCommands(extra)));
    expect(await bashComplete(["panorama", "d"], ROOT, file)).toEqual(["doctor"]);
    expect(await bashComplete(["panorama", "doctor", "--f"], ROOT, file)).toEqual(["--fix"]);
  });
});

describe("zsh and fish scripts", () => {
  const zsh = Bun.which("zsh");
  const fish = Bun.which("fish");
  if (!zsh) console.log("skipped: zsh is not installed (apt-get install -y zsh), so _panorama is not parsed");
  if (!fish)
    console.log("skipped: fish is not installed (apt-get install -y fish), so panorama.fish is not run");

  test.skipIf(!zsh)("zsh -n parses _panorama", async () => {
    const child = Bun.spawn([zsh!, "-n", scriptFile("zsh", completionScript("zsh", spec))], {
      stderr: "pipe",
    });
    const [err, code] = await Promise.all([new Response(child.stderr).text(), child.exited]);
    expect(err).toBe("");
    expect(code).toBe(0);
  });

  test.skipIf(!fish)("fish parses panorama.fish and completes with it", async () => {
    const file = scriptFile("fish", completionScript("fish", spec));
    const parse = Bun.spawn([fish!, "--no-execute", file], { stderr: "pipe" });
    expect(await parse.exited).toBe(0);
    const complete = async (line: string) => {
      const child = Bun.spawn([fish!, "--no-config", "-c", `source ${file}; complete -C '${line}'`], {
        cwd: ROOT,
        stdout: "pipe",
      });
      const out = await new Response(child.stdout).text();
      return out
        .split("\n")
        .filter(Boolean)
        .map((l) => l.split("\t")[0]);
    };
    expect(await complete("panorama cr")).toEqual(["crontab"]);
    expect(await complete("panorama completions ")).toEqual(["bash", "fish", "zsh"]);
    expect(await complete("panorama --log-level ")).toEqual(["debug", "error", "info", "warn"]);
    expect(await complete("panorama crontab --")).toContain("--binary");
    expect(await complete("panorama schema pull --w")).toEqual(["--write"]);
    expect(await complete("panorama verify --r")).toEqual(["--repair"]);
    expect(await complete("panorama init --from-tutor test/fixtures/tutor/c")).toEqual([
      "test/fixtures/tutor/config.yml",
    ]);
  });
});

describe("panorama completions", () => {
  test("prints the script of each shell on stdout", async () => {
    for (const shell of SHELLS) {
      const result = await runPanorama(["completions", shell], { env: cleanEnv() });
      expect(result.code).toBe(0);
      expect(result.stdout).toBe(completionScript(shell, spec));
    }
  });

  test("an unknown shell is a usage error naming the accepted ones", async () => {
    const result = await runPanorama(["completions", "tcsh"], { env: cleanEnv() });
    expect(result.code).toBe(2);
    expect(result.stdout).toBe("");
    expect(result.stderr).toContain("unknown shell");
    expect(result.stderr).toContain("tcsh");
    expect(result.stderr).toContain("bash, zsh, fish");
  });

  test("no shell is a usage error", async () => {
    const result = await runPanorama(["completions"], { env: cleanEnv() });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("SHELL");
  });
});
