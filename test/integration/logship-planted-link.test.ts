// The LMS's user writes the tracking-log directory: a symbolic link it planted there, naming a
// file only root may read, is not followed by log-ship run as root; a link made by root (the
// kubelet's /var/log/containers links) is. Needs root, to give the links their owners.
import { afterAll, expect, test } from "bun:test";
import {
  lchownSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { cleanEnv, runPanorama } from "../support/cli.ts";

const made: string[] = [];
afterAll(() => {
  for (const dir of made) rmSync(dir, { recursive: true, force: true });
});

test.skipIf(process.geteuid?.() !== 0)(
  "a link planted by another user is not followed; root's is",
  async () => {
    const dir = mkdtempSync(join(tmpdir(), "panorama-planted-link-"));
    made.push(dir);
    const logs = join(dir, "logs");
    mkdirSync(logs);
    const secret = join(dir, "root-only.json");
    writeFileSync(secret, '{"event_type":"x","time":"2024-01-01T00:00:00Z","secret":"ROOT-ONLY-7c1"}\n', {
      mode: 0o600,
    });
    const pod = join(dir, "pod.log");
    writeFileSync(pod, '{"event_type":"play","time":"2024-01-01T00:00:00Z","username":"ada"}\n');
    symlinkSync(secret, join(logs, "tracking.log"));
    lchownSync(join(logs, "tracking.log"), 1000, 1000);
    symlinkSync(pod, join(logs, "pod.log"));
    const config = join(dir, "panorama.toml");
    writeFileSync(
      config,
      `mode = "CUSTOM"\nlms_host = "lms.example.com"\nstate_dir = "${dir}/state"\n[datalake]\ntarget = "local"\npath = "${dir}/lake"\n[logs]\npaths = ["${logs}/*.log"]\n`,
      { mode: 0o600 },
    );
    const result = await runPanorama(["--config", config, "log-ship"], { env: cleanEnv() });
    const out = result.stdout + result.stderr;
    expect(out).toContain(
      `the symbolic link ${join(logs, "tracking.log")} (of uid 1000) names a file of uid 0`,
    );
    const lake = join(dir, "lake");
    const objects = (readdirSync(lake, { recursive: true }) as string[])
      .map((name) => join(lake, name))
      .filter((path) => statSync(path).isFile());
    const shipped = objects
      .map((path) => (path.endsWith(".gz") ? Bun.gunzipSync(readFileSync(path)) : readFileSync(path)))
      .map((bytes) => Buffer.from(bytes).toString("latin1"))
      .join("");
    expect(shipped).toContain('"username":"ada"');
    expect(shipped).not.toContain("ROOT-ONLY-7c1");
    expect(out).not.toContain("ROOT-ONLY-7c1");
    expect(result.stdout + result.stderr).toContain("uploaded 1 events");
  },
);
