// A state_dir the commands cannot use fails at their first step, the lock, with a message naming
// state_dir and its fix, and writes nothing; a usable one is cleared at that step of the
// temporary files that writers killed mid-write left (never a live writer's).
import { afterAll, describe, expect, test } from "bun:test";
import {
  chmodSync,
  chownSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir, userInfo } from "node:os";
import { join } from "node:path";
import { cleanEnv, runPanorama } from "../support/cli.ts";

const env = cleanEnv();
const asRoot = process.getuid?.() === 0;
const setpriv = Bun.which("setpriv");
const dirs: string[] = [];
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/**
 * A configuration with `stateDir` (a path under the directory returned) and no table, so that
 * run and extract need no MySQL, and a tracking log of one event for log-ship.
 */
function setup(stateDir: (dir: string) => string): { dir: string; file: string; stateDir: string } {
  const dir = mkdtempSync(join(tmpdir(), "panorama-state-dir-"));
  dirs.push(dir);
  const state = stateDir(dir);
  const file = join(dir, "panorama.toml");
  writeFileSync(join(dir, "tracking.log"), '{"event_type":"x","time":"2024-05-01T00:00:00+00:00"}\n');
  writeFileSync(
    file,
    `mode = "CUSTOM"
lms_host = "lms.example.com"
state_dir = "${state}"

[datalake]
target = "local"
path = "${join(dir, "datalake")}"

[extract]
preset = "none"

[logs]
paths = ["${join(dir, "tracking.log")}"]
`,
  );
  return { dir, file, stateDir: state };
}

/** Every path under `dir` with its content ("" for a directory). */
function tree(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of readdirSync(dir, { recursive: true }) as string[]) {
    const path = join(dir, name);
    try {
      out[name] = readFileSync(path, "utf8");
    } catch {
      out[name] = "";
    }
  }
  return out;
}

/** The messages of --json log lines. */
function messages(stderr: string): string[] {
  return stderr
    .trim()
    .split("\n")
    .filter(Boolean)
    .map((line) => JSON.parse(line).message);
}

const NOT_A_DIRECTORY =
  "hint: a component of state_dir's path is a regular file, not a directory: set state_dir to a directory panorama may create";
/** The user the commands of these tests run as: nobody when the tests run as root (setpriv). */
const user = asRoot ? (userNameOf(65534) ?? "uid 65534") : userInfo().username;
const notWritable = (stateDir: string) =>
  `hint: state_dir must be writable by the user panorama runs as (${user}): give it the whole directory (sudo chown -R ${user} ${stateDir}), or run panorama as its owner`;

function userNameOf(uid: number): string | undefined {
  return readFileSync("/etc/passwd", "utf8").match(new RegExp(`^([^:\\n]+):[^:\\n]*:${uid}:`, "m"))?.[1];
}

describe("a state_dir that cannot be used", () => {
  test("under a regular file: run, extract and log-ship exit 2 naming state_dir, with the fix; nothing written", async () => {
    const cfg = setup((dir) => join(dir, "afile", "state"));
    writeFileSync(join(cfg.dir, "afile"), "");
    const before = tree(cfg.dir);
    const cases: [string[], string][] = [
      [["run"], ""],
      [["extract"], ""],
      [["log-ship", "--once"], ` (mkdir ${join(cfg.stateDir, "logship")})`],
    ];
    for (const [command, call] of cases) {
      const result = await runPanorama(["--config", cfg.file, "--json", ...command], { env });
      expect(messages(result.stderr)).toEqual([
        `cannot use state_dir ${cfg.stateDir}: ENOTDIR: not a directory${call}`,
        NOT_A_DIRECTORY,
      ]);
      expect(result.code).toBe(2);
      expect(result.stdout).toBe("");
    }
    expect(tree(cfg.dir)).toEqual(before);
  });

  // Root writes into a directory whatever its mode: as root, the commands run as nobody instead
  // (setpriv, from util-linux); without setpriv there is no user to be, and the test is skipped.
  test.skipIf(asRoot && !setpriv)(
    "not writable by the user panorama runs as (mode 0500): run and log-ship exit 1 with the chown hint; nothing written",
    async () => {
      const cfg = setup((dir) => join(dir, "state"));
      mkdirSync(cfg.stateDir, { mode: 0o500 });
      chmodSync(cfg.stateDir, 0o500);
      // nobody must reach the configuration and the log: the files hold no secret.
      chmodSync(cfg.dir, 0o755);
      chmodSync(cfg.file, 0o644);
      const cases: [string[], string][] = [
        [["run"], `open ${join(cfg.stateDir, "panorama.lock")}`],
        [["log-ship", "--once"], `mkdir ${join(cfg.stateDir, "logship")}`],
      ];
      for (const [command, call] of cases) {
        const args = ["--config", cfg.file, "--json", ...command];
        const result = await runPanorama(args, { env, ...(asRoot ? { uid: 65534 } : {}) });
        expect(messages(result.stderr)).toEqual([
          `cannot use state_dir ${cfg.stateDir}: EACCES: permission denied (${call})`,
          notWritable(cfg.stateDir),
        ]);
        expect(result.code).toBe(1);
      }
      expect(readdirSync(cfg.stateDir)).toEqual([]);
      expect(existsSync(join(cfg.dir, "datalake"))).toBe(false);
    },
  );

  // Seen on a new host: state_dir = /var/lib/panorama, not made yet, and the jobs run as a service
  // user who may not write /var/lib. "chown it" named a directory that was not there.
  test.skipIf(asRoot && !setpriv)(
    "not there, in a directory the user may not write: run says how to make it for that user; nothing written",
    async () => {
      const cfg = setup((dir) => join(dir, "var lib", "panorama"));
      mkdirSync(join(cfg.dir, "var lib"), { mode: 0o755 });
      chmodSync(join(cfg.dir, "var lib"), 0o755);
      chmodSync(cfg.dir, 0o755);
      chmodSync(cfg.file, 0o644);
      const result = await runPanorama(["--config", cfg.file, "--json", "run"], {
        env,
        ...(asRoot ? { uid: 65534 } : {}),
      });
      expect(messages(result.stderr)).toEqual([
        `cannot use state_dir ${cfg.stateDir}: EACCES: permission denied`,
        `hint: state_dir does not exist and ${user} may not make it: make it for ${user} (sudo install -d -m 0700 -o ${user} '${cfg.stateDir}'), or set state_dir to a directory ${user} may make`,
      ]);
      expect(result.code).toBe(1);
      expect(readdirSync(join(cfg.dir, "var lib"))).toEqual([]);
    },
  );

  // Seen on a host where cron ran as root and the operator then tried the commands as the service
  // user: bare "EACCES: permission denied, open '.../runs.json'", no key named, no fix.
  test.skipIf(asRoot && !setpriv)(
    "not readable by the user (mode 0000): the commands that read it without the lock say so, with the chown hint",
    async () => {
      const cfg = setup((dir) => join(dir, "state"));
      mkdirSync(cfg.stateDir, { mode: 0o000 });
      chmodSync(cfg.stateDir, 0o000);
      chmodSync(cfg.dir, 0o755);
      chmodSync(cfg.file, 0o644);
      try {
        // The call that met it: a file opened, or the spool's directory listed.
        const cases: [string[], string, string][] = [
          [["status"], "open", join(cfg.stateDir, "runs.json")],
          [["upload", "--dry-run"], "scandir", join(cfg.stateDir, "spool")],
          [["log-ship", "--dry-run"], "open", join(cfg.stateDir, "logship", "checkpoints.json")],
          [
            ["catalog", "--print-ddl"],
            "open",
            join(cfg.stateDir, "catalog", "panorama", "openedx_raw_tracking_logs.json"),
          ],
        ];
        for (const [command, call, path] of cases) {
          const args = ["--config", cfg.file, "--json", ...command];
          const result = await runPanorama(args, { env, ...(asRoot ? { uid: 65534 } : {}) });
          expect(messages(result.stderr)).toEqual([
            `cannot use state_dir ${cfg.stateDir}: EACCES: permission denied (${call} ${path})`,
            notWritable(cfg.stateDir),
          ]);
          expect(result.code).toBe(1);
        }
      } finally {
        chmodSync(cfg.stateDir, 0o700);
      }
    },
  );
});

// Seen when an operator tried `sudo panorama run` on a host whose jobs run as a service user:
// root's run replaced state files with root's own (0600), and every job after it failed.
describe("root, in a state_dir another user owns", () => {
  test.skipIf(!asRoot)(
    "run, log-ship, verify and verify --repair refuse, naming the owner and the fix; nothing written",
    async () => {
      const cfg = setup((dir) => join(dir, "state"));
      mkdirSync(join(cfg.stateDir, "logship"), { recursive: true, mode: 0o700 });
      writeFileSync(join(cfg.stateDir, "runs.json"), "{}\n");
      for (const path of [cfg.stateDir, join(cfg.stateDir, "logship"), join(cfg.stateDir, "runs.json")]) {
        chownSync(path, 65534, 65534);
      }
      const owner =
        readFileSync("/etc/passwd", "utf8").match(/^([^:\n]+):[^:\n]*:65534:/m)?.[1] ?? "uid 65534";
      const before = tree(cfg.dir);
      const cases: [string[], string][] = [
        [["run"], "run"],
        [["log-ship", "--once"], "log-ship"],
        [["verify"], "verify"],
        [["verify", "--repair"], "verify --repair"],
      ];
      for (const [command, said] of cases) {
        const result = await runPanorama(["--config", cfg.file, "--json", ...command], { env });
        expect(messages(result.stderr)).toEqual([
          `state_dir ${cfg.stateDir} belongs to ${owner}, and this command runs as root: the files it would write there would be root's, and ${owner}'s scheduled jobs could not replace them`,
          `hint: run it as that user, as the jobs do: sudo -u ${owner.startsWith("uid ") ? "'#65534'" : owner} panorama ... ${said}`,
        ]);
        expect(result.code).toBe(1);
      }
      expect(tree(cfg.dir)).toEqual(before);
      // Its own state_dir is root's to use.
      chownSync(cfg.stateDir, 0, 0);
      chownSync(join(cfg.stateDir, "runs.json"), 0, 0);
      expect((await runPanorama(["--config", cfg.file, "--json", "run"], { env })).code).toBe(0);
    },
  );
});

/** A pid that no process has: spawn one, wait for it to exit. */
function deadPid(): number {
  return Bun.spawnSync(["true"]).pid;
}

describe("temporary files of writers killed mid-write", () => {
  /** A dead writer's temporary file and a live one's (this test's), beside a file not ours. */
  function temps(dir: string, target: string) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const dead = `.${target}.${deadPid()}.k3j9x.tmp`;
    const live = `.${target}.${process.pid}.q1w2e.tmp`;
    writeFileSync(join(dir, dead), "{ half writ");
    writeFileSync(join(dir, live), "{ being writ");
    writeFileSync(join(dir, "notes.tmp"), "an operator's");
    return { dead, live };
  }

  for (const command of ["run", "extract"]) {
    test(`${command} removes a dead writer's from state_dir, keeps a live one's`, async () => {
      const cfg = setup((dir) => join(dir, "state"));
      const { dead, live } = temps(cfg.stateDir, "watermarks.json");
      const result = await runPanorama(["--config", cfg.file, "--json", command], { env });
      expect(result.code).toBe(0);
      const left = readdirSync(cfg.stateDir);
      expect(left).not.toContain(dead);
      expect(left).toContain(live);
      expect(left).toContain("notes.tmp");
    });
  }

  test("log-ship --once removes a dead writer's from state_dir/logship, keeps a live one's", async () => {
    const cfg = setup((dir) => join(dir, "state"));
    const logship = join(cfg.stateDir, "logship");
    const { dead, live } = temps(logship, "checkpoints.json");
    const result = await runPanorama(["--config", cfg.file, "--json", "log-ship", "--once"], { env });
    expect(result.code).toBe(0);
    const left = readdirSync(logship);
    expect(left).not.toContain(dead);
    expect(left).toContain(live);
    expect(left).toContain("notes.tmp");
    // It shipped, and checkpointed with a temporary file of its own, renamed into place.
    expect(left).toContain("checkpoints.json");
  });
});
