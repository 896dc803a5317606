import { afterAll, describe, expect, test } from "bun:test";
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseConfig } from "../../src/config/load.ts";
import { parseTutorConfig } from "../../src/setup/tutor.ts";
import { CLI, cleanEnv, ROOT, runPanorama } from "../support/cli.ts";

const FIXTURE = join(ROOT, "test", "fixtures", "tutor", "config.yml");
const work = mkdtempSync(join(tmpdir(), "panorama-cli-init-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

// Every secret of the fixture, as Tutor reads it: none may reach stdout or stderr.
const tutor = parseTutorConfig(readFileSync(FIXTURE, "utf8"), FIXTURE);
const SECRETS = [
  "OPENEDX_MYSQL_PASSWORD",
  "MONGODB_PASSWORD",
  "MYSQL_ROOT_PASSWORD",
  "PANORAMA_AWS_SECRET_ACCESS_KEY",
  "OPENEDX_SECRET_KEY",
].map((key) => tutor.values.get(key)?.value as string);

let count = 0;
function caseDir(): string {
  const dir = join(work, `case-${++count}`);
  mkdirSync(dir);
  return dir;
}

function expectNoSecrets(output: string): void {
  for (const secret of SECRETS) {
    expect(secret.length).toBeGreaterThan(8);
    expect(output).not.toContain(secret);
  }
}

describe("panorama init", () => {
  test("writes ./panorama.toml, mode 0600, that loads as DEMO", async () => {
    const dir = caseDir();
    const result = await runPanorama(["init"], { env: cleanEnv(), cwd: dir });
    expect(result.code).toBe(0);
    expect(result.stdout).toBe("");
    const path = join(dir, "panorama.toml");
    expect(result.stderr).toContain(`wrote ${path} (mode 0600)`);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(parseConfig(readFileSync(path, "utf8"), path, {}).config.mode).toBe("DEMO");
  });

  test("--from-tutor: every mapped value in the file, no secret printed", async () => {
    const dir = caseDir();
    const output = join(dir, "etc", "panorama.toml");
    const result = await runPanorama(["init", "--from-tutor", FIXTURE, "--output", output], {
      env: cleanEnv(),
      cwd: dir,
    });
    expect(result.code).toBe(0);
    expect(result.stdout).toBe("");
    expectNoSecrets(result.stderr);
    expect(result.stderr).toContain(`wrote ${output} (mode 0600)`);
    // The keys filled are named, never their values.
    for (const key of ["lms_host", "mysql.password", "mongodb.password", "aws.secret_access_key"]) {
      expect(result.stderr).toContain(key);
    }
    expect(result.stderr).toContain("PANORAMA_FLB_LOG_LEVEL");
    // Tutor's container names are copied, with a warning saying what to set instead.
    const warnings = result.stderr
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line))
      .filter((line) => line.level === "warn")
      .map((line) => line.message);
    const inNetwork = "is Tutor's container name, which resolves only inside Tutor's Docker network: set";
    expect(warnings).toEqual([
      `mysql.host = "mysql" (MYSQL_HOST, line 27): "mysql" ${inNetwork} [mysql] host = "127.0.0.1" and port to the port Tutor publishes it on, or run panorama inside that network`,
      `mongodb.host = "mongodb" (MONGODB_HOST, line 23): "mongodb" ${inNetwork} [mongodb] host = "127.0.0.1" and port to the port Tutor publishes it on, or run panorama inside that network`,
    ]);
    expect(statSync(output).mode & 0o777).toBe(0o600);
    const { config } = parseConfig(readFileSync(output, "utf8"), output, {});
    const value = (key: string) => tutor.values.get(key)?.value;
    expect(config.mode).toBe("CUSTOM");
    expect(config.lms_host).toBe(value("LMS_HOST") as string);
    expect(config.mysql.host).toBe("mysql");
    expect(config.mysql.port).toBe(3306);
    expect(config.mysql.user).toBe(value("OPENEDX_MYSQL_USERNAME") as string);
    expect(config.mysql.password).toBe(value("OPENEDX_MYSQL_PASSWORD") as string);
    expect(config.mysql.database).toBe(value("OPENEDX_MYSQL_DATABASE") as string);
    expect(config.mongodb.host).toBe("mongodb");
    expect(config.mongodb.port).toBe(27017);
    expect(config.mongodb.user).toBe(value("MONGODB_USERNAME") as string);
    expect(config.mongodb.password).toBe(value("MONGODB_PASSWORD") as string);
    expect(config.mongodb.database).toBe(value("MONGODB_DATABASE") as string);
    expect(config.mongodb.use_split_mongo).toBe(true);
    expect(config.datalake.bucket).toBe(value("PANORAMA_BUCKET") as string);
    expect(config.datalake.logs_bucket).toBe(value("PANORAMA_RAW_LOGS_BUCKET") as string);
    expect(config.datalake.base_prefix).toBe(value("PANORAMA_BASE_PREFIX") as string);
    expect(config.datalake.region).toBe(value("PANORAMA_REGION") as string);
    expect(config.datalake.database).toBe(value("PANORAMA_DATALAKE_DATABASE") as string);
    expect(config.datalake.workgroup).toBe(value("PANORAMA_DATALAKE_WORKGROUP") as string);
    expect(config.datalake.account_id).toBe(value("PANORAMA_AWS_ACCOUNT_ID") as string);
    expect(config.aws.access_key_id).toBe(value("PANORAMA_AWS_ACCESS_KEY") as string);
    expect(config.aws.secret_access_key).toBe(value("PANORAMA_AWS_SECRET_ACCESS_KEY") as string);
    expect(config.logs.max_file_size).toBe(50 * 1024 * 1024);
    expect(config.logs.upload_timeout).toBe(10 * 60);
    expect(config.schedule.run).toBe(value("PANORAMA_CRONTAB") as string);
  });

  test("the file it writes is one the other commands load without a permission warning", async () => {
    const dir = caseDir();
    const output = join(dir, "panorama.toml");
    expect((await runPanorama(["init", "--from-tutor", FIXTURE], { env: cleanEnv(), cwd: dir })).code).toBe(
      0,
    );
    const result = await runPanorama(["crontab", "--config", output, "--binary", "/usr/local/bin/panorama"], {
      env: cleanEnv(),
      cwd: dir,
    });
    expect(result.code).toBe(0);
    expect(result.stdout).toContain(
      "25 * * * * (umask 077 && mkdir -p /var/lib/panorama/logs) && /usr/local/bin/panorama --config ",
    );
    expect(result.stderr).not.toContain("readable by group or others");
    expectNoSecrets(result.stdout + result.stderr);
  });

  test("refuses to overwrite without --force: exit 2, file unchanged", async () => {
    const dir = caseDir();
    const path = join(dir, "panorama.toml");
    writeFileSync(path, "# mine\n");
    chmodSync(path, 0o640);
    const result = await runPanorama(["init", "--from-tutor", FIXTURE], { env: cleanEnv(), cwd: dir });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(`${path} exists: use --force to overwrite it`);
    expect(readFileSync(path, "utf8")).toBe("# mine\n");
    expect(statSync(path).mode & 0o777).toBe(0o640);
    expectNoSecrets(result.stdout + result.stderr);
  });

  test("an existing key that is short or readable by others is kept, with a warning and its fix", async () => {
    const dir = caseDir();
    const keyFile = join(dir, "pseudonym.key");
    writeFileSync(keyFile, "short");
    chmodSync(keyFile, 0o644);
    const short = await runPanorama(["init"], { env: cleanEnv(), cwd: dir });
    expect(short.code).toBe(0);
    expect(short.stderr).toContain(
      `kept the existing pseudonym key, but the key file ${keyFile} holds 5 bytes, expected at least 32 random bytes: pseudonyms cannot be switched on with it`,
    );
    expect(short.stderr).toContain(`head -c 32 /dev/urandom > ${keyFile} && chmod 600 ${keyFile}`);
    expect(readFileSync(keyFile, "utf8")).toBe("short");

    writeFileSync(keyFile, Buffer.alloc(32, 9));
    const open = await runPanorama(["init", "--force"], { env: cleanEnv(), cwd: dir });
    expect(open.code).toBe(0);
    expect(open.stderr).toContain(`kept the pseudonym key ${keyFile}`);
    expect(open.stderr).toContain(
      `${keyFile} holds the pseudonym key and is readable by group or others (mode 0644); run: chmod 600 ${keyFile}`,
    );
    expect(statSync(keyFile).mode & 0o777).toBe(0o644);
  });

  test("a key file this user may not read: exit 2 with how to reach it, never the advice to make a new one", async () => {
    // Under /tmp itself: the command may run as nobody, who cannot pass the tests' private directories.
    const dir = mkdtempSync(join("/tmp", "panorama-key-"));
    chmodSync(dir, 0o755);
    try {
      const keyFile = join(dir, "pseudonym.key");
      writeFileSync(keyFile, Buffer.alloc(32, 5), { mode: 0o600 });
      const file = join(dir, "panorama.toml");
      writeFileSync(
        file,
        `mode = "CUSTOM"\nlms_host = "x"\nstate_dir = "${join(dir, "state")}"\n[datalake]\ntarget = "local"\n[privacy]\npseudonymize = true\nkey_file = "pseudonym.key"\n`,
        { mode: 0o644 },
      );
      // root reads every file: the command runs as nobody then; anyone else loses the read bit.
      const asRoot = process.getuid?.() === 0;
      if (!asRoot) chmodSync(keyFile, 0o000);
      const prefix = asRoot ? ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"] : [];
      const run = async (args: string[]) => {
        const child = Bun.spawn([...prefix, process.execPath, CLI, ...args], {
          cwd: dir,
          env: { ...process.env, ...cleanEnv() } as Record<string, string>,
          stdout: "pipe",
          stderr: "pipe",
        });
        const [stderr, code] = await Promise.all([new Response(child.stderr).text(), child.exited]);
        return { code, stderr };
      };
      const status = await run(["--config", file, "status"]);
      expect(status.code).toBe(2);
      expect(status.stderr).toContain(`privacy.key_file: cannot read the key file (EACCES): ${keyFile}`);
      expect(status.stderr).toContain("the key is there, but this user");
      expect(status.stderr).toContain("do not make a new key: that would change every pseudonym");
      expect(status.stderr).not.toContain("head -c 32 /dev/urandom");
      if (!asRoot) chmodSync(keyFile, 0o600);
      expect(readFileSync(keyFile).equals(Buffer.alloc(32, 5))).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("writes a fresh 32-byte pseudonym key (0600) next to the file, says what losing it means, never replaces it", async () => {
    const dir = caseDir();
    const result = await runPanorama(["init"], { env: cleanEnv(), cwd: dir });
    expect(result.code).toBe(0);
    const keyFile = join(dir, "pseudonym.key");
    expect(result.stderr).toContain(`wrote the pseudonym key ${keyFile} (mode 0600)`);
    expect(result.stderr).toContain("losing or changing it changes every pseudonym");
    expect(statSync(keyFile).mode & 0o777).toBe(0o600);
    const key = readFileSync(keyFile);
    expect(key.length).toBe(32);
    // Another directory's key is another key.
    const other = caseDir();
    expect((await runPanorama(["init"], { env: cleanEnv(), cwd: other })).code).toBe(0);
    expect(readFileSync(join(other, "pseudonym.key")).equals(key)).toBe(false);
    // --force rewrites the config, not the key.
    const again = await runPanorama(["init", "--force"], { env: cleanEnv(), cwd: dir });
    expect(again.code).toBe(0);
    expect(again.stderr).toContain(`kept the pseudonym key ${keyFile}`);
    expect(readFileSync(keyFile).equals(key)).toBe(true);
    // The file names it: switching pseudonyms on needs nothing else.
    const path = join(dir, "panorama.toml");
    const text = readFileSync(path, "utf8").replace("# pseudonymize = false", "pseudonymize = true");
    expect(text).toContain('key_file = "pseudonym.key"');
    const config = parseConfig(text, path, {}).config;
    expect(config.privacy.pseudonymize).toBe(true);
    expect(Buffer.from(config.privacy.key!).equals(key)).toBe(true);
  });

  test("--force overwrites, and the new file is mode 0600", async () => {
    const dir = caseDir();
    const path = join(dir, "custom.toml");
    writeFileSync(path, "# mine\n");
    chmodSync(path, 0o644);
    const result = await runPanorama(["init", "--output", "custom.toml", "--force"], {
      env: cleanEnv(),
      cwd: dir,
    });
    expect(result.code).toBe(0);
    expect(readFileSync(path, "utf8")).toContain('mode = "DEMO"');
    expect(statSync(path).mode & 0o777).toBe(0o600);
  });

  test("a missing config.yml: exit 2 naming it, nothing written", async () => {
    const dir = caseDir();
    const missing = join(dir, "nowhere", "config.yml");
    const result = await runPanorama(["init", "--from-tutor", missing], { env: cleanEnv(), cwd: dir });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(`${missing}: cannot read the Tutor configuration (no such file)`);
    expect(() => statSync(join(dir, "panorama.toml"))).toThrow();
  });

  test("a malformed config.yml: exit 2 with the file and line, no secret printed", async () => {
    const dir = caseDir();
    const bad = join(dir, "config.yml");
    const lines = readFileSync(FIXTURE, "utf8").split("\n");
    const at = lines.findIndex((l) => l.startsWith("OPENEDX_MYSQL_PASSWORD:"));
    lines[at] = lines[at]!.replace(/'$/, "");
    writeFileSync(bad, lines.join("\n"));
    const result = await runPanorama(["init", "--from-tutor", bad], { env: cleanEnv(), cwd: dir });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(
      `${bad}:${at + 1}: the value of OPENEDX_MYSQL_PASSWORD is not valid YAML`,
    );
    expectNoSecrets(result.stdout + result.stderr);
    expect(() => statSync(join(dir, "panorama.toml"))).toThrow();
  });

  test("a value panorama cannot use: exit 2 naming the Tutor key and line, not its neighbours' secrets", async () => {
    const dir = caseDir();
    const bad = join(dir, "config.yml");
    const text = readFileSync(FIXTURE, "utf8").replace("MYSQL_PORT: 3306", "MYSQL_PORT: '33o6'");
    writeFileSync(bad, text);
    const line = text.split("\n").findIndex((l) => l.startsWith("MYSQL_PORT:")) + 1;
    const result = await runPanorama(["init", "--from-tutor", bad], { env: cleanEnv(), cwd: dir });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(`${bad}:${line}: MYSQL_PORT: expected an integer for mysql.port`);
    expectNoSecrets(result.stdout + result.stderr);
  });
});
