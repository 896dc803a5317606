# bash completion for panorama, generated from the command definitions by
# `panorama completions bash` (completions/panorama.bash: scripts/gen-completions.ts). Do not edit.
# Use: source it from ~/.bashrc, or copy it to /etc/bash_completion.d/panorama.

# $1: a command path (empty for panorama itself). Sets subs, opts and valued.
_panorama_command() {
  case "$1" in
    "") subs="run extract upload catalog log-ship schema status verify doctor crontab iam-policy init k8s completions" opts="--config --log-level --json --version -h --help" valued="--config --log-level" ;;
    "run") subs="" opts="--config --log-level --json --tables --full --dry-run -h --help" valued="--config --log-level --tables" ;;
    "extract") subs="" opts="--config --log-level --json --tables --full --dry-run -h --help" valued="--config --log-level --tables" ;;
    "upload") subs="" opts="--config --log-level --json --dry-run -h --help" valued="--config --log-level" ;;
    "catalog") subs="" opts="--config --log-level --json --tables --create --views --partitions --drop --yes --print-ddl --dry-run -h --help" valued="--config --log-level --tables" ;;
    "log-ship") subs="" opts="--config --log-level --json --dry-run --once --follow --backfill -h --help" valued="--config --log-level" ;;
    "schema") subs="pull" opts="--config --log-level --json -h --help" valued="--config --log-level" ;;
    "schema pull") subs="" opts="--config --log-level --json --tables --write --force -h --help" valued="--config --log-level --tables --write" ;;
    "status") subs="" opts="--config --log-level --json --wide -h --help" valued="--config --log-level" ;;
    "verify") subs="" opts="--config --log-level --json --tables --repair -h --help" valued="--config --log-level --tables" ;;
    "doctor") subs="" opts="--config --log-level --json -h --help" valued="--config --log-level" ;;
    "crontab") subs="" opts="--config --log-level --json --install --file --binary --user -h --help" valued="--config --log-level --file --binary --user" ;;
    "iam-policy") subs="" opts="--config --log-level --json -h --help" valued="--config --log-level" ;;
    "init") subs="" opts="--config --log-level --json --from-tutor --output --force -h --help" valued="--config --log-level --from-tutor --output" ;;
    "k8s") subs="" opts="--config --log-level --json --namespace --image -h --help" valued="--config --log-level --namespace --image" ;;
    "completions") subs="" opts="--config --log-level --json -h --help" valued="--config --log-level" ;;
    *) subs="" opts="" valued="" ;;
  esac
}

# $1: a command path, $2: an option or #N (its Nth positional argument). Prints the words
# the value can be, or @files.
_panorama_values() {
  case "$1|$2" in
    *"|--config" | *"|--write" | *"|--file" | *"|--binary" | *"|--from-tutor" | *"|--output") echo @files ;;
    *"|--log-level") echo "debug info warn error" ;;
    "completions|#1") echo "bash zsh fish" ;;
  esac
}

_panorama() {
  local cur="${COMP_WORDS[COMP_CWORD]}" path="" subs opts valued word option values prefix=""
  local i skip=0 npos=0
  _panorama_command ""
  # Walk the words before the cursor: commands deepen the path, option values are skipped.
  for ((i = 1; i < COMP_CWORD; i++)); do
    word="${COMP_WORDS[i]}"
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
      path="${path:+$path }$word"
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
    option="${COMP_WORDS[COMP_CWORD - 1]}"
    [[ $option == "=" ]] && option="${COMP_WORDS[COMP_CWORD - 2]}"
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
    local IFS=$'\n'
    COMPREPLY=($(compgen -f -- "$cur"))
  else
    COMPREPLY=($(compgen -W "$values" -- "$cur"))
  fi
  [[ -n $prefix ]] && COMPREPLY=("${COMPREPLY[@]/#/$prefix}")
  return 0
}

complete -F _panorama panorama
