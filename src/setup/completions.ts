// Shell completion scripts generated from the command definitions themselves (names,
// descriptions, options, positional arguments, nested commands), so that a command added to the
// map is completed without touching this file. What an option's value completes to comes from
// its definition: enum options, a valueHint listing the values ("bash|zsh|fish", citty's own
// notation for choices), a valueHint naming a file (FILE, PATH, CONFIG_YML...), or VALUE_WORDS.
import type { ArgDef, ArgsDef, CommandMeta, Resolvable } from "citty";
import { LEVELS } from "../log.ts";

export const SHELLS = ["bash", "zsh", "fish"] as const;
export type Shell = (typeof SHELLS)[number];

/** Where each committed script lives, relative to the repository root. */
export const COMPLETION_FILES: Record<Shell, string> = {
  bash: "completions/panorama.bash",
  zsh: "completions/_panorama",
  fish: "completions/panorama.fish",
};

/** Options whose values are known but not spelled in their definition. */
const VALUE_WORDS: Record<string, readonly string[]> = { "log-level": LEVELS };

/** A valueHint that names a file or a path: the value completes to file names. */
const FILE_HINT = /FILE|PATH|DIR|YML|YAML|TOML/;

/** The part of citty's CommandDef that completion reads. */
export interface CommandLike {
  meta?: Resolvable<CommandMeta>;
  args?: Resolvable<ArgsDef>;
  subCommands?: Resolvable<Record<string, Resolvable<CommandLike>>>;
}

type Values = { kind: "none" } | { kind: "files" } | { kind: "words"; words: readonly string[] };

interface OptionSpec {
  /** ["--tables"], or with aliases ["-t", "--tables"] */
  spellings: string[];
  description: string;
  takesValue: boolean;
  /** a name for the value in messages: the valueHint, else the option name */
  hint: string;
  values: Values;
}

interface PositionalSpec {
  name: string;
  description: string;
  required: boolean;
  values: Values;
}

export interface CommandSpec {
  /** the words that name it: [] for panorama itself, ["schema", "pull"] */
  path: string[];
  description: string;
  options: OptionSpec[];
  positionals: PositionalSpec[];
  subcommands: CommandSpec[];
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9_-]*$/;
const WORD = /^[A-Za-z0-9_.,:/@+=-]+$/;

async function resolve<T>(value: Resolvable<T>): Promise<T> {
  return typeof value === "function" ? await (value as () => T | Promise<T>)() : await value;
}

/** The command tree under `command`, lazy imports resolved. */
export async function describeCommands(command: CommandLike, path: string[] = []): Promise<CommandSpec> {
  const meta = command.meta ? await resolve(command.meta) : {};
  const args = command.args ? await resolve(command.args) : {};
  const options: OptionSpec[] = [];
  const positionals: PositionalSpec[] = [];
  for (const [name, def] of Object.entries(args)) {
    checkName(name, `an argument of \`${["panorama", ...path].join(" ")}\``);
    if (def.type === "positional") {
      positionals.push({
        name: name.toUpperCase(),
        description: describe(def),
        required: def.required !== false && def.default === undefined,
        values: valuesOf(name, def),
      });
      continue;
    }
    const takesValue = def.type === "string" || def.type === "enum";
    const alias = "alias" in def ? def.alias : undefined;
    const aliases = alias === undefined ? [] : Array.isArray(alias) ? alias : [alias];
    for (const alias of aliases) checkName(alias, `an alias of --${name}`);
    const spellings = [...aliases.map((a) => (a.length === 1 ? `-${a}` : `--${a}`)), `--${name}`];
    options.push({
      spellings,
      description: describe(def),
      takesValue,
      hint: def.valueHint ?? name.toUpperCase(),
      values: takesValue ? valuesOf(name, def) : { kind: "none" },
    });
    // citty offers --no-<name> when it is the way to say something (see its usage text).
    if (def.type === "boolean" && (def.default === true || "negativeDescription" in def)) {
      const negative = "negativeDescription" in def ? (def.negativeDescription ?? "") : "";
      options.push({
        spellings: [`--no-${name}`],
        description: negative,
        takesValue: false,
        hint: "",
        values: { kind: "none" },
      });
    }
  }
  if (path.length === 0) {
    options.push({
      spellings: ["--version"],
      description: "print the version",
      takesValue: false,
      hint: "",
      values: { kind: "none" },
    });
  }
  options.push({
    spellings: ["-h", "--help"],
    description: "show the help",
    takesValue: false,
    hint: "",
    values: { kind: "none" },
  });
  const subcommands: CommandSpec[] = [];
  const subs = command.subCommands ? await resolve(command.subCommands) : {};
  for (const [name, sub] of Object.entries(subs)) {
    checkName(name, "a command name");
    const def = await resolve(sub);
    const subMeta = def.meta ? await resolve(def.meta) : {};
    if (subMeta.hidden) continue;
    subcommands.push(await describeCommands(def, [...path, name]));
  }
  return { path, description: meta.description ?? "", options, positionals, subcommands };
}

function checkName(name: string, what: string): void {
  if (!NAME.test(name)) throw new Error(`completions: ${what} "${name}" is not a plain word`);
}

function describe(def: ArgDef): string {
  return (def.description ?? "").split("\n")[0]!.trim();
}

function valuesOf(name: string, def: ArgDef): Values {
  const hint = def.valueHint ?? "";
  let words: readonly string[] | undefined;
  if (def.type === "enum" && def.options && def.options.length > 0) words = def.options;
  else if (/^[^|\s]+(\|[^|\s]+)+$/.test(hint)) words = hint.split("|");
  else words = VALUE_WORDS[name];
  if (words) {
    for (const word of words) {
      if (!WORD.test(word))
        throw new Error(`completions: the value "${word}" of ${name} is not a plain word`);
    }
    return { kind: "words", words };
  }
  if (FILE_HINT.test(hint.toUpperCase())) return { kind: "files" };
  return { kind: "none" };
}

function flatten(spec: CommandSpec): CommandSpec[] {
  return [spec, ...spec.subcommands.flatMap(flatten)];
}

/** The comment lines that say where a script comes from. */
const GENERATED = (shell: Shell) => [
  `# ${shell} completion for panorama, generated from the command definitions by`,
  `# \`panorama completions ${shell}\` (${COMPLETION_FILES[shell]}: scripts/gen-completions.ts). Do not edit.`,
];

export function completionScript(shell: Shell, root: CommandSpec): string {
  if (shell === "bash") return bashScript(root);
  if (shell === "zsh") return zshScript(root);
  return fishScript(root);
}

// --- bash -------------------------------------------------------------------------------------

function bashScript(root: CommandSpec): string {
  const commands = flatten(root);
  const out = [
    ...GENERATED("bash"),
    "# Use: source it from ~/.bashrc, or copy it to /etc/bash_completion.d/panorama.",
    "",
    "# $1: a command path (empty for panorama itself). Sets subs, opts and valued.",
    "_panorama_command() {",
    '  case "$1" in',
  ];
  for (const c of commands) {
    const subs = c.subcommands.map((s) => s.path.at(-1)!).join(" ");
    const opts = c.options.flatMap((o) => o.spellings).join(" ");
    const valued = c.options
      .filter((o) => o.takesValue)
      .flatMap((o) => o.spellings)
      .join(" ");
    out.push(`    "${c.path.join(" ")}") subs="${subs}" opts="${opts}" valued="${valued}" ;;`);
  }
  out.push('    *) subs="" opts="" valued="" ;;', "  esac", "}", "");
  // Group the (command, option) pairs by what they complete to, in order of first appearance; an
  // option that completes alike in every command that has it (--config) is matched once.
  const actions = new Map<string, string[]>();
  const add = (action: string, pattern: string) => {
    const patterns = actions.get(action) ?? [];
    if (!patterns.includes(pattern)) patterns.push(pattern);
    actions.set(action, patterns);
  };
  const everywhere = new Map<string, Set<string | null>>();
  for (const c of commands) {
    for (const option of c.options) {
      for (const spelling of option.spellings) {
        const seen = everywhere.get(spelling) ?? new Set();
        seen.add(bashAction(option.values));
        everywhere.set(spelling, seen);
      }
    }
  }
  for (const c of commands) {
    const path = c.path.join(" ");
    for (const option of c.options) {
      const action = bashAction(option.values);
      if (!action) continue;
      for (const spelling of option.spellings) {
        add(action, everywhere.get(spelling)?.size === 1 ? `*"|${spelling}"` : `"${path}|${spelling}"`);
      }
    }
    c.positionals.forEach((positional, i) => {
      const action = bashAction(positional.values);
      if (action) add(action, `"${path}|#${i + 1}"`);
    });
  }
  out.push(
    "# $1: a command path, $2: an option or #N (its Nth positional argument). Prints the words",
    "# the value can be, or @files.",
    "_panorama_values() {",
    '  case "$1|$2" in',
  );
  for (const [action, patterns] of actions) out.push(`    ${patterns.join(" | ")}) ${action} ;;`);
  out.push("  esac", "}", "", BASH_COMPLETE, "complete -F _panorama panorama");
  return `${out.join("\n")}\n`;
}

/** The completion function: walks the words typed so far, then asks the two functions above. */
const BASH_COMPLETE = `_panorama() {
  local cur="\${COMP_WORDS[COMP_CWORD]}" path="" subs opts valued word option values prefix=""
  local i skip=0 npos=0
  _panorama_command ""
  # Walk the words before the cursor: commands deepen the path, option values are skipped.
  for ((i = 1; i < COMP_CWORD; i++)); do
    word="\${COMP_WORDS[i]}"
    # bash splits --option=value into three words: the value follows the =.
    if [[ $word == "=" ]]; then
      skip=1
      continue
    fi
    if ((skip)); then
      skip=0
      continue
    fi
    if [[ $word == -* ]]; then
      [[ " $valued " == *" $word "* ]] && skip=1
      continue
    fi
    if [[ " $subs " == *" $word "* ]]; then
      path="\${path:+$path }$word"
      _panorama_command "$path"
      npos=0
    else
      npos=$((npos + 1))
    fi
  done
  if [[ $cur == "=" ]]; then
    # --option=<TAB>: the words replace the =, so they must bring it back.
    prefix="="
    cur=""
    skip=1
  fi
  if ((skip)); then
    option="\${COMP_WORDS[COMP_CWORD - 1]}"
    [[ $option == "=" ]] && option="\${COMP_WORDS[COMP_CWORD - 2]}"
    [[ " $valued " == *" $option "* ]] || return 0
    values="$(_panorama_values "$path" "$option")"
  elif [[ $cur == -* ]]; then
    COMPREPLY=($(compgen -W "$opts" -- "$cur"))
    return 0
  elif [[ -n $subs ]]; then
    COMPREPLY=($(compgen -W "$subs" -- "$cur"))
    return 0
  else
    values="$(_panorama_values "$path" "#$((npos + 1))")"
  fi
  if [[ $values == "@files" ]]; then
    compopt -o filenames 2>/dev/null
    local IFS=$'\\n'
    COMPREPLY=($(compgen -f -- "$cur"))
  else
    COMPREPLY=($(compgen -W "$values" -- "$cur"))
  fi
  [[ -n $prefix ]] && COMPREPLY=("\${COMPREPLY[@]/#/$prefix}")
  return 0
}
`;

function bashAction(values: Values): string | null {
  if (values.kind === "files") return "echo @files";
  if (values.kind === "words") return `echo "${values.words.join(" ")}"`;
  return null;
}

// --- zsh --------------------------------------------------------------------------------------

function zshFunction(spec: CommandSpec): string {
  if (spec.path.length === 0) return "_panorama";
  return `__panorama_${spec.path.map((p) => p.replaceAll("-", "_")).join("_")}`;
}

/** Single-quoted for zsh. */
function zq(text: string): string {
  return `'${text.replaceAll("'", `'\\''`)}'`;
}

/** Text inside an _arguments [explanation]: brackets and backslashes escaped. */
function zshExplanation(text: string): string {
  return text.replace(/[\\[\]]/g, "\\$&");
}

/** An _arguments message or a _describe name: colons and backslashes escaped. */
function zshColon(text: string): string {
  return text.replace(/[\\:]/g, "\\$&");
}

function zshAction(values: Values): string {
  if (values.kind === "files") return "_files";
  if (values.kind === "words") return `(${values.words.join(" ")})`;
  return " ";
}

function zshSpecs(spec: CommandSpec): string[] {
  const specs: string[] = [];
  for (const option of spec.options) {
    const isHelp = option.spellings.includes("--help") || option.spellings.includes("--version");
    const exclusion = isHelp ? "(- *)" : option.spellings.length > 1 ? `(${option.spellings.join(" ")})` : "";
    for (const spelling of option.spellings) {
      const suffix = option.takesValue ? (spelling.startsWith("--") ? "=" : "+") : "";
      const value = option.takesValue ? `:${zshColon(option.hint)}:${zshAction(option.values)}` : "";
      specs.push(zq(`${exclusion}${spelling}${suffix}[${zshExplanation(option.description)}]${value}`));
    }
  }
  spec.positionals.forEach((positional, i) => {
    const optional = positional.required ? "" : ":";
    specs.push(zq(`${i + 1}:${optional}${zshColon(positional.name)}:${zshAction(positional.values)}`));
  });
  if (spec.subcommands.length > 0) specs.push("'1: :->command'", "'*:: :->argument'");
  return specs;
}

function zshScript(root: CommandSpec): string {
  const out = [
    "#compdef panorama",
    ...GENERATED("zsh"),
    "# Use: copy it as _panorama into a directory of $fpath (e.g. /usr/local/share/zsh/site-functions),",
    "# or `source <(panorama completions zsh)` after compinit.",
  ];
  for (const spec of flatten(root)) {
    out.push("", `${zshFunction(spec)}() {`);
    const specs = zshSpecs(spec).map((s) => `    ${s}`);
    if (spec.subcommands.length === 0) {
      out.push("  _arguments \\", `${specs.join(" \\\n")}`, "}");
      continue;
    }
    const name = ["panorama", ...spec.path].join(" ");
    out.push(
      '  local curcontext="$curcontext" state line ret=1',
      "  _arguments -C \\",
      `${specs.join(" \\\n")} && ret=0`,
      "  case $state in",
      "    command)",
      "      local -a commands",
      "      commands=(",
      ...spec.subcommands.map((s) => `        ${zq(`${zshColon(s.path.at(-1)!)}:${s.description}`)}`),
      "      )",
      `      _describe -t commands ${zq(`${name} command`)} commands && ret=0`,
      "      ;;",
      "    argument)",
      `      curcontext="\${curcontext%:*:*}:${["panorama", ...spec.path].join("-")}-$words[1]:"`,
      "      case $words[1] in",
      ...spec.subcommands.map((s) => `        ${s.path.at(-1)}) ${zshFunction(s)} && ret=0 ;;`),
      "      esac",
      "      ;;",
      "  esac",
      "  return ret",
      "}",
    );
  }
  out.push(
    "",
    'if [ "$funcstack[1]" = "_panorama" ]; then',
    '  _panorama "$@"',
    "else",
    "  compdef _panorama panorama",
    "fi",
  );
  return `${out.join("\n")}\n`;
}

// --- fish -------------------------------------------------------------------------------------

/** Single-quoted for fish. */
function fq(text: string): string {
  return `'${text.replace(/[\\']/g, "\\$&")}'`;
}

function fishScript(root: CommandSpec): string {
  const commands = flatten(root);
  const out = [
    ...GENERATED("fish"),
    "# Use: copy it to ~/.config/fish/completions/panorama.fish.",
    "",
    "# The commands under a command path ($argv[1], empty for panorama itself).",
    "function __panorama_subs",
    "    switch $argv[1]",
  ];
  const caseLines = (pick: (c: CommandSpec) => string[]) => {
    for (const c of commands) {
      const words = pick(c);
      if (words.length > 0)
        out.push(`        case ${fq(c.path.join(" "))}`, `            printf '%s\\n' ${words.join(" ")}`);
    }
  };
  caseLines((c) => c.subcommands.map((s) => s.path.at(-1)!));
  out.push(
    "    end",
    "end",
    "",
    "# The options of a command path that take a value.",
    "function __panorama_valued",
    "    switch $argv[1]",
  );
  caseLines((c) => c.options.filter((o) => o.takesValue).flatMap((o) => o.spellings));
  out.push(
    "    end",
    "end",
    "",
    "# True when the words typed so far name the command path $argv[1] and, when $argv[2] is",
    "# given, are followed by that many positional arguments.",
    "function __panorama_at",
    "    set -l tokens (commandline -opc)",
    "    set -e tokens[1]",
    "    set -l path",
    "    set -l npos 0",
    "    set -l skip 0",
    "    for token in $tokens",
    "        if test $skip = 1",
    "            set skip 0",
    "            continue",
    "        end",
    "        switch $token",
    "            case '--*=*'",
    "                continue",
    "            case '-*'",
    '                if contains -- $token (__panorama_valued "$path")',
    "                    set skip 1",
    "                end",
    "                continue",
    "        end",
    '        if contains -- $token (__panorama_subs "$path")',
    "            set -a path $token",
    "            set npos 0",
    "        else",
    "            set npos (math $npos + 1)",
    "        end",
    "    end",
    '    test "$path" = "$argv[1]"; or return 1',
    '    test (count $argv) -lt 2; or test "$npos" = "$argv[2]"',
    "end",
    "",
    "complete -c panorama -f",
  );
  for (const c of commands) {
    const at = (npos?: number) =>
      `-n ${fq(`__panorama_at "${c.path.join(" ")}"${npos === undefined ? "" : ` ${npos}`}`)}`;
    out.push("", `# panorama${c.path.map((p) => ` ${p}`).join("")}`);
    for (const s of c.subcommands) {
      out.push(`complete -c panorama ${at(0)} -a ${s.path.at(-1)} -d ${fq(s.description)}`);
    }
    for (const option of c.options) {
      const flags = option.spellings
        .map((s) => (s.startsWith("--") ? `-l ${s.slice(2)}` : `-s ${s.slice(1)}`))
        .join(" ");
      let value = "";
      if (option.takesValue) {
        if (option.values.kind === "files") value = " -r -F";
        else if (option.values.kind === "words") value = ` -x -a ${fq(option.values.words.join(" "))}`;
        else value = " -x";
      }
      out.push(`complete -c panorama ${at()} ${flags}${value} -d ${fq(option.description)}`);
    }
    c.positionals.forEach((positional, i) => {
      const values = positional.values;
      if (values.kind === "none") return;
      const what = values.kind === "files" ? "-F" : `-a ${fq(values.words.join(" "))}`;
      out.push(`complete -c panorama ${at(i)} ${what} -d ${fq(positional.description)}`);
    });
  }
  return `${out.join("\n")}\n`;
}
