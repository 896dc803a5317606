#!/usr/bin/env bun
// Entry point: resolve the command from a lazy map, reject unknown options, run it, and turn
// errors into messages and exit codes in one place.
import { type ArgsDef, type CommandDef, renderUsage, runCommand } from "citty";
import pkg from "../package.json" with { type: "json" };
import { commands } from "./commands/index.ts";
import { globalArgs, setEarlyGlobals, startLogging } from "./commands/shared.ts";
import { closest } from "./config/reader.ts";
import { exitCodeFor, report, UsageError } from "./errors.ts";

// biome-ignore lint/suspicious/noExplicitAny: commands are generic over their own args
type AnyCommand = CommandDef<any>;

export const main = {
  meta: {
    name: "panorama",
    version: pkg.version,
    description: "Feeds the Panorama analytics datalake of an Open edX installation",
  },
  args: globalArgs,
  subCommands: commands,
} satisfies AnyCommand;

async function resolve<T>(value: T | Promise<T> | (() => T | Promise<T>)): Promise<T> {
  return typeof value === "function" ? await (value as () => T | Promise<T>)() : await value;
}

/** Names of the value-taking options of a command, with their aliases, as typed on a command line. */
function optionNames(args: ArgsDef): { flags: Set<string>; valued: Set<string> } {
  const flags = new Set<string>(["--help", "-h"]);
  const valued = new Set<string>();
  for (const [name, def] of Object.entries(args)) {
    if (def.type === "positional") continue;
    const alias = "alias" in def ? def.alias : undefined;
    const aliases = Array.isArray(alias) ? alias : alias ? [alias] : [];
    const spellings = [`--${name}`, ...aliases.map((a) => (a.length === 1 ? `-${a}` : `--${a}`))];
    if (def.type === "boolean") spellings.push(`--no-${name}`);
    for (const s of spellings) {
      flags.add(s);
      if (def.type === "string" || def.type === "enum") valued.add(s);
    }
  }
  return { flags, valued };
}

interface Resolved {
  command: AnyCommand;
  /** the words that named it: ["schema", "pull"] */
  path: string[];
  /** its own arguments, global options given before its name included */
  argv: string[];
}

/** Walk the command tree along the first word that is not an option. */
async function resolveCommand(root: AnyCommand, argv: string[]): Promise<Resolved> {
  let command = root;
  const path: string[] = [];
  let rest = argv;
  const carried: string[] = [];
  for (;;) {
    const subCommands = await resolve(command.subCommands);
    if (!subCommands) break;
    const { valued } = optionNames((await resolve(command.args)) ?? {});
    let index = -1;
    for (let i = 0; i < rest.length; i++) {
      const word = rest[i]!;
      if (word === "--") break;
      if (word.startsWith("-")) {
        if (!word.includes("=") && valued.has(word)) i++;
        continue;
      }
      index = i;
      break;
    }
    if (index < 0) break;
    const name = rest[index]!;
    const next = subCommands[name];
    if (!next) {
      const suggestion = closest(name, Object.keys(subCommands));
      throw new UsageError(
        `unknown command "${[...path, name].join(" ")}"${suggestion ? ` (did you mean "${[...path, suggestion].join(" ")}"?)` : ""}`,
        `see \`panorama ${path.join(" ")}${path.length ? " " : ""}--help\``,
      );
    }
    carried.push(...rest.slice(0, index));
    path.push(name);
    command = await resolve(next);
    rest = rest.slice(index + 1);
  }
  return { command, path, argv: [...carried, ...rest] };
}

function checkOptions(resolved: Resolved, args: ArgsDef): void {
  const { flags, valued } = optionNames(args);
  for (let i = 0; i < resolved.argv.length; i++) {
    const word = resolved.argv[i]!;
    if (word === "--") break;
    if (!word.startsWith("-") || word === "-") continue;
    const flag = word.split("=")[0]!;
    if (!flags.has(flag)) {
      const suggestion = closest(flag, [...flags]);
      throw new UsageError(
        `unknown option ${flag} for \`panorama ${resolved.path.join(" ")}\`${suggestion ? ` (did you mean ${suggestion}?)` : ""}`,
        `see \`panorama ${resolved.path.join(" ")} --help\``,
      );
    }
    if (valued.has(flag) && !word.includes("=")) {
      const value = resolved.argv[i + 1];
      if (value === undefined || (value.startsWith("-") && value !== "-")) {
        throw new UsageError(`option ${flag} needs a value`);
      }
      i++;
    }
  }
}

function earlyGlobals(argv: string[]): { config?: string; "log-level"?: string; json?: boolean } {
  const out: { config?: string; "log-level"?: string; json?: boolean } = {};
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i]!.split(/=(.*)/s) as [string, string | undefined];
    if (flag === "--json") out.json = true;
    if (flag === "--config" || flag === "--log-level") {
      const value = inline ?? argv[i + 1];
      if (value !== undefined) out[flag.slice(2) as "config" | "log-level"] = value;
    }
  }
  return out;
}

export async function runCli(argv: string[]): Promise<number> {
  if (argv.length === 1 && (argv[0] === "--version" || argv[0] === "-v")) {
    process.stdout.write(`${pkg.version}\n`);
    return 0;
  }
  const early = earlyGlobals(argv);
  setEarlyGlobals(early);
  try {
    startLogging(early);
    const resolved = await resolveCommand(main, argv);
    const args = (await resolve(resolved.command.args)) ?? {};
    const wantsHelp = resolved.argv.some((w) => w === "--help" || w === "-h");
    if (wantsHelp || (!resolved.command.run && resolved.command.subCommands)) {
      // citty names a command after its parent's name: the parent here carries the whole path,
      // so that `schema pull --help` says "panorama schema pull".
      const parent =
        resolved.path.length > 0
          ? { meta: { ...main.meta, name: ["panorama", ...resolved.path.slice(0, -1)].join(" ") } }
          : undefined;
      const usage = await renderUsage(resolved.command, parent);
      // Colours only for a person at a terminal, not for a pipe or a file.
      // biome-ignore lint/suspicious/noControlCharactersInRegex: the escape character is what is matched
      process.stdout.write(`${process.stdout.isTTY ? usage : usage.replace(/\x1b\[[0-9;]*m/g, "")}\n`);
      return wantsHelp || resolved.path.length === 0 ? 0 : 2;
    }
    checkOptions(resolved, args);
    const { result } = await runCommand(resolved.command, { rawArgs: resolved.argv });
    return typeof result === "number" ? result : 0;
  } catch (error) {
    const mapped = errorWithCittyMapped(error);
    report(mapped);
    return exitCodeFor(mapped);
  }
}

/** citty's own argument errors (missing positional, bad enum) are usage errors. */
function errorWithCittyMapped(error: unknown): unknown {
  if (error instanceof Error && error.name === "CLIError") return new UsageError(error.message);
  return error;
}

if (import.meta.main) {
  const code = await runCli(process.argv.slice(2));
  process.exit(code);
}
