# fish completion for panorama, generated from the command definitions by
# `panorama completions fish` (completions/panorama.fish: scripts/gen-completions.ts). Do not edit.
# Use: copy it to ~/.config/fish/completions/panorama.fish.

# The commands under a command path ($argv[1], empty for panorama itself).
function __panorama_subs
    switch $argv[1]
        case ''
            printf '%s\n' run extract upload catalog log-ship schema status verify doctor crontab iam-policy init k8s completions
        case 'schema'
            printf '%s\n' pull
    end
end

# The options of a command path that take a value.
function __panorama_valued
    switch $argv[1]
        case ''
            printf '%s\n' --config --log-level
        case 'run'
            printf '%s\n' --config --log-level --tables
        case 'extract'
            printf '%s\n' --config --log-level --tables
        case 'upload'
            printf '%s\n' --config --log-level
        case 'catalog'
            printf '%s\n' --config --log-level --tables
        case 'log-ship'
            printf '%s\n' --config --log-level
        case 'schema'
            printf '%s\n' --config --log-level
        case 'schema pull'
            printf '%s\n' --config --log-level --tables --write
        case 'status'
            printf '%s\n' --config --log-level
        case 'verify'
            printf '%s\n' --config --log-level --tables
        case 'doctor'
            printf '%s\n' --config --log-level
        case 'crontab'
            printf '%s\n' --config --log-level --file --binary --user
        case 'iam-policy'
            printf '%s\n' --config --log-level
        case 'init'
            printf '%s\n' --config --log-level --from-tutor --output
        case 'k8s'
            printf '%s\n' --config --log-level --namespace --image
        case 'completions'
            printf '%s\n' --config --log-level
    end
end

# True when the words typed so far name the command path $argv[1] and, when $argv[2] is
# given, are followed by that many positional arguments.
function __panorama_at
    set -l tokens (commandline -opc)
    set -e tokens[1]
    set -l path
    set -l npos 0
    set -l skip 0
    for token in $tokens
        if test $skip = 1
            set skip 0
            continue
        end
        switch $token
            case '--*=*'
                continue
            case '-*'
                if contains -- $token (__panorama_valued "$path")
                    set skip 1
                end
                continue
        end
        if contains -- $token (__panorama_subs "$path")
            set -a path $token
            set npos 0
        else
            set npos (math $npos + 1)
        end
    end
    test "$path" = "$argv[1]"; or return 1
    test (count $argv) -lt 2; or test "$npos" = "$argv[2]"
end

complete -c panorama -f

# panorama
complete -c panorama -n '__panorama_at "" 0' -a run -d 'Extract, upload and catalog under the lock: what cron calls'
complete -c panorama -n '__panorama_at "" 0' -a extract -d 'Extract the configured tables (MySQL, and course structures from MongoDB) into the spool as CSV'
complete -c panorama -n '__panorama_at "" 0' -a upload -d 'Send every complete spool file to the datalake, then clear it from the spool'
complete -c panorama -n '__panorama_at "" 0' -a catalog -d 'Create or update the Glue tables and Athena views, register new partitions, or print their DDL'
complete -c panorama -n '__panorama_at "" 0' -a log-ship -d 'Ship the tracking logs to the datalake in gzip batches, checkpointing after each upload'
complete -c panorama -n '__panorama_at "" 0' -a schema -d 'Read table schemas from MySQL'
complete -c panorama -n '__panorama_at "" 0' -a status -d 'Last run per table (rows, bytes, duration, watermark, errors) and what waits'
complete -c panorama -n '__panorama_at "" 0' -a verify -d 'Compare MySQL\'s rows per table and partition with the datalake\'s objects; --repair makes them agree'
complete -c panorama -n '__panorama_at "" 0' -a doctor -d 'Test every connection and permission the jobs need, and say how to fix what fails'
complete -c panorama -n '__panorama_at "" 0' -a crontab -d 'Print (or install to /etc/cron.d) the cron lines for run, log-ship and verify'
complete -c panorama -n '__panorama_at "" 0' -a iam-policy -d 'Print the least-privilege IAM policy JSON for this config'
complete -c panorama -n '__panorama_at "" 0' -a init -d 'Write a starter config; --from-tutor fills it from a Tutor config.yml'
complete -c panorama -n '__panorama_at "" 0' -a k8s -d 'Print the Kubernetes manifests (CronJobs for run and verify, DaemonSet for log-ship) for this config'
complete -c panorama -n '__panorama_at "" 0' -a completions -d 'Print the bash, zsh or fish completion script'
complete -c panorama -n '__panorama_at ""' -l config -r -F -d 'configuration file (default: $PANORAMA_CONFIG, ./panorama.toml, /etc/panorama/panorama.toml)'
complete -c panorama -n '__panorama_at ""' -l log-level -x -a 'debug info warn error' -d 'debug, info, warn or error'
complete -c panorama -n '__panorama_at ""' -l json -d 'one JSON object per log line on stderr (default when stderr is not a TTY)'
complete -c panorama -n '__panorama_at ""' -l version -d 'print the version'
complete -c panorama -n '__panorama_at ""' -s h -l help -d 'show the help'

# panorama run
complete -c panorama -n '__panorama_at "run"' -l config -r -F -d 'configuration file (default: $PANORAMA_CONFIG, ./panorama.toml, /etc/panorama/panorama.toml)'
complete -c panorama -n '__panorama_at "run"' -l log-level -x -a 'debug info warn error' -d 'debug, info, warn or error'
complete -c panorama -n '__panorama_at "run"' -l json -d 'one JSON object per log line on stderr (default when stderr is not a TTY)'
complete -c panorama -n '__panorama_at "run"' -l tables -x -d 'only these tables (comma-separated)'
complete -c panorama -n '__panorama_at "run"' -l full -d 'extract every partition, ignoring watermarks'
complete -c panorama -n '__panorama_at "run"' -l dry-run -d 'do every read, print what would be written, write nothing'
complete -c panorama -n '__panorama_at "run"' -s h -l help -d 'show the help'

# panorama extract
complete -c panorama -n '__panorama_at "extract"' -l config -r -F -d 'configuration file (default: $PANORAMA_CONFIG, ./panorama.toml, /etc/panorama/panorama.toml)'
complete -c panorama -n '__panorama_at "extract"' -l log-level -x -a 'debug info warn error' -d 'debug, info, warn or error'
complete -c panorama -n '__panorama_at "extract"' -l json -d 'one JSON object per log line on stderr (default when stderr is not a TTY)'
complete -c panorama -n '__panorama_at "extract"' -l tables -x -d 'only these tables (comma-separated)'
complete -c panorama -n '__panorama_at "extract"' -l full -d 'extract every partition, ignoring watermarks'
complete -c panorama -n '__panorama_at "extract"' -l dry-run -d 'do every read, print what would be written, write nothing'
complete -c panorama -n '__panorama_at "extract"' -s h -l help -d 'show the help'

# panorama upload
complete -c panorama -n '__panorama_at "upload"' -l config -r -F -d 'configuration file (default: $PANORAMA_CONFIG, ./panorama.toml, /etc/panorama/panorama.toml)'
complete -c panorama -n '__panorama_at "upload"' -l log-level -x -a 'debug info warn error' -d 'debug, info, warn or error'
complete -c panorama -n '__panorama_at "upload"' -l json -d 'one JSON object per log line on stderr (default when stderr is not a TTY)'
complete -c panorama -n '__panorama_at "upload"' -l dry-run -d 'do every read, print what would be written, write nothing'
complete -c panorama -n '__panorama_at "upload"' -s h -l help -d 'show the help'

# panorama catalog
complete -c panorama -n '__panorama_at "catalog"' -l config -r -F -d 'configuration file (default: $PANORAMA_CONFIG, ./panorama.toml, /etc/panorama/panorama.toml)'
complete -c panorama -n '__panorama_at "catalog"' -l log-level -x -a 'debug info warn error' -d 'debug, info, warn or error'
complete -c panorama -n '__panorama_at "catalog"' -l json -d 'one JSON object per log line on stderr (default when stderr is not a TTY)'
complete -c panorama -n '__panorama_at "catalog"' -l tables -x -d 'only these tables (comma-separated)'
complete -c panorama -n '__panorama_at "catalog"' -l create -d 'create the raw tables, or update them when columns were appended'
complete -c panorama -n '__panorama_at "catalog"' -l views -d 'create or replace the typed views (Athena)'
complete -c panorama -n '__panorama_at "catalog"' -l partitions -d 'register the partitions not registered yet'
complete -c panorama -n '__panorama_at "catalog"' -l drop -d 'drop the tables and views (the data stays); needs --yes'
complete -c panorama -n '__panorama_at "catalog"' -l yes -d 'confirm --drop'
complete -c panorama -n '__panorama_at "catalog"' -l print-ddl -d 'print the equivalent Athena DDL instead of calling AWS'
complete -c panorama -n '__panorama_at "catalog"' -l dry-run -d 'do every read, print what would be written, write nothing'
complete -c panorama -n '__panorama_at "catalog"' -s h -l help -d 'show the help'

# panorama log-ship
complete -c panorama -n '__panorama_at "log-ship"' -l config -r -F -d 'configuration file (default: $PANORAMA_CONFIG, ./panorama.toml, /etc/panorama/panorama.toml)'
complete -c panorama -n '__panorama_at "log-ship"' -l log-level -x -a 'debug info warn error' -d 'debug, info, warn or error'
complete -c panorama -n '__panorama_at "log-ship"' -l json -d 'one JSON object per log line on stderr (default when stderr is not a TTY)'
complete -c panorama -n '__panorama_at "log-ship"' -l dry-run -d 'do every read, print what would be written, write nothing'
complete -c panorama -n '__panorama_at "log-ship"' -l once -d 'read every file to its end, upload, exit (cron; the default)'
complete -c panorama -n '__panorama_at "log-ship"' -l follow -d 'keep tailing (a service); SIGTERM or SIGINT uploads what is buffered, then exits'
complete -c panorama -n '__panorama_at "log-ship"' -l backfill -d 'also ship the rotated files older than the last run (history another shipper sent; when switching from Fluent Bit)'
complete -c panorama -n '__panorama_at "log-ship"' -s h -l help -d 'show the help'

# panorama schema
complete -c panorama -n '__panorama_at "schema" 0' -a pull -d 'Print the [[tables]] field lists and MySQL types from information_schema'
complete -c panorama -n '__panorama_at "schema"' -l config -r -F -d 'configuration file (default: $PANORAMA_CONFIG, ./panorama.toml, /etc/panorama/panorama.toml)'
complete -c panorama -n '__panorama_at "schema"' -l log-level -x -a 'debug info warn error' -d 'debug, info, warn or error'
complete -c panorama -n '__panorama_at "schema"' -l json -d 'one JSON object per log line on stderr (default when stderr is not a TTY)'
complete -c panorama -n '__panorama_at "schema"' -s h -l help -d 'show the help'

# panorama schema pull
complete -c panorama -n '__panorama_at "schema pull"' -l config -r -F -d 'configuration file (default: $PANORAMA_CONFIG, ./panorama.toml, /etc/panorama/panorama.toml)'
complete -c panorama -n '__panorama_at "schema pull"' -l log-level -x -a 'debug info warn error' -d 'debug, info, warn or error'
complete -c panorama -n '__panorama_at "schema pull"' -l json -d 'one JSON object per log line on stderr (default when stderr is not a TTY)'
complete -c panorama -n '__panorama_at "schema pull"' -l tables -x -d 'these tables (comma-separated; default: the configured ones)'
complete -c panorama -n '__panorama_at "schema pull"' -l write -r -F -d 'write the TOML to this file instead of printing it (not when a table fails; an existing file needs --force)'
complete -c panorama -n '__panorama_at "schema pull"' -l force -d 'with --write: overwrite the file if it exists'
complete -c panorama -n '__panorama_at "schema pull"' -s h -l help -d 'show the help'

# panorama status
complete -c panorama -n '__panorama_at "status"' -l config -r -F -d 'configuration file (default: $PANORAMA_CONFIG, ./panorama.toml, /etc/panorama/panorama.toml)'
complete -c panorama -n '__panorama_at "status"' -l log-level -x -a 'debug info warn error' -d 'debug, info, warn or error'
complete -c panorama -n '__panorama_at "status"' -l json -d 'print the status as one JSON document on stdout (logs stay on stderr)'
complete -c panorama -n '__panorama_at "status"' -l wide -d 'every column, errors in full (the default fits 120 columns)'
complete -c panorama -n '__panorama_at "status"' -s h -l help -d 'show the help'

# panorama verify
complete -c panorama -n '__panorama_at "verify"' -l config -r -F -d 'configuration file (default: $PANORAMA_CONFIG, ./panorama.toml, /etc/panorama/panorama.toml)'
complete -c panorama -n '__panorama_at "verify"' -l log-level -x -a 'debug info warn error' -d 'debug, info, warn or error'
complete -c panorama -n '__panorama_at "verify"' -l json -d 'print the report as one JSON document on stdout (logs stay on stderr)'
complete -c panorama -n '__panorama_at "verify"' -l tables -x -d 'only these tables (comma-separated)'
complete -c panorama -n '__panorama_at "verify"' -l repair -d 're-extract and store what differs, delete what is stale, then verify again'
complete -c panorama -n '__panorama_at "verify"' -s h -l help -d 'show the help'

# panorama doctor
complete -c panorama -n '__panorama_at "doctor"' -l config -r -F -d 'configuration file (default: $PANORAMA_CONFIG, ./panorama.toml, /etc/panorama/panorama.toml)'
complete -c panorama -n '__panorama_at "doctor"' -l log-level -x -a 'debug info warn error' -d 'debug, info, warn or error'
complete -c panorama -n '__panorama_at "doctor"' -l json -d 'print the checks as one JSON array on stdout'
complete -c panorama -n '__panorama_at "doctor"' -s h -l help -d 'show the help'

# panorama crontab
complete -c panorama -n '__panorama_at "crontab"' -l config -r -F -d 'configuration file (default: $PANORAMA_CONFIG, ./panorama.toml, /etc/panorama/panorama.toml)'
complete -c panorama -n '__panorama_at "crontab"' -l log-level -x -a 'debug info warn error' -d 'debug, info, warn or error'
complete -c panorama -n '__panorama_at "crontab"' -l json -d 'one JSON object per log line on stderr (default when stderr is not a TTY)'
complete -c panorama -n '__panorama_at "crontab"' -l install -d 'write the lines to /etc/cron.d/panorama (or --file) instead of printing them'
complete -c panorama -n '__panorama_at "crontab"' -l file -r -F -d 'the file --install writes (default /etc/cron.d/panorama)'
complete -c panorama -n '__panorama_at "crontab"' -l binary -r -F -d 'absolute path of the panorama executable the lines call (default: this one)'
complete -c panorama -n '__panorama_at "crontab"' -l user -x -d 'the user the jobs run as: the /etc/cron.d form (--install: default root; printed: with --user only)'
complete -c panorama -n '__panorama_at "crontab"' -s h -l help -d 'show the help'

# panorama iam-policy
complete -c panorama -n '__panorama_at "iam-policy"' -l config -r -F -d 'configuration file (default: $PANORAMA_CONFIG, ./panorama.toml, /etc/panorama/panorama.toml)'
complete -c panorama -n '__panorama_at "iam-policy"' -l log-level -x -a 'debug info warn error' -d 'debug, info, warn or error'
complete -c panorama -n '__panorama_at "iam-policy"' -l json -d 'one JSON object per log line on stderr (default when stderr is not a TTY)'
complete -c panorama -n '__panorama_at "iam-policy"' -s h -l help -d 'show the help'

# panorama init
complete -c panorama -n '__panorama_at "init"' -l config -r -F -d 'configuration file (default: $PANORAMA_CONFIG, ./panorama.toml, /etc/panorama/panorama.toml)'
complete -c panorama -n '__panorama_at "init"' -l log-level -x -a 'debug info warn error' -d 'debug, info, warn or error'
complete -c panorama -n '__panorama_at "init"' -l json -d 'one JSON object per log line on stderr (default when stderr is not a TTY)'
complete -c panorama -n '__panorama_at "init"' -l from-tutor -r -F -d 'fill the values from this Tutor config.yml (in the directory `tutor config printroot` prints)'
complete -c panorama -n '__panorama_at "init"' -l output -r -F -d 'the file to write (default ./panorama.toml)'
complete -c panorama -n '__panorama_at "init"' -l force -d 'overwrite the output file if it exists'
complete -c panorama -n '__panorama_at "init"' -s h -l help -d 'show the help'

# panorama k8s
complete -c panorama -n '__panorama_at "k8s"' -l config -r -F -d 'configuration file (default: $PANORAMA_CONFIG, ./panorama.toml, /etc/panorama/panorama.toml)'
complete -c panorama -n '__panorama_at "k8s"' -l log-level -x -a 'debug info warn error' -d 'debug, info, warn or error'
complete -c panorama -n '__panorama_at "k8s"' -l json -d 'one JSON object per log line on stderr (default when stderr is not a TTY)'
complete -c panorama -n '__panorama_at "k8s"' -l namespace -x -d 'the namespace of the Open edX pods (default openedx)'
complete -c panorama -n '__panorama_at "k8s"' -l image -x -d 'the panorama image (default panorama:0.1.0, as scripts/build-image.sh tags it)'
complete -c panorama -n '__panorama_at "k8s"' -s h -l help -d 'show the help'

# panorama completions
complete -c panorama -n '__panorama_at "completions"' -l config -r -F -d 'configuration file (default: $PANORAMA_CONFIG, ./panorama.toml, /etc/panorama/panorama.toml)'
complete -c panorama -n '__panorama_at "completions"' -l log-level -x -a 'debug info warn error' -d 'debug, info, warn or error'
complete -c panorama -n '__panorama_at "completions"' -l json -d 'one JSON object per log line on stderr (default when stderr is not a TTY)'
complete -c panorama -n '__panorama_at "completions"' -s h -l help -d 'show the help'
complete -c panorama -n '__panorama_at "completions" 0' -a 'bash zsh fish' -d 'the shell: bash, zsh or fish'
