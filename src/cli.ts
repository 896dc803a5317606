#!/usr/bin/env bun
// Entry point: resolve the command from a lazy map, reject unknown options, run it, and turn
// errors into messages and exit codes in one place.
import { type ArgsDef, type CommandDef, renderUsage, runCommand } from "citty";
import pkg from "../package.json" with { type: "json" };
import { commands } from "./commands/index.ts";
import { globalArgs, setEarlyGlobals, startLogging } from "./commands/shared.ts";
import { closest } from "./config/reader.ts";
import { exitCodeFor, report, UsageError } from "./errors.ts";
import { log } from "./log.ts";
import { inStateDir } from "./state/state-dir.ts";

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

/** Reject unknown options, options without their value, and words the command takes no place for. */
function checkArguments(resolved: Resolved, args: ArgsDef): void {
  const { flags, valued } = optionNames(args);
  const positionals = Object.values(args).filter((def) => def.type === "positional").length;
  let taken = 0;
  let afterDashes = false;
  for (let i = 0; i < resolved.argv.length; i++) {
    const word = resolved.argv[i]!;
    if (word === "--" && !afterDashes) {
      afterDashes = true;
      continue;
    }
    if (afterDashes || !word.startsWith("-") || word === "-") {
      // citty drops what no positional argument takes: `run --full auth_user` would run every table.
      if (++taken > positionals) throw unexpectedArgument(word, resolved, args);
      continue;
    }
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

function unexpectedArgument(word: string, resolved: Resolved, args: ArgsDef): UsageError {
  const command = resolved.path.join(" ");
  // Where the command takes --tables and none was given, the option was most likely left out.
  const tablesGiven = resolved.argv.some((w) => w === "--tables" || w.startsWith("--tables="));
  const suggestion = "tables" in args && !tablesGiven ? ` (did you mean --tables ${word}?)` : "";
  return new UsageError(
    `unexpected argument "${word}" for \`panorama ${command}\`${suggestion}`,
    `see \`panorama ${command} --help\``,
  );
}

/**
 * Why no command ran: the command word is missing, or was read as an option's value
 * (`panorama --config status`).
 */
function missingCommand(resolved: Resolved, args: ArgsDef, names: string[]): UsageError {
  const { valued } = optionNames(args);
  const command = ["panorama", ...resolved.path].join(" ");
  const needs =
    resolved.path.length === 0 ? "a command (listed above)" : `a subcommand (${names.join(", ")})`;
  for (let i = 0; i < resolved.argv.length - 1; i++) {
    const [option, value] = [resolved.argv[i]!, resolved.argv[i + 1]!];
    if (valued.has(option) && names.includes(value)) {
      const def = args[option.replace(/^--/, "")];
      const hint = (def && "valueHint" in def && def.valueHint) || "VALUE";
      return new UsageError(
        `\`${command}\` needs ${needs}: "${value}" was read as the value of ${option}`,
        `give ${option} its value first: \`${command} ${option} ${hint} ${value}\``,
      );
    }
  }
  // The help was just printed: no hint to ask for it.
  return new UsageError(`\`${command}\` needs ${needs}`);
}

/** Help text with its colours only for a person at a terminal, not for a pipe or a file. */
function writeUsage(stream: NodeJS.WriteStream, usage: string): void {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: the escape character is what is matched
  stream.write(`${stream.isTTY ? usage : usage.replace(/\x1b\[[0-9;]*m/g, "")}\n`);
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
      if (wantsHelp) {
        writeUsage(process.stdout, usage);
        return 0;
      }
      // No command to run is a usage error, bare `panorama` too: a cron line that lost its
      // command must not pass for a job done.
      writeUsage(process.stderr, usage);
      const names = Object.keys((await resolve(resolved.command.subCommands)) ?? {});
      throw missingCommand(resolved, args, names);
    }
    checkArguments(resolved, args);
    const { result } = await runCommand(resolved.command, { rawArgs: resolved.argv }).catch(
      (error: unknown) => {
        throw errorWithCittyMapped(error, resolved.path);
      },
    );
    return typeof result === "number" ? result : 0;
  } catch (error) {
    const mapped = inStateDir(errorWithCittyMapped(error, null));
    report(mapped);
    return exitCodeFor(mapped);
  }
}

/**
 * citty's own argument errors (missing positional, bad enum) are usage errors, with the
 * command's help as the hint when the command is known.
 */
function errorWithCittyMapped(error: unknown, path: string[] | null): unknown {
  if (!(error instanceof Error) || error.name !== "CLIError") return error;
  const hint = path && path.length > 0 ? `see \`panorama ${path.join(" ")} --help\`` : undefined;
  return new UsageError(error.message, hint);
}

/**
 * A stop by SIGTERM or SIGINT (the host shutting down, Ctrl-C) is said in the log, instead of
 * the run's lines just ending: every step is crash-safe, so the process exits at once, with the
 * code a shell gives a process the signal ended (128 + its number). A command that stops on its
 * own terms (log-ship --follow) listens to the signal itself and is left to it.
 */
function sayStops(): void {
  for (const [signal, number] of [
    ["SIGTERM", 15],
    ["SIGINT", 2],
  ] as const) {
    process.on(signal, () => {
      if (process.listenerCount(signal) > 1) return;
      log.warn(`stopped by ${signal}: nothing is lost, the next run takes up what was not finished`, {
        signal,
      });
      process.exit(128 + number);
    });
  }
}

if (import.meta.main) {
  sayStops();
  const code = await runCli(process.argv.slice(2));
  process.exit(code);
}
