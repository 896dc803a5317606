import { afterAll, describe, expect, test } from "bun:test";
import {
  chmodSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import TOML from "@iarna/toml";
import { KNOWN_KEYS, parseConfig } from "../../src/config/load.ts";
import { ConfigError, UsageError } from "../../src/errors.ts";
import { mongoTarget } from "../../src/extract/mongodb.ts";
import { STARTER_KEYS, starterConfig, tomlString, writeConfigFile } from "../../src/setup/init.ts";
import { fromTutor, parseTutorConfig, type TutorConfig } from "../../src/setup/tutor.ts";
import { ROOT } from "../support/cli.ts";

const FIXTURE = join(ROOT, "test", "fixtures", "tutor", "config.yml");
const EXAMPLE = join(ROOT, "panorama.toml.example");
const work = mkdtempSync(join(tmpdir(), "panorama-init-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** The fixture's secrets, as Tutor reads them. */
const FIXTURE_SECRETS = {
  mysql: `Qx'7"b\\ñ#é:{z} 9`,
  mongodb: 'm0ng"o\\dbé #x\t!',
  aws: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
  root: "Zr8pQm2vXy1N",
};

function tutor(text: string, file = "/srv/tutor/config.yml"): TutorConfig {
  return parseTutorConfig(text, file);
}

function value(text: string, key = "K"): unknown {
  return tutor(text).values.get(key)?.value;
}

function failure(text: string): string {
  try {
    tutor(text);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as Error).message;
  }
  throw new Error("expected a ConfigError");
}

describe("Tutor config.yml reader", () => {
  test("reads the fixture: quoted, plain, multi-line and typed values; lists named, not read", () => {
    const config = tutor(readFileSync(FIXTURE, "utf8"), FIXTURE);
    const get = (key: string) => config.values.get(key)?.value;
    expect(get("OPENEDX_MYSQL_PASSWORD")).toBe(FIXTURE_SECRETS.mysql);
    expect(get("MONGODB_PASSWORD")).toBe(FIXTURE_SECRETS.mongodb);
    expect(get("PANORAMA_AWS_SECRET_ACCESS_KEY")).toBe(FIXTURE_SECRETS.aws);
    expect(get("MYSQL_PORT")).toBe(3306);
    expect(get("PANORAMA_AWS_ACCOUNT_ID")).toBe("123456789012");
    expect(get("PANORAMA_USE_SPLIT_MONGO")).toBe(true);
    expect(get("PANORAMA_K8S_JOB_MEMORY_REQUEST")).toBeNull();
    expect(get("PANORAMA_CRONTAB")).toBe("25 * * * *");
    expect(get("OPENEDX_AWS_ACCESS_KEY")).toBe("");
    expect(get("JWT_RSA_PRIVATE_KEY")).toMatch(
      /^-----BEGIN RSA PRIVATE KEY-----\nMIIE\S+\n\S+==\n-----END RSA PRIVATE KEY-----$/,
    );
    expect(config.values.get("LMS_HOST")?.line).toBe(21);
    expect([...config.skipped.keys()]).toEqual(["PANORAMA_ADDITIONAL_DOMAIN", "PLUGINS", "PLUGIN_INDEXES"]);
    expect(config.skipped.get("PLUGINS")).toEqual({ line: 63, what: "a list" });
  });

  test("single quotes: '' is a quote, nothing else is an escape", () => {
    expect(value(`K: 'it''s \\n "x" # y'`)).toBe(`it's \\n "x" # y`);
    expect(value("K: ''")).toBe("");
  });

  test("double quotes: YAML escapes", () => {
    expect(value(String.raw`K: "a\"b\\c\td\u00e9\x41\U0001F600\/ \0"`)).toBe('a"b\\c\tdéA😀/ \0');
    expect(failure(String.raw`K: "bad \q escape"`)).toStartWith(
      "/srv/tutor/config.yml:1: the value of K is not valid YAML (",
    );
  });

  test("quoted values folded over lines, as PyYAML writes long ones", () => {
    expect(value("K: 'one\n  two\n\n  three'\nL: 1")).toBe("one two\nthree");
    expect(value('K: "one \\\n  two"')).toBe("one two");
    expect(value('K: "one\\\n  two"')).toBe("onetwo");
  });

  test("plain values: comments stripped, typed as PyYAML types them, continued on indented lines", () => {
    expect(value("K: lms.example.com # the LMS")).toBe("lms.example.com");
    expect(value("K: a#b")).toBe("a#b");
    expect(value("K: 55 * * * *")).toBe("55 * * * *");
    expect(value("K: 12")).toBe(12);
    expect(value("K: '12'")).toBe("12");
    expect(value("K: 0x1F")).toBe(31);
    expect(value("K: 1.5")).toBe(1.5);
    expect(value("K: True")).toBe(true);
    expect(value("K: off")).toBe(false);
    expect(value("K: ~")).toBeNull();
    expect(value("K:")).toBeNull();
    expect(value("K: a long\n  plain value\nL: 1")).toBe("a long plain value");
    expect(value("K: http://x.example.com:8080/a")).toBe("http://x.example.com:8080/a");
  });

  test("lists, maps, flow collections and block scalars are skipped and named", () => {
    const config = tutor(
      [
        "A:",
        "- x",
        "- y",
        "B:",
        "  c: 1",
        "  d: [1, 2]",
        "C: []",
        "D: [a,",
        "  b]",
        "E: |",
        "  text",
        "  more",
        "F: {a: 1}",
        "G: after",
      ].join("\n"),
    );
    expect(Object.fromEntries([...config.skipped].map(([k, v]) => [k, v.what]))).toEqual({
      A: "a list",
      B: "a map",
      C: "a list",
      D: "a list",
      E: "a block scalar",
      F: "a map",
    });
    expect(config.values.get("G")).toEqual({ value: "after", line: 14 });
  });

  test("a document marker, comments, CRLF and a BOM are fine", () => {
    const config = tutor("\uFEFF---\r\n# comment\r\nK: v\r\n\r\nL: 'w'\r\n");
    expect(config.values.get("K")?.value).toBe("v");
    expect(config.values.get("L")).toEqual({ value: "w", line: 5 });
  });

  test("errors name the file and the line", () => {
    // Bun says what broke, never where: the reader finds the entry (the key's line).
    const broken = (line: number, key: string) =>
      `/srv/tutor/config.yml:${line}: the value of ${key} is not valid YAML (`;
    expect(failure("A: 1\nB: 'open\nC: 2")).toStartWith(broken(2, "B"));
    expect(failure('A: 1\nB: "open')).toStartWith(broken(2, "B"));
    expect(failure("A: 1\nnot a key\n")).toStartWith("/srv/tutor/config.yml:2: expected KEY: value");
    expect(failure("A: 1\n  indented: 2\n")).toStartWith(broken(1, "A"));
    expect(failure("A: 1\nA: 2")).toBe("/srv/tutor/config.yml:2: A is set twice (first on line 1)");
    expect(failure("A: 'x' y")).toStartWith(broken(1, "A"));
    expect(failure("A: [1, 2")).toStartWith(broken(1, "A"));
    expect(failure("A: a: b")).toStartWith(broken(1, "A"));
    expect(failure("A: 1\n---\nB: 2")).toStartWith("/srv/tutor/config.yml:2: a second YAML document");
    expect(failure("A: 1\n...\nB: 2")).toStartWith("/srv/tutor/config.yml:2: a second YAML document");
    expect(failure("- a\n- b")).toStartWith("/srv/tutor/config.yml: expected KEY: value lines");
    expect(failure("  A: 1\n  B: 2")).toBe(
      "/srv/tutor/config.yml: the key A is not at the start of a line, as KEY: value",
    );
    // The text of a bad line is never quoted back: it may be a password.
    expect(failure("OPENEDX_MYSQL_PASSWORD:s3cr3tv4lue")).not.toContain("s3cr3tv4lue");
    expect(failure("OPENEDX_MYSQL_PASSWORD: 'ab'cd3fgh'")).not.toContain("cd3fgh");
  });

  test("a YAML syntax error: the file and the line of the key whose value breaks, Bun's reason, no text", () => {
    const lines = readFileSync(FIXTURE, "utf8").split("\n");
    const at = lines.findIndex((l) => l.startsWith("OPENEDX_MYSQL_PASSWORD:"));
    for (const broken of [
      "OPENEDX_MYSQL_PASSWORD: 'pa55w0rdXY",
      "OPENEDX_MYSQL_PASSWORD: 'pa55w0rd'XY'",
      'OPENEDX_MYSQL_PASSWORD: "pa55w0rd\\qXY"',
      "OPENEDX_MYSQL_PASSWORD: pa55w0rd: XY",
    ]) {
      const text = lines.with(at, broken).join("\n");
      let caught: unknown;
      try {
        parseTutorConfig(text, FIXTURE);
      } catch (error) {
        caught = error;
      }
      expect(caught).toBeInstanceOf(ConfigError);
      const { message, hint } = caught as ConfigError;
      expect(message).toStartWith(
        `${FIXTURE}:${at + 1}: the value of OPENEDX_MYSQL_PASSWORD is not valid YAML (`,
      );
      // Bun's reason is a short phrase ("unexpected token"): anything else would be dropped.
      expect(message).toMatch(/YAML \([a-z][a-zA-Z ]*\)$/);
      expect(hint).toContain("quote inside '...' is written ''");
      for (const secret of ["pa55w0rd", "XY", FIXTURE_SECRETS.root])
        expect(`${message} ${hint}`).not.toContain(secret);
    }
  });

  test("plain scalars are typed as PyYAML (YAML 1.1) types them, where Bun (YAML 1.2) differs", () => {
    // Text to PyYAML, numbers to YAML 1.2: PyYAML writes these unquoted, so a password may look so.
    expect(value("K: 0o17")).toBe("0o17");
    expect(value("K: 1e3")).toBe("1e3");
    expect(value("K: 09")).toBe("09");
    expect(value("K: 12e3456 # comment")).toBe("12e3456");
    // Numbers and booleans to PyYAML, text (or another number) to YAML 1.2.
    expect(value("K: 017")).toBe(15);
    expect(value("K: 1_000")).toBe(1000);
    expect(value("K: 0b101")).toBe(5);
    expect(value("K: yes")).toBe(true);
    expect(value("K: On")).toBe(true);
    expect(value("K: NO")).toBe(false);
    // Alike in both, and quoted or tagged values stay as written.
    expect(value("K: -.inf")).toBe(Number.NEGATIVE_INFINITY);
    expect(value("K: .NaN")).toBeNaN();
    expect(value("K: 3306 # the port")).toBe(3306);
    expect(value("K: 2020-01-01")).toBe("2020-01-01");
    expect(value("K: 'yes'")).toBe("yes");
    expect(value('K: "017"')).toBe("017");
    expect(value("K: !!str 017")).toBe("017");
    const reading = fromTutor(
      tutor("OPENEDX_MYSQL_PASSWORD: 0o1234567\nMONGODB_USE_SSL: yes\nMYSQL_PORT: 0x0CEA"),
    );
    const byPath = Object.fromEntries(reading.settings.map((s) => [s.keyPath, s.value]));
    expect(byPath).toMatchObject({ "mysql.password": "0o1234567", "mongodb.tls": true, "mysql.port": 3306 });
  });
});

describe("Tutor settings → config keys", () => {
  test("every mapped key of the fixture, and every PANORAMA_* key without one, listed", () => {
    const reading = fromTutor(tutor(readFileSync(FIXTURE, "utf8"), FIXTURE));
    const byPath = Object.fromEntries(reading.settings.map((s) => [s.keyPath, s.value]));
    expect(byPath).toEqual({
      lms_host: "lms.example.com",
      mode: "CUSTOM",
      "mysql.host": "mysql",
      "mysql.port": 3306,
      "mysql.user": "openedx",
      "mysql.password": FIXTURE_SECRETS.mysql,
      "mysql.database": "openedx",
      "mongodb.host": "mongodb",
      "mongodb.port": 27017,
      "mongodb.user": "openedx",
      "mongodb.password": FIXTURE_SECRETS.mongodb,
      "mongodb.database": "openedx",
      "mongodb.auth_source": "admin",
      "mongodb.tls": false,
      "mongodb.use_split_mongo": true,
      "datalake.account_id": "123456789012",
      "datalake.bucket": "acme-panorama-data",
      "datalake.logs_bucket": "acme-panorama-logs",
      "datalake.base_prefix": "openedx",
      "datalake.region": "eu-west-1",
      "datalake.database": "panorama_prod",
      "datalake.workgroup": "panorama",
      "logs.max_file_size": "50M",
      "logs.upload_timeout": "10m",
      "schedule.run": "25 * * * *",
      "aws.access_key_id": "AKIAIOSFODNN7EXAMPLE",
      "aws.secret_access_key": FIXTURE_SECRETS.aws,
    });
    expect(reading.unused).toEqual([
      "PANORAMA_DEBUG",
      "PANORAMA_DEFAULT_USER_ARN",
      "PANORAMA_FLB_LOG_LEVEL",
      "PANORAMA_K8S_JOB_MEMORY_LIMIT",
      "PANORAMA_K8S_JOB_MEMORY_REQUEST",
      "PANORAMA_LOGS_UPLOAD_CHUNK_SIZE",
      "PANORAMA_MFE_ENABLED",
      "PANORAMA_RUN_K8S_FLUENTBIT",
      "PANORAMA_VERSION",
      "PANORAMA_ADDITIONAL_DOMAIN (a list)",
    ]);
    expect(reading.unusable).toEqual([]);
    expect(reading.skipped).toEqual(["PLUGINS", "PLUGIN_INDEXES"]);
  });

  test("what config.yml leaves out takes Tutor's defaults, which differ from panorama's", () => {
    const reading = fromTutor(tutor("LMS_HOST: lms.example.com\nOPENEDX_MYSQL_PASSWORD: secret1\n"));
    const defaults = reading.settings.filter((s) => s.line === null);
    expect(Object.fromEntries(defaults.map((s) => [s.keyPath, s.value]))).toEqual({
      "mysql.host": "mysql",
      "mysql.port": 3306,
      "mysql.user": "openedx",
      "mysql.database": "openedx",
      "mongodb.host": "mongodb",
      "mongodb.port": 27017,
      "mongodb.database": "openedx",
      "mongodb.auth_source": "admin",
      "mongodb.tls": false,
    });
  });

  test("Tutor's container names as hosts, its defaults or set: a warning naming the key and what to set", () => {
    const advice = (section: string, host: string) =>
      `"${host}" is Tutor's container name, which resolves only inside Tutor's Docker network: set [${section}] host = "127.0.0.1" and port to the port Tutor publishes it on, or run panorama inside that network`;
    const defaults = starterConfig(fromTutor(tutor("LMS_HOST: lms.example.com\n")));
    expect(defaults.warnings).toEqual([
      `mysql.host = "mysql" (MYSQL_HOST, Tutor's default): ${advice("mysql", "mysql")}`,
      `mongodb.host = "mongodb" (MONGODB_HOST, Tutor's default): ${advice("mongodb", "mongodb")}`,
    ]);
    const set = starterConfig(
      fromTutor(tutor("LMS_HOST: lms.example.com\nMYSQL_HOST: mysql\nMONGODB_HOST: 10.0.0.5\n")),
    );
    expect(set.warnings).toEqual([`mysql.host = "mysql" (MYSQL_HOST, line 2): ${advice("mysql", "mysql")}`]);
    expect(set.text).not.toContain('"10.0.0.5" is Tutor');
    expect(
      starterConfig(fromTutor(tutor("MYSQL_HOST: 127.0.0.1\nMONGODB_HOST: 127.0.0.1\n"))).warnings,
    ).toEqual([]);
  });

  test("MONGODB_HOST holding a connection string (MongoDB Atlas) becomes [mongodb] uri, with the user put in it", () => {
    const atlas = (host: string) =>
      starterConfig(
        fromTutor(
          tutor(
            `LMS_HOST: lms.example.com\nMYSQL_HOST: 10.0.0.4\nMONGODB_HOST: ${host}\nMONGODB_PORT: 27018\nMONGODB_USERNAME: "open edx"\nMONGODB_PASSWORD: "p@ss:word"\n`,
          ),
        ),
      );
    const srv = atlas("mongodb+srv://cluster0.ab1cd.mongodb.net/?retryWrites=true");
    const config = parseConfig(srv.text, "panorama.toml", {}).config;
    expect(config.mongodb.uri).toBe("mongodb+srv://open%20edx@cluster0.ab1cd.mongodb.net/?retryWrites=true");
    // The password stays apart (no percent-encoding to get wrong), and the driver is given it.
    expect(config.mongodb.password).toBe("p@ss:word");
    expect(srv.text).toMatch(/^# host = /m);
    expect(srv.text).toMatch(/^# port = /m);
    expect(srv.text).toMatch(/^# user = /m);
    expect(srv.warnings).toEqual([]);
    const target = mongoTarget(config.mongodb);
    expect(target.options.auth).toEqual({ username: "open edx", password: "p@ss:word" });
    expect(target.description).toBe("open edx@cluster0.ab1cd.mongodb.net/openedx");
    // A string that names its own user and password is kept as it is; its password is a secret.
    const own = atlas("mongodb://admin:s3cret@10.0.0.5:27017/edx");
    expect(parseConfig(own.text, "panorama.toml", {}).config.mongodb.uri).toBe(
      "mongodb://admin:s3cret@10.0.0.5:27017/edx",
    );
    expect(own.secrets).toContain("s3cret");
    // A host name stays a host.
    const plain = parseConfig(atlas("mongo.internal").text, "panorama.toml", {}).config.mongodb;
    expect([plain.uri, plain.host, plain.port, plain.user]).toEqual([
      "",
      "mongo.internal",
      27018,
      "open edx",
    ]);
  });

  test("{{ NAME }} references are filled in as Tutor renders them; other templates are not", () => {
    const reading = fromTutor(
      tutor(
        [
          "OPENEDX_AWS_ACCESS_KEY: AKIAEXAMPLEEXAMPLE",
          "OPENEDX_AWS_SECRET_ACCESS_KEY: s3cr3t/key",
          "PANORAMA_BUCKET: acme-data",
          "PANORAMA_RAW_LOGS_BUCKET: '{{ PANORAMA_BUCKET }}'",
          "PANORAMA_REGION: '{% if X %}eu-west-1{% endif %}'",
          "PANORAMA_BASE_PREFIX: '{{ NOT_SET }}'",
          "PANORAMA_CRONTAB:",
          "- 5 * * * *",
        ].join("\n"),
      ),
    );
    const byPath = Object.fromEntries(reading.settings.map((s) => [s.keyPath, s.value]));
    expect(byPath["datalake.logs_bucket"]).toBe("acme-data");
    // Absent: the plugin's defaults, {{ OPENEDX_AWS_* }}.
    expect(byPath["aws.access_key_id"]).toBe("AKIAEXAMPLEEXAMPLE");
    expect(byPath["aws.secret_access_key"]).toBe("s3cr3t/key");
    expect(reading.unusable.map((u) => `${u.tutorKey}: ${u.reason}`)).toEqual([
      "PANORAMA_BASE_PREFIX: refers to NOT_SET, which config.yml does not set",
      "PANORAMA_REGION: a Tutor template (only {{ NAME }} references can be filled in here)",
      "PANORAMA_CRONTAB: a list, not a single value",
    ]);
  });
});

describe("panorama.toml.example", () => {
  const text = readFileSync(EXAMPLE, "utf8");

  test("loads", () => {
    const { config, warnings } = parseConfig(text, EXAMPLE, {});
    expect(config.mode).toBe("CUSTOM");
    expect(warnings).toEqual([]);
    expect(config.tables.map((t) => t.name)).toContain("grades_persistentsubsectiongrade");
  });

  test("shows every key the loader knows, set or commented out, in its section", () => {
    // Key lines as `key = ...` or `# key = ...`, attributed to the table they are in.
    const seen = new Set<string>();
    let table = "";
    for (const line of text.split("\n")) {
      const header = /^\[\[?([\w.]+)\]\]?\s*(#.*)?$/.exec(line);
      if (header) {
        table = header[1]!;
        seen.add(table);
        continue;
      }
      const key = /^(?:# )?([a-z_]+) = /.exec(line);
      if (key) seen.add(table ? `${table}.${key[1]}` : key[1]!);
      for (const inline of line.matchAll(/[{,]\s*([a-z_]+) = /g)) seen.add(`${table}.inline.${inline[1]}`);
    }
    const missing: string[] = [];
    for (const [section, keys] of Object.entries(KNOWN_KEYS)) {
      for (const key of keys) {
        const path = section === "" ? key : `${section}.${key}`;
        const inline = section.startsWith("tables.") && seen.has(`tables.inline.${key}`);
        if (!seen.has(path) && !inline) missing.push(path);
      }
    }
    expect(missing).toEqual([]);
  });

  test("names the environment variable of every key that has one", () => {
    for (const name of ["PANORAMA_MODE", "LMS_HOST", "PANORAMA_STATE_DIR", "PANORAMA_AWS_ACCESS_KEY"]) {
      expect(text).toContain(`Env ${name}`);
    }
    for (const name of [
      "PANORAMA_BUCKET",
      "PANORAMA_RAW_LOGS_BUCKET",
      "PANORAMA_BASE_PREFIX",
      "PANORAMA_REGION",
      "PANORAMA_DATALAKE_DATABASE",
      "PANORAMA_DATALAKE_WORKGROUP",
      "PANORAMA_AWS_SECRET_ACCESS_KEY",
      "PANORAMA_USE_SPLIT_MONGO",
      "PANORAMA_LOGS_TOTAL_FILE_SIZE",
      "PANORAMA_LOGS_UPLOAD_TIMEOUT",
      "PANORAMA_CRONTAB",
    ]) {
      expect(text).toContain(`Env ${name}`);
    }
  });
});

describe("starter configuration", () => {
  test("every key it writes is one the loader knows", () => {
    const known = Object.entries(KNOWN_KEYS).flatMap(([section, keys]) =>
      keys.map((k) => (section === "" ? k : `${section}.${k}`)),
    );
    for (const path of STARTER_KEYS) expect(known).toContain(path);
  });

  test("without Tutor: loads as DEMO, and as CUSTOM once the required keys are filled", () => {
    const { text, filled, secrets } = starterConfig();
    expect(filled).toEqual([]);
    expect(secrets).toEqual([]);
    expect(parseConfig(text, "/etc/panorama/panorama.toml", {}).config.mode).toBe("DEMO");
    expect(text).toContain('\nmode = "DEMO"\n');
    expect(text).toContain('\nlms_host = ""\n');
    expect(text).toContain('\n# state_dir = "/var/lib/panorama"\n');
    const operator = text
      .replace('mode = "DEMO"', 'mode = "CUSTOM"')
      .replace('lms_host = ""', 'lms_host = "lms.example.com"')
      .replace('bucket = ""', 'bucket = "acme-panorama"');
    const { config } = parseConfig(operator, "/etc/panorama/panorama.toml", {});
    expect(config.mode).toBe("CUSTOM");
    expect(config.datalake.bucket).toBe("acme-panorama");
    expect(config.mysql).toMatchObject({ host: "127.0.0.1", port: 3306, user: "root", database: "edxapp" });
    // Half-filled is not silently accepted.
    expect(() => parseConfig(text.replace('mode = "DEMO"', 'mode = "CUSTOM"'), "p.toml", {})).toThrow(
      "datalake.bucket: required",
    );
  });

  test("from the fixture: every mapped value, exactly, after parsing the written TOML", () => {
    const reading = fromTutor(tutor(readFileSync(FIXTURE, "utf8"), FIXTURE));
    const starter = starterConfig(reading);
    const { config } = parseConfig(starter.text, "/etc/panorama/panorama.toml", {});
    expect(config.mode).toBe("CUSTOM");
    expect(config.lms_host).toBe("lms.example.com");
    expect(config.mysql).toMatchObject({
      host: "mysql",
      port: 3306,
      user: "openedx",
      password: FIXTURE_SECRETS.mysql,
      database: "openedx",
    });
    expect(config.mongodb).toMatchObject({
      host: "mongodb",
      port: 27017,
      user: "openedx",
      password: FIXTURE_SECRETS.mongodb,
      database: "openedx",
      auth_source: "admin",
      tls: false,
      use_split_mongo: true,
    });
    expect(config.datalake).toMatchObject({
      bucket: "acme-panorama-data",
      logs_bucket: "acme-panorama-logs",
      base_prefix: "openedx",
      region: "eu-west-1",
      database: "panorama_prod",
      workgroup: "panorama",
      account_id: "123456789012",
    });
    expect(config.aws).toMatchObject({
      access_key_id: "AKIAIOSFODNN7EXAMPLE",
      secret_access_key: FIXTURE_SECRETS.aws,
    });
    expect(config.logs.max_file_size).toBe(50 * 1024 * 1024);
    expect(config.logs.upload_timeout).toBe(600);
    // The LMS container's log as the host sees it: <Tutor root>/data/lms/logs, beside config.yml.
    expect(config.logs.paths).toEqual([
      join(resolve(dirname(FIXTURE)), "data", "lms", "logs", "tracking.log"),
    ]);
    expect(config.schedule.run).toBe("25 * * * *");
    expect(starter.filled).toContain("mysql.password");
    expect(starter.defaulted).toEqual(["mongodb.auth_source", "mongodb.tls"]);
    expect(starter.secrets.sort()).toEqual(
      [FIXTURE_SECRETS.mysql, FIXTURE_SECRETS.mongodb, FIXTURE_SECRETS.aws].sort(),
    );
    // Where each value came from, and what panorama does not use.
    expect(starter.text).toContain('host = "mysql"  # MYSQL_HOST (line 27)');
    expect(starter.text).toContain(
      '\n# "mysql" is Tutor\'s container name, which resolves only inside Tutor\'s Docker network: set [mysql]\n# host = "127.0.0.1" and port to the port Tutor publishes it on, or run panorama inside that\n# network.\nhost = "mysql"',
    );
    expect(starter.text).toContain('\n# "mongodb" is Tutor\'s container name');
    const tail = starter.text.slice(starter.text.indexOf(`# From ${FIXTURE}:`)).replaceAll("\n# ", " ");
    for (const key of reading.unused) expect(tail).toContain(key);
    expect(tail).toContain("Not read (lists, maps and block values): PLUGINS, PLUGIN_INDEXES.");
    // The root password is not something panorama needs.
    expect(starter.text).not.toContain(FIXTURE_SECRETS.root);
  });

  test("a value Tutor has but panorama cannot use stops init, naming the Tutor key and line", () => {
    const bad = (text: string) => {
      try {
        starterConfig(fromTutor(tutor(text)));
      } catch (error) {
        expect(error).toBeInstanceOf(ConfigError);
        return (error as Error).message;
      }
      throw new Error("expected a ConfigError");
    };
    expect(bad("LMS_HOST: lms.example.com\nMYSQL_PORT: three")).toBe(
      "/srv/tutor/config.yml:2: MYSQL_PORT: expected an integer for mysql.port",
    );
    expect(bad("LMS_HOST: lms.example.com\n\nPANORAMA_REGION: Europe")).toStartWith(
      "/srv/tutor/config.yml:3: PANORAMA_REGION cannot be used as datalake.region: expected an AWS region",
    );
    expect(bad("LMS_HOST: lms.example.com\nPANORAMA_MODE: SAAS")).toContain("datalake.bucket: required");
    // Set, but as a template panorama cannot render: the message says so, not only "required".
    expect(
      bad(
        'LMS_HOST: lms.example.com\nPANORAMA_BUCKET: \'{{ LMS_HOST|replace(".", "-") }}-panorama\'\nPANORAMA_MODE: FREE',
      ),
    ).toStartWith(
      "/srv/tutor/config.yml:2: PANORAMA_BUCKET could not be read (a Tutor template (only {{ NAME }} references can be filled in here)), so datalake.bucket: required",
    );
  });
});

describe("TOML strings", () => {
  test("quotes, backslashes, control characters and any Unicode round-trip", () => {
    const all = Array.from({ length: 0xa0 }, (_, i) => String.fromCharCode(i)).join("");
    for (const text of [
      FIXTURE_SECRETS.mysql,
      FIXTURE_SECRETS.mongodb,
      all,
      `'''"""\\\\u0041 ${"\u{1F600}"}é中文\u2028\uFEFF`,
      "",
    ]) {
      expect((TOML.parse(`k = ${tomlString(text)}`) as { k: string }).k).toBe(text);
    }
  });
});

describe("writing the file", () => {
  let n = 0;
  const target = () => join(work, `w-${++n}`, "panorama.toml");

  test("mode 0600 whatever the umask allows, no temporary file left", () => {
    const path = target();
    writeConfigFile(path, "a = 1\n", false);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(readFileSync(path, "utf8")).toBe("a = 1\n");
    expect(readdirSync(join(path, ".."))).toEqual(["panorama.toml"]);
  });

  test("refuses an existing file without force, and leaves it as it was", () => {
    const path = target();
    writeConfigFile(path, "old\n", false);
    chmodSync(path, 0o644);
    expect(() => writeConfigFile(path, "new\n", false)).toThrow(UsageError);
    expect(() => writeConfigFile(path, "new\n", false)).toThrow("exists: use --force to overwrite it");
    expect(readFileSync(path, "utf8")).toBe("old\n");
    expect(statSync(path).mode & 0o777).toBe(0o644);
    expect(readdirSync(join(path, ".."))).toEqual(["panorama.toml"]);
  });

  test("with force: replaced, and mode 0600 even if the old file was readable by others", () => {
    const path = target();
    writeConfigFile(path, "old\n", false);
    chmodSync(path, 0o644);
    writeConfigFile(path, "new\n", true);
    expect(readFileSync(path, "utf8")).toBe("new\n");
    expect(statSync(path).mode & 0o777).toBe(0o600);
  });

  test("never writes through a link planted where the file goes", () => {
    const path = target();
    writeConfigFile(path, "x\n", false);
    const victim = join(work, "victim");
    writeFileSync(victim, "keep\n");
    rmSync(path);
    symlinkSync(victim, path);
    expect(() => writeConfigFile(path, "secret\n", false)).toThrow("exists");
    writeConfigFile(path, "secret\n", true);
    expect(readFileSync(victim, "utf8")).toBe("keep\n");
  });
});
