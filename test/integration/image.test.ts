// The container image of scripts/build-image.sh, built with Debian's buildah into a storage of its
// own (removed afterwards): its configuration (non-root user, entrypoint, labels) and its files
// (the binary, the C library files it links, CA certificates, passwd), then, where this machine
// can run containers (Debian's podman, rootful, vfs), `panorama --version` and `doctor` against
// the test MariaDB inside it. Where it cannot, the test says so in its output and why.
// About 10 s: the binary build (~3 s), the image (~7 s), two container runs (~1 s each).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import {
  chmodSync,
  chownSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pkg from "../../package.json" with { type: "json" };
import { ROOT } from "../support/cli.ts";
import { skipWithoutTestEnv, testEnv } from "../support/env.ts";
import { testConnection, writeTestConfig } from "../support/mysql.ts";

const UID = 10001;
const TAG = `panorama:${pkg.version}`;
const hasBuildah = Bun.which("buildah") !== null;
if (!hasBuildah) {
  console.warn("skipping the image test: buildah is missing (bash scripts/apt-install.sh buildah podman)");
}
const skipDoctor = skipWithoutTestEnv();

let dir = "";
let runRoot = "";
let storage: string[] = [];

function run(command: string[], options: { cwd?: string } = {}) {
  const child = Bun.spawnSync(command, { cwd: options.cwd ?? ROOT, stdout: "pipe", stderr: "pipe" });
  return { code: child.exitCode, stdout: child.stdout.toString(), stderr: child.stderr.toString() };
}

function ulimit(flag: string): string {
  return run(["sh", "-c", `ulimit ${flag}`]).stdout.trim();
}

/**
 * podman run on this machine. The runtime and limits a VM without cgroup v2 needs: runc (crun
 * refuses hybrid cgroups), and the current rlimits (podman's defaults are higher than a process
 * without CAP_SYS_RESOURCE may set).
 */
function podman(args: string[]) {
  const runtime = Bun.which("runc") ? ["--runtime", "runc"] : [];
  const limits = ["--ulimit", `nofile=${ulimit("-n")}:${ulimit("-Hn")}`, "--ulimit", "nproc=4096:4096"];
  return run(["podman", ...storage, "run", ...runtime, "--rm", ...limits, ...args]);
}

/** Whether containers run here, and if not the runtime's reason. */
/** The binary the image is built from. */
const binaryPath = () => join(dir, "panorama");

let canRun: { ok: true } | { ok: false; reason: string } = { ok: false, reason: "not tried" };
/** Whether buildah itself works here (a container from scratch, mounted): else nothing is built. */
let canBuild: { ok: true } | { ok: false; reason: string } = { ok: false, reason: "not tried" };

/** A test that needs the image: said and skipped where buildah cannot work on this machine. */
function withImage(check: () => void): () => void {
  return () => {
    if (!canBuild.ok) {
      console.info(`not run: buildah cannot work on this machine (${canBuild.reason})`);
      return;
    }
    check();
  };
}

describe.skipIf(!hasBuildah)("the container image", () => {
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "panorama-image-"));
    // podman refuses a runroot of over 50 characters, which the test run's TMPDIR can exceed.
    runRoot = mkdtempSync("/tmp/pz-run-");
    storage = ["--root", join(dir, "root"), "--runroot", runRoot, "--storage-driver", "vfs"];
    // A machine (a container without privileges, say) may not let buildah make or mount a
    // container at all: then the test says so rather than fail on what is not the image's fault.
    const probe = run(["buildah", ...storage, "from", "scratch"]);
    const mounted = probe.code === 0 ? run(["buildah", ...storage, "mount", probe.stdout.trim()]) : probe;
    if (probe.code === 0) run(["buildah", ...storage, "rm", probe.stdout.trim()]);
    if (mounted.code !== 0) {
      canBuild = { ok: false, reason: mounted.stderr.trim().split("\n").at(-1) ?? "" };
      console.info(`image test: buildah cannot work on this machine (${canBuild.reason}); nothing was built`);
      canRun = { ok: false, reason: "no image was built" };
      return;
    }
    canBuild = { ok: true };
    // The binary of this tree (built here: another test run may be using dist/), then the image.
    const build = run(["bash", "scripts/build.sh", "--out", binaryPath()]);
    if (build.code !== 0) throw new Error(`scripts/build.sh failed: ${build.stderr}`);
    const image = run(["bash", "scripts/build-image.sh", "--root", dir, "--binary", binaryPath()]);
    if (image.code !== 0) throw new Error(`scripts/build-image.sh failed: ${image.stderr}`);
    expect(image.stdout.trim()).toBe(TAG);
    if (!Bun.which("podman")) {
      canRun = { ok: false, reason: "podman is missing" };
    } else {
      const probe = podman(["--network=none", TAG, "--version"]);
      canRun =
        probe.code === 0 ? { ok: true } : { ok: false, reason: probe.stderr.trim().split("\n").at(-1) ?? "" };
    }
    console.info(
      canRun.ok
        ? "image test: containers run on this machine (podman, runc, vfs storage)"
        : `image test: containers cannot run on this machine (${canRun.reason}); the image was built and checked without running it`,
    );
  }, 60_000);

  afterAll(() => {
    if (dir) {
      // vfs layers hold read-only directories: buildah removes what it made, then the rest goes.
      run(["buildah", ...storage, "rmi", "--all", "--force"]);
      rmSync(dir, { recursive: true, force: true });
    }
    if (runRoot) rmSync(runRoot, { recursive: true, force: true });
  });

  test(
    "its configuration: non-root user, the binary as entrypoint, version label, tagged with the version",
    withImage(() => {
      const inspect = run(["buildah", ...storage, "inspect", "--type", "image", TAG]);
      expect(inspect.code).toBe(0);
      const config = JSON.parse(inspect.stdout).OCIv1.config;
      expect(config.User).toBe(`${UID}:${UID}`);
      expect(config.Entrypoint).toEqual(["/bin/panorama"]);
      expect(config.WorkingDir).toBe("/var/lib/panorama");
      expect(config.Labels["org.opencontainers.image.version"]).toBe(pkg.version);
      expect(config.Env).toContain("PANORAMA_CONFIG=/etc/panorama/panorama.toml");
    }),
  );

  test(
    "its files: the binary, the loader and libraries it links, CA certificates, the user; nothing else",
    withImage(() => {
      const container = run(["buildah", ...storage, "from", TAG]).stdout.trim();
      expect(container).not.toBe("");
      try {
        const mount = run(["buildah", ...storage, "mount", container]).stdout.trim();
        const binary = join(mount, "bin", "panorama");
        expect(readFileSync(binary).equals(readFileSync(binaryPath()))).toBe(true);
        expect(statSync(binary).mode & 0o777).toBe(0o755);
        const linked = run(["ldd", binaryPath()])
          .stdout.split("\n")
          .map((l) => /(?:=> )?(\/\S+) \(/.exec(l)?.[1])
          .filter((p): p is string => p !== undefined);
        expect(linked.length).toBeGreaterThan(1);
        for (const lib of linked) expect(existsSync(join(mount, lib))).toBe(true);
        expect(readFileSync(join(mount, "etc/ssl/certs/ca-certificates.crt"), "utf8")).toContain(
          "BEGIN CERTIFICATE",
        );
        expect(readFileSync(join(mount, "etc/passwd"), "utf8")).toContain(`panorama:x:${UID}:${UID}:`);
        expect(statSync(join(mount, "var/lib/panorama")).uid).toBe(UID);
        expect(statSync(join(mount, "tmp")).mode & 0o1777).toBe(0o1777);
        // FROM scratch: no shell, no package manager.
        expect(existsSync(join(mount, "bin/sh"))).toBe(false);
        expect(existsSync(join(mount, "usr/bin"))).toBe(false);
      } finally {
        run(["buildah", ...storage, "rm", container]);
      }
    }),
  );

  test("it runs: panorama --version (where containers run here)", () => {
    if (!canRun.ok) {
      console.info(`not run: containers cannot run on this machine (${canRun.reason})`);
      return;
    }
    const version = podman(["--network=none", TAG, "--version"]);
    expect(version.stdout.trim()).toBe(pkg.version);
  });

  test.skipIf(skipDoctor)(
    "it runs: doctor against the test MariaDB (where containers run here)",
    async () => {
      if (!canRun.ok) {
        console.info(`not run: containers cannot run on this machine (${canRun.reason})`);
        return;
      }
      const db = await testConnection(testEnv().mysql.scratchDatabase);
      const setup = writeTestConfig('[extract]\npreset = "none"\n\n[[tables]]\nname = "image_probe"\n', {
        mode: "FREE",
      });
      try {
        await db.query("CREATE TABLE IF NOT EXISTS image_probe (id INT PRIMARY KEY, name VARCHAR(20))");
        mkdirSync(setup.stateDir);
        for (const path of [setup.dir, setup.file, setup.stateDir]) chownSync(path, UID, UID);
        chmodSync(setup.file, 0o600);
        // The host's network (the test MariaDB listens on loopback); the config at the same path.
        const doctor = podman([
          "--network=host",
          "-v",
          `${setup.dir}:${setup.dir}`,
          TAG,
          "--config",
          setup.file,
          "doctor",
        ]);
        const output = doctor.stdout + doctor.stderr;
        expect(output).toContain("✓ MySQL connection");
        expect(output).toContain("✓ state directory");
        expect(doctor.code).toBe(0);
      } finally {
        await db.query("DROP TABLE IF EXISTS image_probe");
        await db.end();
        rmSync(setup.dir, { recursive: true, force: true });
      }
    },
  );
});
