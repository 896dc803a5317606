// Pseudonyms (DESIGN §11): the function, the key file checks, the [privacy] keys, and the
// rewrite of tracking events on the real fixture events.
import { afterAll, describe, expect, test } from "bun:test";
import { createHmac, randomBytes } from "node:crypto";
import { chmodSync, chownSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadConfig, parseConfig } from "../../src/config/load.ts";
import { ConfigError } from "../../src/errors.ts";
import { EventPseudonyms } from "../../src/logship/event-pseudonyms.ts";
import {
  DEFAULT_LOG_FIELDS,
  PRESET_PERSONAL_COLUMNS,
  pseudonymizedColumns,
} from "../../src/privacy/fields.ts";
import { Pseudonymizer } from "../../src/privacy/pseudonym.ts";
import { pseudonymsLine, pseudonymsStatus } from "../../src/privacy/report.ts";
import { collectStatus, formatStatus } from "../../src/status.ts";
import { formatReport } from "../../src/verify.ts";
import { fixtureEvents } from "../support/log-writer.ts";

/** This process's effective group (the group a file given to it has). */
const egid = (): number => process.getegid?.() ?? 0;

const dir = mkdtempSync(join(tmpdir(), "panorama-privacy-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const KEY = randomBytes(32);
const keyFile = join(dir, "good.key");
writeFileSync(keyFile, KEY, { mode: 0o600 });

/** RFC 4648 base32 written out bit by bit, independently of the module under test. */
function reference(key: Uint8Array, value: string): string {
  const digest = createHmac("sha256", key).update(value, "utf8").digest();
  const bits = [...digest].map((b) => b.toString(2).padStart(8, "0")).join("");
  let out = "pz_";
  for (let i = 0; i < 130; i += 5)
    out += "abcdefghijklmnopqrstuvwxyz234567"[Number.parseInt(bits.slice(i, i + 5), 2)];
  return out;
}

const BASE = `mode = "CUSTOM"\nlms_host = "lms.example.com"\n[datalake]\nbucket = "acme-panorama"\n`;
const CONFIG = join(dir, "panorama.toml");

function privacy(lines: string): string {
  return `${BASE}[privacy]\n${lines}\n`;
}

function failure(text: string): ConfigError {
  try {
    parseConfig(text, CONFIG, {});
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return error as ConfigError;
  }
  throw new Error("expected a ConfigError");
}

describe("the pseudonym", () => {
  test("pz_ + 26 lowercase base32 characters of HMAC-SHA256(key, value), for text and bytes", () => {
    const p = new Pseudonymizer(KEY);
    for (const value of ["edx", "Zélda.O'Hara@example.org", "172.18.0.1", "美玲", 'a,b"c\\d\ne']) {
      expect(p.of(value)).toBe(reference(KEY, value));
      expect(p.of(new TextEncoder().encode(value))).toBe(reference(KEY, value));
      expect(p.of(value)).toMatch(/^pz_[a-z2-7]{26}$/);
    }
  });

  test("deterministic for a key, different for another key and for another case", () => {
    const p = new Pseudonymizer(KEY);
    expect(new Pseudonymizer(Buffer.from(KEY)).of("edx")).toBe(p.of("edx"));
    expect(new Pseudonymizer(randomBytes(32)).of("edx")).not.toBe(p.of("edx"));
    expect(p.of("EDX")).not.toBe(p.of("edx"));
  });
});

describe("[privacy] configuration", () => {
  test("off by default: nothing is read, no column or field is pseudonymized", () => {
    const config = parseConfig(BASE, CONFIG, {}).config;
    expect(config.privacy).toEqual({
      pseudonymize: false,
      key_file: "/etc/panorama/pseudonym.key",
      columns: [],
      log_fields: [],
      key: null,
    });
    expect(pseudonymizedColumns(config, "auth_user").size).toBe(0);
  });

  test("on: the key is read, the preset's personal columns and the extra ones are listed", () => {
    const config = parseConfig(
      privacy(`pseudonymize = true\nkey_file = "good.key"\ncolumns = ["student_courseenrollment.mode"]`),
      CONFIG,
      {},
    ).config;
    expect(Buffer.from(config.privacy.key!).equals(KEY)).toBe(true);
    expect([...pseudonymizedColumns(config, "auth_user")].sort()).toEqual([
      "email",
      "first_name",
      "last_name",
      "username",
    ]);
    expect([...pseudonymizedColumns(config, "student_courseenrollment")]).toEqual(["mode"]);
    // Every e-mail address column of the preset, the enterprise customer's contacts included.
    expect([...pseudonymizedColumns(config, "enterprise_enterprisecustomer")].sort()).toEqual([
      "contact_email",
      "reply_to",
    ]);
    expect(pseudonymizedColumns(config, "courseware_studentmodule").size).toBe(0);
  });

  test("a missing, empty or short key file: exit 2 naming the key, with how to make one", () => {
    writeFileSync(join(dir, "empty.key"), "");
    writeFileSync(join(dir, "short.key"), randomBytes(31), { mode: 0o600 });
    const cases: [string, string][] = [
      ["missing.key", `no such key file: ${join(dir, "missing.key")}`],
      [
        "empty.key",
        `the key file ${join(dir, "empty.key")} holds 0 bytes, expected at least 32 random bytes`,
      ],
      [
        "short.key",
        `the key file ${join(dir, "short.key")} holds 31 bytes, expected at least 32 random bytes`,
      ],
    ];
    for (const [file, problem] of cases) {
      const error = failure(privacy(`pseudonymize = true\nkey_file = "${file}"`));
      expect(error.message).toBe(`${CONFIG}: privacy.key_file: ${problem}`);
      expect(error.hint).toContain("`panorama init` writes one (0600)");
      expect(error.hint).toContain(
        `head -c 32 /dev/urandom > ${join(dir, file)} && chmod 600 ${join(dir, file)}`,
      );
    }
    // Off: the key file is not needed.
    expect(parseConfig(privacy('key_file = "missing.key"'), CONFIG, {}).config.privacy.key).toBeNull();
  });

  test("a key file readable by others: a warning with the fix, as for the config file", async () => {
    const open = join(dir, "open.key");
    writeFileSync(open, randomBytes(32));
    chmodSync(open, 0o644);
    writeFileSync(CONFIG, privacy(`pseudonymize = true\nkey_file = "open.key"`), { mode: 0o600 });
    const { warnings } = await loadConfig({ configPath: CONFIG, env: {} });
    expect(warnings).toEqual([
      `${open} holds the pseudonym key and is readable by group or others (mode 0644); run: chmod 600 ${open}`,
    ]);
  });

  test("a key file readable by this process's own group only is not warned about (a Kubernetes Secret, fsGroup)", async () => {
    const shared = join(dir, "group.key");
    writeFileSync(shared, randomBytes(32));
    chmodSync(shared, 0o440);
    chownSync(shared, statSync(shared).uid, egid());
    writeFileSync(CONFIG, privacy(`pseudonymize = true\nkey_file = "group.key"`), { mode: 0o600 });
    expect((await loadConfig({ configPath: CONFIG, env: {} })).warnings).toEqual([]);
  });

  test("bad entries name the file, the key path, what was expected and what was found", () => {
    const cases: [string, string][] = [
      ["pseudonymize = 1", `${CONFIG}: privacy.pseudonymize: expected true or false, got 1`],
      [
        'columns = "auth_user.email"',
        `${CONFIG}: privacy.columns: expected an array of strings, got "auth_user.email"`,
      ],
      [
        'columns = ["auth_user"]',
        `${CONFIG}: privacy.columns: expected "table.column" names of letters, digits and underscores, got "auth_user"`,
      ],
      [
        'columns = ["auth_usr.email"]',
        `${CONFIG}: privacy.columns: "auth_usr.email": no table "auth_usr" in the extracted set (did you mean "auth_user"?)`,
      ],
      [
        'columns = ["auth_user.emial"]',
        `${CONFIG}: privacy.columns: "auth_user.emial": table auth_user has no column "emial" (did you mean "email"?)`,
      ],
      [
        'columns = ["courseware_studentmodule.course_id"]',
        `${CONFIG}: privacy.columns: "courseware_studentmodule.course_id": course_id partitions courseware_studentmodule, and partition values are part of object keys: it cannot be pseudonymized`,
      ],
      [
        'log_fields = ["event..x"]',
        `${CONFIG}: privacy.log_fields: expected event field paths such as "event.user_name", got "event..x"`,
      ],
      ["pseudonymise = true", `${CONFIG}: privacy.pseudonymise: unknown key (did you mean "pseudonymize"?)`],
    ];
    for (const [lines, message] of cases) expect(failure(privacy(lines)).message).toBe(message);
  });
});

/** The events with every personal field replaced, and what was replaced. */
const FIELDS = [...DEFAULT_LOG_FIELDS];

function valueAt(event: unknown, path: string): unknown {
  let node = event;
  for (const key of path.split(".")) {
    if (typeof node !== "object" || node === null || Array.isArray(node)) return undefined;
    node = (node as Record<string, unknown>)[key];
  }
  return node;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

describe("tracking events", () => {
  const p = new Pseudonymizer(KEY);
  const rewriter = new EventPseudonyms(FIELDS, p);
  const rewrite = (event: string) =>
    new TextDecoder().decode(rewriter.rewrite(new TextEncoder().encode(event)));

  test("on every fixture event: the listed fields are their pseudonyms, the rest is unchanged", () => {
    let replaced = 0;
    for (const event of fixtureEvents()) {
      const before = JSON.parse(event);
      const afterText = rewrite(event);
      const after = JSON.parse(afterText);
      for (const field of FIELDS) {
        const value = valueAt(before, field);
        const expected = typeof value === "string" && value !== "" ? p.of(value) : value;
        expect({ field, value: valueAt(after, field) }).toEqual({ field, value: expected });
        if (expected !== value) replaced++;
      }
      // Every other byte: the text is the original with whole JSON strings swapped for pseudonyms.
      const parts = afterText.split(/"pz_[a-z2-7]{26}"/);
      const pattern = new RegExp(`^${parts.map(escapeRegExp).join('"(?:[^"\\\\]|\\\\.)*"')}$`, "s");
      expect(pattern.test(event)).toBe(true);
      // And no clear username or IP is left at those paths anywhere in the line.
      for (const field of FIELDS) {
        const value = valueAt(before, field);
        if (typeof value === "string" && value.length > 3) expect(afterText).not.toContain(`"${value}"`);
      }
    }
    expect(replaced).toBeGreaterThan(150);
  });

  test("an event without personal fields is the same array; escapes are keyed by their value", () => {
    const plain = new TextEncoder().encode('{"name": "x", "context": {"user_id": 3}}');
    expect(rewriter.rewrite(plain)).toBe(plain);
    expect(rewrite('{"username": "Z\\u00e9lda"}')).toBe(`{"username": "${p.of("Zélda")}"}`);
    expect(rewrite('{"context": {"ip": "", "username": null}}')).toBe(
      '{"context": {"ip": "", "username": null}}',
    );
  });

  test("only the listed paths: not the same key elsewhere, not inside arrays, not keys", () => {
    const event =
      '{"event": {"context": {"username": "a"}, "list": [{"username": "b"}], "username": "c"}, "username": {"x": "d"}, "x": "username", "ip": "10.0.0.1"}';
    expect(rewrite(event)).toBe(
      `{"event": {"context": {"username": "a"}, "list": [{"username": "b"}], "username": "${p.of("c")}"}, "username": {"x": "d"}, "x": "username", "ip": "${p.of("10.0.0.1")}"}`,
    );
  });

  test("log_fields add paths", () => {
    const extra = new EventPseudonyms([...FIELDS, "event.context.username", "data.email"], p);
    const out = new TextDecoder().decode(
      extra.rewrite(
        new TextEncoder().encode('{"event": {"context": {"username": "a"}}, "data": {"email": "e@x.org"}}'),
      ),
    );
    expect(out).toBe(
      `{"event": {"context": {"username": "${p.of("a")}"}}, "data": {"email": "${p.of("e@x.org")}"}}`,
    );
  });
});

describe("status and verify say whether pseudonyms are on", () => {
  const on = () =>
    parseConfig(
      privacy(`pseudonymize = true\nkey_file = "good.key"\ncolumns = ["student_courseenrollment.mode"]`),
      CONFIG,
      {},
    ).config;

  test("status: a line and a JSON member, the key file named, never the key", async () => {
    const stateDir = join(dir, "status-state");
    const off = { ...parseConfig(BASE, CONFIG, {}).config, state_dir: stateDir };
    const offStatus = await collectStatus(off);
    expect(offStatus.pseudonyms).toEqual({ on: false, key_file: null, columns: [], log_fields: [] });
    expect(formatStatus(offStatus)).toContain(
      "\npseudonyms: off (personal values are written as they are)\n",
    );

    const status = await collectStatus({ ...on(), state_dir: stateDir });
    expect(status.pseudonyms.on).toBe(true);
    expect(status.pseudonyms.key_file).toBe(keyFile);
    expect(status.pseudonyms.columns).toContain("auth_user.email");
    expect(status.pseudonyms.columns).toContain("student_courseenrollment.mode");
    expect(status.pseudonyms.log_fields).toEqual([...DEFAULT_LOG_FIELDS]);
    const text = formatStatus(status);
    expect(text).toContain(
      `\npseudonyms: on, key ${keyFile}: ${status.pseudonyms.columns.length} column(s) and 10 tracking-log field(s) pseudonymized\n`,
    );
    const json = JSON.stringify(status);
    expect(json).not.toContain(KEY.toString("hex"));
    expect(json).not.toContain(KEY.toString("base64"));
  });

  test("verify: the report's last line", () => {
    const report = {
      time: "2026-12-04T00:00:00.000Z",
      ok: true,
      tables: [],
      queries: 1,
      listings: 1,
      seconds: 0.1,
      pseudonyms: pseudonymsStatus(on()),
      unconfigured: [],
    };
    expect(formatReport(report).trimEnd().split("\n").at(-1)).toBe(pseudonymsLine(report.pseudonyms));
    expect(pseudonymsLine(report.pseudonyms)).toStartWith(`pseudonyms: on, key ${keyFile}:`);
  });
});

describe("README", () => {
  test("lists every default event field path and every preset personal column", () => {
    const readme = readFileSync(join(import.meta.dir, "..", "..", "README.md"), "utf8");
    const section = readme.slice(readme.indexOf("## Privacy: pseudonyms"));
    for (const field of DEFAULT_LOG_FIELDS) expect(section).toContain(`\`${field}\``);
    for (const [table, columns] of Object.entries(PRESET_PERSONAL_COLUMNS)) {
      const row = section.split("\n").find((line) => new RegExp(`^\\| \`${table}\` +\\|`).test(line));
      expect(row).toBeDefined();
      for (const column of columns) expect(row).toContain(`\`${column}\``);
    }
  });

  test("every fixture event path that carries a username or an IP address is a default field", () => {
    // Any key named like a username or an IP, at any depth outside arrays, in the real events.
    const found = new Set<string>();
    const walk = (node: unknown, path: string) => {
      if (typeof node !== "object" || node === null || Array.isArray(node)) return;
      for (const [key, value] of Object.entries(node)) {
        const at = path ? `${path}.${key}` : key;
        if (/user_?name$|^ip$|email/.test(key) && typeof value === "string" && value !== "") found.add(at);
        walk(value, at);
      }
    };
    for (const event of fixtureEvents()) walk(JSON.parse(event), "");
    expect([...found].filter((path) => !DEFAULT_LOG_FIELDS.includes(path))).toEqual([]);
    expect(found.size).toBeGreaterThan(4);
  });
});

describe("tracking events: bytes that are not UTF-8", () => {
  test("two different invalid values get two different pseudonyms, each of its own bytes", () => {
    const p = new Pseudonymizer(KEY);
    const rewriter = new EventPseudonyms(["username"], p);
    const event = (byte: number) =>
      Uint8Array.from([...Buffer.from('{"username": "a'), byte, ...Buffer.from('"}')]);
    const first = Buffer.from(rewriter.rewrite(event(0xff))).toString("latin1");
    const second = Buffer.from(rewriter.rewrite(event(0xfe))).toString("latin1");
    expect(first).toBe(`{"username": "${p.of(Uint8Array.from([0x61, 0xff]))}"}`);
    expect(second).toBe(`{"username": "${p.of(Uint8Array.from([0x61, 0xfe]))}"}`);
    expect(first).not.toBe(second);
  });
});
