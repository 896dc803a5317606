import { afterAll, describe, expect, test } from "bun:test";
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { cleanEnv, runPanorama } from "../support/cli.ts";

const GOLDEN = join(import.meta.dir, "..", "golden");
const work = mkdtempSync(join(tmpdir(), "panorama-setup-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

let count = 0;
/** A config file in its own directory, with state_dir beside it. */
function writeConfig(text: string): { dir: string; file: string; stateDir: string } {
  const dir = join(work, `case-${++count}`);
  const stateDir = join(dir, "state");
  mkdirSync(dir);
  const file = join(dir, "panorama.toml");
  writeFileSync(file, `state_dir = "${stateDir}"\n${text}`);
  return { dir, file, stateDir };
}

describe("panorama iam-policy", () => {
  test("prints the golden policy as JSON", async () => {
    const { file } = writeConfig(readFileSync(join(GOLDEN, "iam-policy", "single-bucket.toml"), "utf8"));
    const result = await runPanorama(["iam-policy", "--config", file], { env: cleanEnv() });
    expect(result.code).toBe(0);
    const golden = readFileSync(join(GOLDEN, "iam-policy", "single-bucket.json"), "utf8");
    expect(JSON.parse(result.stdout)).toEqual(JSON.parse(golden));
    expect(result.stdout).toBe(golden);
  });

  test("without account_id: exit 2 naming datalake.account_id and the file", async () => {
    const { file } = writeConfig(
      `mode = "CUSTOM"\nlms_host = "lms.example.com"\n[datalake]\nbucket = "acme-panorama"\n`,
    );
    const result = await runPanorama(["iam-policy", "--config", file], { env: cleanEnv() });
    expect(result.code).toBe(2);
    expect(result.stdout).toBe("");
    expect(result.stderr).toContain(`${file}: datalake.account_id`);
  });

  test("DEMO: nothing on stdout, exit 0", async () => {
    const { file } = writeConfig(`mode = "DEMO"\n`);
    const result = await runPanorama(["iam-policy", "--config", file], { env: cleanEnv() });
    expect(result.code).toBe(0);
    expect(result.stdout).toBe("");
    expect(result.stderr).toContain("DEMO mode needs no AWS access");
  });
});

describe("panorama crontab", () => {
  const config = `mode = "CUSTOM"\nlms_host = "lms.example.com"\n[datalake]\nbucket = "acme-panorama"\n`;

  test("--install --file writes that file atomically, with the user field, mode 0644, and nothing elsewhere", async () => {
    const { dir, file, stateDir } = writeConfig(config);
    const cronDir = join(dir, "cron.d");
    mkdirSync(cronDir);
    const target = join(cronDir, "panorama");
    const result = await runPanorama(
      ["crontab", "--config", file, "--install", "--file", target, "--binary", "/usr/local/bin/panorama"],
      { env: cleanEnv() },
    );
    expect(result.code).toBe(0);
    expect(result.stdout).toBe("");
    expect(result.stderr).toContain(`wrote ${target}`);
    const text = readFileSync(target, "utf8");
    expect(text).toContain(
      `\n55 * * * * root (umask 077 && mkdir -p ${stateDir}/logs) && /usr/local/bin/panorama --config ${file} --json run >> ${stateDir}/logs/panorama-run.log 2>&1\n`,
    );
    expect(text).toContain(
      `\n*/5 * * * * root (umask 077 && mkdir -p ${stateDir}/logs) && /usr/local/bin/panorama --config ${file} --json log-ship --once >> ${stateDir}/logs/panorama-log-ship.log 2>&1\n`,
    );
    expect(statSync(target).mode & 0o777).toBe(0o644);
    expect(readdirSync(cronDir)).toEqual(["panorama"]);
    // Not even the log directory: the lines create it, as root must be allowed to.
    expect(existsSync(stateDir)).toBe(false);
    expect(result.stderr).toContain(
      `the jobs create ${stateDir}/logs for their logs (root must be allowed to)`,
    );
  });

  test("a file outside /etc/cron.d may have a dot in its name: no warning about cron.d's names", async () => {
    const { dir, file } = writeConfig(config);
    const target = join(dir, "panorama.cron");
    const result = await runPanorama(["crontab", "--config", file, "--install", "--file", target], {
      env: cleanEnv(),
    });
    expect(result.code).toBe(0);
    expect(result.stderr).toContain(`wrote ${target}`);
    expect(result.stderr).not.toContain("cron may ignore");
  });

  test("--user goes into the user field", async () => {
    const { dir, file } = writeConfig(config);
    const target = join(dir, "panorama-cron");
    const result = await runPanorama(
      [
        "crontab",
        "--config",
        file,
        "--install",
        "--file",
        target,
        "--binary",
        "/usr/local/bin/panorama",
        "--user",
        "www-data",
      ],
      { env: cleanEnv() },
    );
    expect(result.code).toBe(0);
    expect(readFileSync(target, "utf8")).toContain("\n55 * * * * www-data (umask 077 && mkdir -p ");
  });

  test("--user naming no user of this host: --install refuses (exit 2, nothing written), printing warns", async () => {
    const { dir, file } = writeConfig(config);
    const target = join(dir, "panorama-cron");
    const args = [
      "crontab",
      "--config",
      file,
      "--binary",
      "/usr/local/bin/panorama",
      "--user",
      "no-such-user-zq",
    ];
    const refused = await runPanorama([...args, "--install", "--file", target], { env: cleanEnv() });
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain(
      "--user no-such-user-zq: no such user on this host: cron would skip every line, and the jobs would never run",
    );
    expect(existsSync(target)).toBe(false);
    const printed = await runPanorama(args, { env: cleanEnv() });
    expect(printed.code).toBe(0);
    expect(printed.stdout).toContain(" no-such-user-zq (umask 077");
    expect(printed.stderr).toContain(
      "--user no-such-user-zq: no such user on this host: the lines run only where it exists",
    );
  });

  test("--install for a user who cannot read the config file: a warning with the fix", async () => {
    const { dir, file } = writeConfig(config);
    chmodSync(file, 0o600);
    const target = join(dir, "panorama-cron");
    const args = [
      "crontab",
      "--config",
      file,
      "--binary",
      "/usr/local/bin/panorama",
      "--install",
      "--file",
      target,
    ];
    const result = await runPanorama([...args, "--user", "www-data"], { env: cleanEnv() });
    expect(result.code).toBe(0);
    expect(result.stderr).toContain(
      `the jobs run as www-data, who cannot read ${file}: every job would stop there; run: chown www-data ${file}`,
    );
    chmodSync(file, 0o644);
    const readable = await runPanorama([...args, "--user", "www-data"], { env: cleanEnv() });
    expect(readable.stderr).not.toContain("who cannot read");
  });

  // Seen on a host where the jobs first ran as root, then were installed for a service user: the
  // state_dir root's runs left (0700) stopped every job, told only by cron's mail.
  test("--install for a user who cannot write an existing state_dir: a warning with the fix", async () => {
    const { dir, file, stateDir } = writeConfig(config);
    chmodSync(file, 0o644);
    mkdirSync(stateDir, { mode: 0o700 });
    chmodSync(stateDir, 0o700);
    const target = join(dir, "panorama-cron");
    const args = ["crontab", "--config", file, "--binary", "/usr/local/bin/panorama", "--install"];
    const result = await runPanorama([...args, "--file", target, "--user", "www-data"], {
      env: cleanEnv(),
    });
    expect(result.code).toBe(0);
    expect(result.stderr).toContain(
      `the jobs run as www-data, who cannot write state_dir ${stateDir}: every job would stop there; run: chown -R www-data ${stateDir}`,
    );
    chmodSync(stateDir, 0o777);
    const writable = await runPanorama([...args, "--file", target, "--user", "www-data"], {
      env: cleanEnv(),
    });
    expect(writable.code).toBe(0);
    expect(writable.stderr).not.toContain("cannot write state_dir");
  });

  test("without --install: stdout, no user field, and it says which form it is", async () => {
    const { file, stateDir } = writeConfig(config);
    const result = await runPanorama(
      ["crontab", "--config", file, "--binary", "/opt/panorama/bin/panorama"],
      {
        env: cleanEnv(),
      },
    );
    expect(result.code).toBe(0);
    expect(result.stdout).toContain(
      `\n55 * * * * (umask 077 && mkdir -p ${stateDir}/logs) && /opt/panorama/bin/panorama --config ${file} --json run >> ${stateDir}/logs/panorama-run.log 2>&1\n`,
    );
    expect(result.stdout).toContain("# User crontab form (`crontab -e`): no user field");
  });

  test("printed with --user: exactly the lines --install writes", async () => {
    const { dir, file } = writeConfig(config);
    const args = ["crontab", "--config", file, "--binary", "/usr/local/bin/panorama", "--user", "root"];
    const printed = await runPanorama(args, { env: cleanEnv() });
    expect(printed.code).toBe(0);
    expect(printed.stdout).toContain("# /etc/cron.d form");
    const target = join(dir, "panorama-cron");
    expect((await runPanorama([...args, "--install", "--file", target], { env: cleanEnv() })).code).toBe(0);
    expect(readFileSync(target, "utf8")).toBe(printed.stdout);
  });

  test("each line runs as printed where state_dir/logs does not exist: it makes the directory, private, and the log", async () => {
    // state_dir with a space and a quote: the line's quoting is tried too.
    const dir = join(work, `case-${++count}`);
    const stateDir = join(dir, "state dir's");
    mkdirSync(dir);
    const file = join(dir, "panorama.toml");
    writeFileSync(file, `state_dir = "${stateDir}"\n${config}`);
    // A stand-in for panorama: it says what it was given, and the line sends that to the log.
    const standIn = join(dir, "panorama-stand-in");
    writeFileSync(standIn, '#!/bin/sh\necho "stand-in: $*"\n', { mode: 0o755 });
    const target = join(dir, "panorama-cron");
    const args = ["crontab", "--config", file, "--binary", standIn];
    const printed = await runPanorama(args, { env: cleanEnv() });
    const installed = await runPanorama([...args, "--install", "--file", target], { env: cleanEnv() });
    expect([printed.code, installed.code]).toEqual([0, 0]);
    // The user crontab form (5 schedule fields) and the /etc/cron.d form (and its user field).
    const forms: [string, number][] = [
      [printed.stdout, 5],
      [readFileSync(target, "utf8"), 6],
    ];
    for (const [text, fields] of forms) {
      const jobs = text.split("\n").filter((l) => /^[0-9*]/.test(l));
      expect(jobs.length).toBe(3);
      for (const job of jobs) {
        rmSync(stateDir, { recursive: true, force: true });
        // What cron hands /bin/sh: the line after its leading fields (cron's \% is not used here).
        const command = job.split(" ").slice(fields).join(" ");
        expect(command).not.toContain("%");
        const sh = Bun.spawnSync(["/bin/sh", "-c", command], { env: { PATH: "/usr/bin:/bin" } });
        expect({ code: sh.exitCode, stderr: sh.stderr.toString() }).toEqual({ code: 0, stderr: "" });
        const words = / --json (.*) >> /.exec(job)![1]!;
        const log = `panorama-${words.split(" ")[0]}.log`;
        expect(readFileSync(join(stateDir, "logs", log), "utf8")).toBe(
          `stand-in: --config ${file} --json ${words}\n`,
        );
        expect(statSync(join(stateDir, "logs")).mode & 0o777).toBe(0o700);
        expect(statSync(stateDir).mode & 0o777).toBe(0o700);
      }
    }
  });

  test("a relative --binary is a usage error", async () => {
    const { file } = writeConfig(config);
    const result = await runPanorama(["crontab", "--config", file, "--binary", "bin/panorama"], {
      env: cleanEnv(),
    });
    expect(result.code).toBe(2);
    expect(result.stdout).toBe("");
    expect(result.stderr).toContain("--binary");
  });
});
