import {
  accessSync,
  chownSync,
  closeSync,
  constants,
  existsSync,
  fchmodSync,
  fsyncSync,
  mkdirSync,
  openSync,
  renameSync,
  rmSync,
  statSync,
  writeSync,
} from "node:fs";
import { basename, dirname, isAbsolute, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { defineCommand } from "citty";
import { ENV_CREDENTIALS, ENV_OVERRIDES } from "../config/load.ts";
import type { Config } from "../config/types.ts";
import { JobError, messageOf, UsageError } from "../errors.ts";
import { log } from "../log.ts";
import { crontab, logDirectory } from "../setup/crontab.ts";
import { LOGROTATE_FILE, logrotateSnippet } from "../setup/logrotate.ts";
import { PRIVATE_DIR, syncDirectory } from "../state/atomic.ts";
import { currentUser } from "../state/users.ts";
import { globalArgs, prepare } from "./shared.ts";

const CRON_FILE = "/etc/cron.d/panorama";

export default defineCommand({
  meta: {
    name: "crontab",
    description: "Print (or install to /etc/cron.d) the cron lines for run, log-ship and verify",
  },
  args: {
    ...globalArgs,
    install: {
      type: "boolean",
      description: `write the lines to ${CRON_FILE} (or --file) instead of printing them`,
    },
    file: {
      type: "string",
      description: `the file --install writes (default ${CRON_FILE})`,
      valueHint: "FILE",
    },
    binary: {
      type: "string",
      description: "absolute path of the panorama executable the lines call (default: this one)",
      valueHint: "PATH",
    },
    user: {
      type: "string",
      description:
        "the user the jobs run as: the /etc/cron.d form (--install: default root; printed: with --user only)",
      valueHint: "USER",
    },
  },
  async run({ args }) {
    if (!args.install && args.file !== undefined) throw new UsageError("--file needs --install");
    if (args.binary !== undefined && !isAbsolute(args.binary)) {
      throw new UsageError(
        `--binary: expected an absolute path (cron does not start in your directory), got "${args.binary}"`,
      );
    }
    const config = await prepare(args, { strictSchedule: true });
    const account = args.user === undefined ? null : lookUpUser(args.user);
    if (args.user !== undefined && account === null) {
      const problem = `--user ${args.user}: no such user on this host`;
      // cron skips a line whose user it does not know (a log line in syslog, nothing else).
      if (args.install) {
        throw new UsageError(`${problem}: cron would skip every line, and the jobs would never run`);
      }
      log.warn(`${problem}: the lines run only where it exists`);
    }
    if (args.install && account) warnUnreadable(config, args.user!, account);
    const executable = args.binary === undefined ? thisExecutable() : [args.binary];
    if (!isExecutable(executable[0]!)) {
      log.warn(`${executable[0]} is not an executable file here: the jobs fail until it is installed there`);
    }
    warnAboutEnvironment(config.file);
    if (!args.install) {
      // What --install would write when --user is given (the /etc/cron.d form), else the user form.
      process.stdout.write(crontab(config, { executable, user: args.user }));
      return;
    }
    const user = args.user ?? "root";
    const file = args.file ?? CRON_FILE;
    const text = crontab(config, { executable, user });
    const logs = logDirectory(config);
    // DEMO writes its comment too: installing it removes the jobs of an earlier mode.
    if (args.file !== undefined) {
      // Another file is a trial or a layout of the operator's own: nothing is written elsewhere.
      install(file, text);
      log.success(`wrote ${file}`, { mode: config.mode, user });
      if (config.mode !== "DEMO") {
        log.info(
          `with --file nothing else is written: the jobs create ${logs} for their logs (${user} must be allowed to), and nothing rotates them (\`panorama crontab --install\` without --file writes ${LOGROTATE_FILE})`,
        );
      }
      return;
    }
    if (config.mode !== "DEMO") createLogDirectory(logs, user, config.state_dir, account ?? null);
    install(file, text);
    log.success(`wrote ${file}`, { mode: config.mode, user });
    if (config.mode === "DEMO") return;
    if (!existsSync(dirname(LOGROTATE_FILE))) {
      log.warn(
        `${dirname(LOGROTATE_FILE)} does not exist (is logrotate installed?): ${logs} will grow unrotated`,
      );
      return;
    }
    install(LOGROTATE_FILE, logrotateSnippet(config));
    log.success(`wrote ${LOGROTATE_FILE}: the jobs' logs are rotated at 10 MB, 4 kept`);
  },
});

/** The words that start this panorama: a compiled binary alone, or bun and the entry script. */
function thisExecutable(): string[] {
  const compiled = !process.execPath.endsWith("/bun") && Bun.main.startsWith("/$bunfs/");
  if (compiled) return [process.execPath];
  const cli = fileURLToPath(new URL("../cli.ts", import.meta.url));
  log.info(`no --binary: the cron lines run panorama from source (${process.execPath} ${cli})`);
  return [process.execPath, cli];
}

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

export interface Account {
  uid: number;
  gids: number[];
}

/**
 * The user's uid and groups as the system resolves them (`id`: /etc/passwd, LDAP...); null when
 * the system knows no such user, undefined when it cannot be asked.
 */
function lookUpUser(name: string): Account | null | undefined {
  if (!/^[A-Za-z0-9_][A-Za-z0-9_.-]*\$?$/.test(name)) return null;
  let uid: { success: boolean; stdout: Buffer };
  let groups: { success: boolean; stdout: Buffer };
  try {
    uid = Bun.spawnSync(["id", "-u", "--", name], { stdout: "pipe", stderr: "ignore" });
    groups = Bun.spawnSync(["id", "-G", "--", name], { stdout: "pipe", stderr: "ignore" });
  } catch {
    // No `id` here (a bare container image): nothing to tell, nothing refused.
    return undefined;
  }
  if (!uid.success || !groups.success) return null;
  return {
    uid: Number(uid.stdout.toString().trim()),
    gids: groups.stdout.toString().trim().split(/\s+/).map(Number),
  };
}

/** Whether `account` has all the `bits` (of 0o7: read, write, search) on `path` by its mode (root has). */
function allowedTo(path: string, account: Account, bits: number): boolean {
  if (account.uid === 0) return true;
  const stat = statSync(path);
  if (stat.uid === account.uid) return ((stat.mode >> 6) & bits) === bits;
  if (account.gids.includes(stat.gid)) return ((stat.mode >> 3) & bits) === bits;
  return (stat.mode & bits) === bits;
}

/**
 * The jobs run as `user`: the files every job reads first must be readable by that user, and
 * state_dir, when it exists, writable.
 */
function warnUnreadable(config: Config, user: string, account: Account): void {
  const files = [config.file, config.privacy.pseudonymize ? config.privacy.key_file : null];
  for (const file of files) {
    if (file === null) continue;
    try {
      if (allowedTo(file, account, 0o4)) continue;
    } catch {
      continue;
    }
    log.warn(
      `the jobs run as ${user}, who cannot read ${file}: every job would stop there; run: chown ${user} ${file} (it stays mode 0600)`,
    );
  }
  // A state_dir that earlier jobs, run as root, created as root's: the first thing a job writes.
  try {
    if (allowedTo(config.state_dir, account, 0o3)) return;
  } catch {
    return;
  }
  log.warn(
    `the jobs run as ${user}, who cannot write state_dir ${config.state_dir}: every job would stop there; run: chown -R ${user} ${config.state_dir}`,
  );
}

/** cron starts jobs with an almost empty environment: overrides set here will not be there. */
function warnAboutEnvironment(file: string | null): void {
  for (const [name] of [...ENV_OVERRIDES, ...ENV_CREDENTIALS]) {
    if (process.env[name]) {
      log.warn(
        `${name} is set here but cron does not pass it: the jobs read only ${file ?? "the config file"}`,
      );
    }
  }
}

/**
 * The jobs' log directory, made before the lines are installed. Made by root for the jobs of
 * `account`, the directories made (state_dir too, when it was not there) are given to that user:
 * root's, the shell of every job would fail to open its log file, and the job would never start.
 */
export function createLogDirectory(
  dir: string,
  user: string,
  stateDir: string,
  account: Account | null,
): void {
  let given = false;
  try {
    const made = mkdirSync(dir, { recursive: true, mode: PRIVATE_DIR });
    if (made !== undefined && account !== null && process.geteuid?.() === 0 && account.uid !== 0) {
      for (let path = dir; ; path = dirname(path)) {
        chownSync(path, account.uid, account.gids[0] ?? account.uid);
        if (path === made || path === dirname(path)) break;
      }
      given = true;
    }
  } catch (error) {
    throw new JobError(`cannot create the log directory ${dir}: ${messageOf(error)}`);
  }
  if (user !== currentUser() && !given) {
    log.warn(`the jobs run as ${user}: make sure ${user} can write ${stateDir} and ${dir}`);
  }
}

/** Write `text` whole or not at all: temp file in the same directory, fsync, mode 0644, rename. */
function install(path: string, text: string): void {
  const dir = dirname(path);
  if (!existsSync(dir))
    throw new UsageError(`cannot install ${path}: ${dir} does not exist (is cron installed?)`);
  // Debian's cron skips /etc/cron.d files whose name holds anything but letters, digits, _ and -.
  if (resolve(dir) === "/etc/cron.d" && !/^[A-Za-z0-9_-]+$/.test(basename(path))) {
    log.warn(`cron may ignore ${path}: in /etc/cron.d, use a name of letters, digits, _ and - only`);
  }
  // Its leading dot and inner dots make cron skip the temp file if it were ever left behind.
  const temp = join(dir, `.${basename(path)}.${process.pid}.tmp`);
  try {
    const fd = openSync(temp, "w", 0o644);
    try {
      writeSync(fd, text);
      // The umask may have narrowed the mode; cron wants a file others can read but not write.
      fchmodSync(fd, 0o644);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(temp, path);
    syncDirectory(dir);
  } catch (error) {
    rmSync(temp, { force: true });
    throw new JobError(
      `cannot install ${path}: ${messageOf(error)}`,
      "run it as root, or print the lines with `panorama crontab` and add them with `crontab -e`",
    );
  }
}
