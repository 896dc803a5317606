import { describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createLogDirectory } from "../../src/commands/crontab.ts";
import { parseConfig } from "../../src/config/load.ts";
import { MODES } from "../../src/config/types.ts";
import { UsageError } from "../../src/errors.ts";
import { crontab, cronWord } from "../../src/setup/crontab.ts";
import { logrotateSnippet } from "../../src/setup/logrotate.ts";
import { expectGolden } from "../support/golden.ts";

const GOLDEN = join(import.meta.dir, "..", "golden", "crontab");
const FILE = "/etc/panorama/panorama.toml";
const BINARY = ["/usr/local/bin/panorama"];
const BASE = `lms_host = "lms.example.com"\n[datalake]\nbucket = "acme-panorama"\n`;

function configOf(text: string, file = FILE) {
  return parseConfig(text, file, {}).config;
}

describe("golden crontabs", () => {
  for (const mode of MODES) {
    test(mode, async () => {
      const text = crontab(configOf(`mode = "${mode}"\n${BASE}`), { executable: BINARY });
      await expectGolden(join(GOLDEN, `${mode.toLowerCase()}.crontab`), text);
      expect(text.endsWith("\n")).toBe(true);
    });
  }

  test("CUSTOM for /etc/cron.d, with the user field", async () => {
    const text = crontab(configOf(`mode = "CUSTOM"\n${BASE}`), { executable: BINARY, user: "panorama" });
    await expectGolden(join(GOLDEN, "custom-cron.d.crontab"), text);
  });
});

describe("lines", () => {
  test("DEMO schedules nothing: one comment", () => {
    const text = crontab(configOf(`mode = "DEMO"\n`), { executable: BINARY, user: "root" });
    expect(text.split("\n").filter((l) => l !== "" && !l.startsWith("#"))).toEqual([]);
    expect(text).toContain("DEMO mode schedules nothing");
  });

  test("FREE runs but does not ship logs", () => {
    const text = crontab(configOf(`mode = "FREE"\n${BASE}`), { executable: BINARY });
    expect(text).toContain(" run >> ");
    expect(text).not.toMatch(/^[^#].*log-ship/m);
  });

  test("custom schedules", () => {
    const text = crontab(
      configOf(`mode = "SAAS"\n${BASE}[schedule]\nrun = "@hourly"\nlog_ship = "*/2 8-18 * * mon-fri"\n`),
      { executable: BINARY, user: "root" },
    );
    expect(text).toContain(
      "\n@hourly root (umask 077 && mkdir -p /var/lib/panorama/logs) && /usr/local/bin/panorama --config /etc/panorama/panorama.toml --json run >> /var/lib/panorama/logs/panorama-run.log 2>&1\n",
    );
    expect(text).toContain(
      "\n*/2 8-18 * * mon-fri root (umask 077 && mkdir -p /var/lib/panorama/logs) && /usr/local/bin/panorama --config /etc/panorama/panorama.toml --json log-ship --once >> /var/lib/panorama/logs/panorama-log-ship.log 2>&1\n",
    );
  });

  test("verify --repair daily at schedule.verify, in every mode that extracts; none when it is empty", () => {
    for (const mode of ["FREE", "SAAS", "CUSTOM"]) {
      const text = crontab(configOf(`mode = "${mode}"\n${BASE}`), { executable: BINARY });
      expect(text).toContain(
        "\n30 3 * * * (umask 077 && mkdir -p /var/lib/panorama/logs) && /usr/local/bin/panorama --config /etc/panorama/panorama.toml --json verify --repair >> /var/lib/panorama/logs/panorama-verify.log 2>&1\n",
      );
    }
    const none = crontab(configOf(`mode = "CUSTOM"\n${BASE}[schedule]\nverify = ""\n`), {
      executable: BINARY,
    });
    expect(none).not.toContain("verify");
    expect(none).toContain(" run >> ");
  });

  test("the source form: bun, then the entry script", () => {
    const text = crontab(configOf(`mode = "FREE"\n${BASE}`), {
      executable: ["/opt/bun/bin/bun", "/srv/panorama/src/cli.ts"],
    });
    expect(text).toContain(
      "\n55 * * * * (umask 077 && mkdir -p /var/lib/panorama/logs) && /opt/bun/bin/bun /srv/panorama/src/cli.ts --config /etc/panorama/panorama.toml ",
    );
  });

  test("paths with spaces are quoted for /bin/sh", () => {
    const config = configOf(
      `mode = "CUSTOM"\nstate_dir = "/var/lib/pan orama"\n${BASE}`,
      "/etc/pan orama/panorama.toml",
    );
    const text = crontab(config, { executable: ["/opt/edx tools/panorama"], user: "root" });
    expect(text).toContain(
      "\n55 * * * * root (umask 077 && mkdir -p '/var/lib/pan orama/logs') && '/opt/edx tools/panorama' --config '/etc/pan orama/panorama.toml' --json run >> '/var/lib/pan orama/logs/panorama-run.log' 2>&1\n",
    );
  });

  test("quotes, percent signs and control characters", () => {
    expect(cronWord("/usr/local/bin/panorama", "x")).toBe("/usr/local/bin/panorama");
    expect(cronWord("/opt/it's here/panorama", "x")).toBe(`'/opt/it'\\''s here/panorama'`);
    // cron turns a bare % into a newline; \% reaches the shell as %.
    expect(cronWord("/opt/100%/panorama", "x")).toBe("/opt/100\\%/panorama");
    expect(cronWord("/opt/$HOME/x", "x")).toBe("'/opt/$HOME/x'");
    expect(() => cronWord("/opt/a\nb", "--binary")).toThrow(UsageError);
  });

  test("a bad user name is a usage error", () => {
    expect(() =>
      crontab(configOf(`mode = "CUSTOM"\n${BASE}`), { executable: BINARY, user: "root; rm" }),
    ).toThrow(UsageError);
  });
});

describe("the logrotate snippet of the jobs' logs", () => {
  test("rotates the log files of state_dir/logs by size, keeping a few, without moving the open file", () => {
    const config = configOf(`mode = "CUSTOM"\n${BASE}`);
    const text = logrotateSnippet(config);
    expect(text).toContain(`\n${config.state_dir}/logs/panorama-*.log {\n`);
    for (const directive of ["size 10M", "rotate 4", "compress", "missingok", "copytruncate"]) {
      expect(text).toMatch(new RegExp(`^    ${directive}$`, "m"));
    }
    // Every log file a cron line appends to is one the snippet matches.
    const appended = [...crontab(config, { executable: ["/usr/local/bin/panorama"] }).matchAll(/>> (\S+)/g)];
    expect(appended.length).toBe(3);
    for (const [, path] of appended)
      expect(path).toMatch(new RegExp(`^${config.state_dir}/logs/panorama-[^/]*\\.log$`));
  });
});

// Seen with `sudo panorama crontab --install --user panorama` on a new host: the log directory
// (and state_dir with it) was made root's, so the shell of every job failed to open its log file
// and no job ever started; cron mailed the error to nobody.
describe("the log directory --install makes for another user's jobs", () => {
  test.skipIf(process.getuid?.() !== 0)(
    "is that user's, with state_dir when it made it, and nothing above",
    () => {
      const dir = mkdtempSync(join(tmpdir(), "panorama-crontab-logs-"));
      try {
        const stateDir = join(dir, "var", "state");
        mkdirSync(join(dir, "var"));
        const logs = join(stateDir, "logs");
        createLogDirectory(logs, "nobody", stateDir, { uid: 65534, gids: [65533, 65534] });
        for (const path of [stateDir, logs]) {
          const info = statSync(path);
          expect([info.uid, info.gid, info.mode & 0o777]).toEqual([65534, 65533, 0o700]);
        }
        expect(statSync(join(dir, "var")).uid).toBe(0);
        // Already there: left as it is.
        const own = join(dir, "own", "logs");
        mkdirSync(own, { recursive: true });
        createLogDirectory(own, "nobody", join(dir, "own"), { uid: 65534, gids: [65534] });
        expect(statSync(own).uid).toBe(0);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  );
});
