// Pseudonyms (DESIGN §11) on the real MariaDB and the real fixture events, through the real CLI:
// with pseudonyms on, no personal value (nor its lowercase form) is left anywhere in the spool or
// the datalake, each is its pseudonym, every other byte matches a run with pseudonyms off, and a
// username in a tracking event has the pseudonym it has in auth_user.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createHmac, randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import type mysql from "mysql2/promise";
import { close, connect, streamCsv } from "../../src/extract/mysql.ts";
import { DEFAULT_LOG_FIELDS } from "../../src/privacy/fields.ts";
import { Pseudonymizer } from "../../src/privacy/pseudonym.ts";
import { runPanorama } from "../support/cli.ts";
import { skipWithoutTestEnv, testEnv } from "../support/env.ts";
import { fixtureEvents, prefixed } from "../support/log-writer.ts";
import { freshDatabase, testConnection, writeTestConfig } from "../support/mysql.ts";
import { decodeFile } from "../support/opencsv.ts";

const skip = skipWithoutTestEnv();
const DATABASE = "panorama_privacy";
const KEY = randomBytes(32);

/** Personal values that hold CSV specials, case, non-ASCII and line breaks. */
const USERS = [
  {
    username: "Zelda_Quintana",
    email: "Zelda.Quintana+lms@Example.ORG",
    first: "Zélda",
    last: 'O"Quintana, Jr.',
  },
  {
    username: "borislav.ivanov",
    email: "b.ivanov@uni-sofia.example",
    first: "Борислав",
    last: "Иванов\\Back",
  },
  { username: "mei_ling_88", email: "mei@example.net", first: "美玲", last: "Line\nBreak" },
];
const PROFILES = [
  {
    name: "Zelda Quintana-Ørsted",
    city: "Reykjavík",
    mailing: "12 Quay Street,\r\nGalway",
    bio: 'likes "quotes"',
  },
  { name: "Borislav Ivanov", city: "Plovdiv", mailing: "ul. Vasil Levski 7", bio: "" },
  { name: "Mei Ling", city: "Kaohsiung", mailing: "", bio: null },
];
const NOTES = ["contact: zq@private.example", "boris@private.example"];

/** Every value that must not leave the host in clear (empty strings are not personal values). */
const PERSONAL = [
  ...USERS.flatMap((u) => [u.username, u.email, u.first, u.last]),
  ...PROFILES.flatMap((p) => [p.name, p.city, p.mailing, p.bio]),
  ...NOTES,
].filter((v): v is string => v !== "" && v !== null);

/** RFC 4648 base32, written out independently of the module under test. */
function referencePseudonym(value: string): string {
  const digest = createHmac("sha256", KEY).update(value, "utf8").digest();
  const bits = [...digest].map((b) => b.toString(2).padStart(8, "0")).join("");
  let out = "";
  for (let i = 0; i < 26 * 5; i += 5)
    out += "abcdefghijklmnopqrstuvwxyz234567"[Number.parseInt(bits.slice(i, i + 5), 2)];
  return `pz_${out}`;
}

function valueAt(event: unknown, path: string): unknown {
  let node = event;
  for (const key of path.split(".")) {
    if (typeof node !== "object" || node === null || Array.isArray(node)) return undefined;
    node = (node as Record<string, unknown>)[key];
  }
  return node;
}

/** Every file under `dir`: path → bytes as text. */
function allFiles(dir: string): Map<string, string> {
  const files = new Map<string, string>();
  if (!existsSync(dir)) return files;
  for (const name of readdirSync(dir, { recursive: true }) as string[]) {
    const path = join(dir, name);
    try {
      files.set(name, readFileSync(path, "latin1"));
    } catch {
      // a directory
    }
  }
  return files;
}

/** The messages a command logged (JSON lines on a pipe). */
function messages(stderr: string): string {
  return stderr
    .trim()
    .split("\n")
    .map((line) => (JSON.parse(line) as { message: string }).message)
    .join("\n");
}

/** The CSV files of a datalake: table → rows (header first), from upstream's layout. */
function datalakeTables(datalake: string): Map<string, string[][]> {
  const tables = new Map<string, string[][]>();
  for (const name of readdirSync(datalake, { recursive: true }) as string[]) {
    if (!name.endsWith(".csv")) continue;
    // <base_prefix>/<table>/<partitions>/<file>.csv
    const table = name.split("/")[1]!;
    tables.set(table, decodeFile(readFileSync(join(datalake, name), "utf8")));
  }
  return tables;
}

let db: mysql.Connection;
const cleanup: string[] = [];

beforeAll(async () => {
  if (skip) return;
  await freshDatabase(DATABASE);
  db = await testConnection(DATABASE);
  await db.query(`
    CREATE TABLE auth_user (id INT PRIMARY KEY, password VARCHAR(128) NOT NULL, username VARCHAR(150) NOT NULL,
      first_name VARCHAR(150) NOT NULL, last_name VARCHAR(150) NOT NULL, email VARCHAR(254) NOT NULL,
      is_staff TINYINT NOT NULL, date_joined DATETIME(6) NOT NULL) CHARSET utf8mb4;
    CREATE TABLE auth_userprofile (id INT PRIMARY KEY, user_id INT NOT NULL, name VARCHAR(255) NOT NULL,
      meta LONGTEXT NOT NULL, mailing_address LONGTEXT NULL, city LONGTEXT NULL, bio VARCHAR(3000) NULL,
      year_of_birth INT NULL) CHARSET utf8mb4;
    CREATE TABLE learner_notes (id INT PRIMARY KEY, contact VARCHAR(100) NULL, note TEXT NULL) CHARSET utf8mb4;`);
  for (const [i, u] of USERS.entries()) {
    await db.query("INSERT INTO auth_user VALUES (?, 'pbkdf2_sha256$x', ?, ?, ?, ?, ?, ?)", [
      i + 1,
      u.username,
      u.first,
      u.last,
      u.email,
      i % 2,
      `2024-0${i + 1}-01 10:00:00.12345`,
    ]);
  }
  for (const [i, p] of PROFILES.entries()) {
    await db.query("INSERT INTO auth_userprofile VALUES (?, ?, ?, ?, ?, ?, ?, ?)", [
      i + 10,
      i + 1,
      p.name,
      i === 0 ? "" : '{"session_id": "abc"}',
      p.mailing,
      p.city,
      p.bio,
      1990 + i,
    ]);
  }
  await db.query(
    "INSERT INTO learner_notes VALUES (1, ?, 'kept as is'), (2, ?, NULL), (3, NULL, 'no contact')",
    NOTES,
  );
});

afterAll(async () => {
  await db?.query(`DROP DATABASE IF EXISTS ${DATABASE}`);
  await db?.end();
  for (const dir of cleanup) rmSync(dir, { recursive: true, force: true });
});

/** A config on the privacy database: the two preset tables and one table of every column. */
function config(privacy: string) {
  const cfg = writeTestConfig(
    `[extract]\ninclude = ["auth_user", "auth_userprofile", "learner_notes"]\n\n[[tables]]\nname = "learner_notes"\n\n${privacy}`,
    { database: DATABASE },
  );
  cleanup.push(cfg.dir);
  return cfg;
}

function keyFile(dir: string): string {
  const file = join(dir, "pseudonym.key");
  writeFileSync(file, KEY, { mode: 0o600 });
  return file;
}

describe.skipIf(skip)("extraction with pseudonyms", () => {
  test("no personal value leaves in clear; each is its pseudonym; every other byte is unchanged", async () => {
    const off = config("");
    const on = config("");
    writeFileSync(
      on.file,
      `${readFileSync(on.file, "utf8")}[privacy]\npseudonymize = true\nkey_file = "${keyFile(on.dir)}"\ncolumns = ["learner_notes.contact"]\n`,
    );
    const offRun = await runPanorama(["--config", off.file, "run"]);
    const onRun = await runPanorama(["--config", on.file, "run"]);
    expect(onRun.code).toBe(0);
    expect(offRun.code).toBe(0);

    // Nothing in clear anywhere under the state directory (spool, manifests) or the datalake.
    const written = new Map([...allFiles(on.stateDir), ...allFiles(on.datalake)]);
    expect(written.size).toBeGreaterThan(0);
    for (const [name, text] of written) {
      const lower = text.toLowerCase();
      for (const value of PERSONAL) {
        const inFile = Buffer.from(value, "utf8").toString("latin1");
        expect({ name, value, found: text.includes(inFile) }).toEqual({ name, value, found: false });
        expect({ name, value, found: lower.includes(inFile.toLowerCase()) }).toEqual({
          name,
          value,
          found: false,
        });
      }
    }

    const clear = datalakeTables(off.datalake);
    const pseudonymous = datalakeTables(on.datalake);
    expect([...pseudonymous.keys()].sort()).toEqual([...clear.keys()].sort());
    const personal: Record<string, string[]> = {
      auth_user: ["username", "email", "first_name", "last_name"],
      auth_userprofile: ["name", "meta", "mailing_address", "city", "bio"],
      learner_notes: ["contact"],
    };
    // The source values, by their clear CSV cell (canonical form) in the run without pseudonyms.
    const sources = new Map<string, string>();
    for (const value of [...PERSONAL, '{"session_id": "abc"}']) {
      sources.set(value.replaceAll("\\", "\\\\").replaceAll("\r", "\\r").replaceAll("\n", "\\n"), value);
    }
    let replaced = 0;
    for (const [table, rows] of clear) {
      const other = pseudonymous.get(table)!;
      const header = rows[0]!;
      expect(other[0]).toEqual(header);
      expect(other.length).toBe(rows.length);
      for (let r = 1; r < rows.length; r++) {
        for (const [c, cell] of rows[r]!.entries()) {
          const got = other[r]![c];
          if (!personal[table]?.includes(header[c]!) || cell === "") {
            expect({ table, column: header[c], cell: got }).toEqual({ table, column: header[c], cell });
            continue;
          }
          const source = sources.get(cell);
          expect({ table, column: header[c], known: source !== undefined }).toEqual({
            table,
            column: header[c],
            known: true,
          });
          expect(got).toBe(referencePseudonym(source!));
          replaced++;
        }
      }
    }
    // every personal value, and the two non-empty `meta` cells
    expect(replaced).toBe(PERSONAL.length + 2);
  }, 120_000);

  test("tracking events: no listed value in clear, each its pseudonym, a username's the same as in auth_user", async () => {
    await db.query(
      "INSERT INTO auth_user VALUES (99, 'x', 'edx', 'Ed', 'Xavier', 'edx@example.com', 1, '2024-01-01 00:00:00')",
    );
    try {
      const cfg = config("");
      const logs = join(cfg.dir, "logs");
      mkdirSync(logs);
      // Bare JSON lines and Tutor's prefixed lines (whose prefix is not shipped).
      const events = fixtureEvents();
      writeFileSync(
        join(logs, "tracking.log"),
        events.map((e, i) => `${i % 2 ? prefixed(e, i) : e}\n`).join(""),
      );
      writeFileSync(
        cfg.file,
        `${readFileSync(cfg.file, "utf8")}[privacy]\npseudonymize = true\nkey_file = "${keyFile(cfg.dir)}"\n\n[logs]\npaths = ["${join(logs, "tracking.log")}"]\n`,
      );
      expect((await runPanorama(["--config", cfg.file, "run"])).code).toBe(0);
      expect((await runPanorama(["--config", cfg.file, "log-ship", "--once"])).code).toBe(0);

      const [header, ...users] = datalakeTables(cfg.datalake).get("auth_user")!;
      const edx = users.find((row) => row[header!.indexOf("id")] === "99")!;
      const username = edx[header!.indexOf("username")]!;
      expect(username).toBe(referencePseudonym("edx"));

      const shipped = (readdirSync(cfg.datalake, { recursive: true }) as string[])
        .filter((name) => name.endsWith(".gz"))
        // in file order: each object's key ends with the offset of its first line
        .sort((a, b) => Number(/-(\d+)\.gz$/.exec(a)?.[1]) - Number(/-(\d+)\.gz$/.exec(b)?.[1]))
        .flatMap((name) =>
          gunzipSync(readFileSync(join(cfg.datalake, name)))
            .toString("utf8")
            .trimEnd()
            .split("\n"),
        );
      expect(shipped).toHaveLength(events.length);
      const text = shipped.join("\n");
      let edxEvents = 0;
      const listed = new Map<string, number>();
      for (const [i, line] of shipped.entries()) {
        const before = JSON.parse(events[i]!);
        const after = JSON.parse(line);
        for (const field of DEFAULT_LOG_FIELDS) {
          const value = valueAt(before, field);
          if (typeof value !== "string" || value === "") {
            expect(valueAt(after, field)).toEqual(value);
            continue;
          }
          expect(valueAt(after, field)).toBe(referencePseudonym(value));
          listed.set(value, (listed.get(value) ?? 0) + 1);
          if (value === "edx" && field.endsWith("username")) {
            expect(valueAt(after, field)).toBe(username);
            edxEvents++;
          }
        }
      }
      expect(edxEvents).toBeGreaterThan(10);
      // Each value is left only where it stood at a path not listed ("response" is also a
      // forum content type): as many times as in the original, less its listed places.
      const count = (haystack: string, value: string) => haystack.split(`"${value}"`).length - 1;
      const original = events.join("\n");
      for (const [value, times] of listed) {
        expect({ value, left: count(text, value) }).toEqual({ value, left: count(original, value) - times });
      }
    } finally {
      await db.query("DELETE FROM auth_user WHERE id = 99");
    }
  });

  test("a [privacy] columns entry that is not a column of its table is a configuration error naming it", async () => {
    const cfg = config("");
    writeFileSync(
      cfg.file,
      `${readFileSync(cfg.file, "utf8")}[privacy]\npseudonymize = true\nkey_file = "${keyFile(cfg.dir)}"\ncolumns = ["auth_user.emial"]\n`,
    );
    const result = await runPanorama(["--config", cfg.file, "extract"]);
    expect(result.code).toBe(2);
    expect(messages(result.stderr)).toContain(
      `${cfg.file}: privacy.columns: "auth_user.emial": table auth_user has no column "emial" (did you mean "email"?)`,
    );
  });

  test("a [[tables]] entry whose fields leave out preset personal columns: extracted, its own pseudonymized", async () => {
    const cfg = config(
      `[[tables]]\nname = "auth_user"\nfields = [ { name = "id", type = "int" }, { name = "username", type = "varchar" } ]\n`,
    );
    writeFileSync(
      cfg.file,
      `${readFileSync(cfg.file, "utf8")}[privacy]\npseudonymize = true\nkey_file = "${keyFile(cfg.dir)}"\n`,
    );
    const result = await runPanorama(["--config", cfg.file, "run", "--tables", "auth_user"]);
    expect(messages(result.stderr)).not.toContain("[privacy] columns names");
    expect(result.code).toBe(0);
    const rows = datalakeTables(cfg.datalake).get("auth_user")!;
    expect(rows[0]).toEqual(["id", "username"]);
    expect(rows.slice(1).map((r) => r[1])).toEqual(
      expect.arrayContaining(USERS.map((u) => referencePseudonym(u.username))),
    );
    for (const [, text] of allFiles(cfg.datalake)) {
      for (const user of USERS) expect(text.includes(user.username)).toBe(false);
    }
  });

  test("a table of every column: an entry it lacks fails that table, naming the column", async () => {
    const cfg = config("");
    writeFileSync(
      cfg.file,
      `${readFileSync(cfg.file, "utf8")}[privacy]\npseudonymize = true\nkey_file = "${keyFile(cfg.dir)}"\ncolumns = ["learner_notes.phone"]\n`,
    );
    const result = await runPanorama(["--config", cfg.file, "extract"]);
    expect(result.code).toBe(1);
    expect(messages(result.stderr)).toContain(
      '[privacy] columns names "learner_notes.phone", which is not a column of its layout',
    );
  });

  test("an entry naming a column that is not text fails that table, naming its kind", async () => {
    const cfg = config("");
    writeFileSync(
      cfg.file,
      `${readFileSync(cfg.file, "utf8")}[privacy]\npseudonymize = true\nkey_file = "${keyFile(cfg.dir)}"\ncolumns = ["learner_notes.id"]\n`,
    );
    const result = await runPanorama(["--config", cfg.file, "extract", "--tables", "learner_notes"]);
    expect(result.code).toBe(1);
    expect(messages(result.stderr)).toContain(
      '[privacy] columns names "learner_notes.id", an integer column; only text columns hold names, e-mail addresses or IP addresses',
    );
  });

  test("switching pseudonyms on reads an incremental table in full: no older partition keeps clear values", async () => {
    await db.query(`DROP TABLE IF EXISTS learner_events;
      CREATE TABLE learner_events (id INT PRIMARY KEY, course_id VARCHAR(50) NOT NULL, email VARCHAR(100) NOT NULL,
        modified DATETIME(6) NOT NULL) CHARSET utf8mb4;
      INSERT INTO learner_events VALUES (1, 'course-a', 'old.a@private.example', '2020-01-01 00:00:00'),
        (2, 'course-b', 'old.b@private.example', '2020-02-01 00:00:00'),
        (3, 'course-c', 'recent.c@private.example', '2024-06-01 00:00:00')`);
    const table = `[[tables]]\nname = "learner_events"\npartition_fields = ["course_id"]\nincremental = { timestamp_field = "modified", overlap = "1h" }\n`;
    const cfg = writeTestConfig(`[extract]\npreset = "none"\n\n${table}`, { database: DATABASE });
    cleanup.push(cfg.dir);
    expect((await runPanorama(["--config", cfg.file, "run"])).code).toBe(0);
    const clear = [...allFiles(cfg.datalake).values()].join("\n");
    expect(clear).toContain("old.a@private.example");

    writeFileSync(
      cfg.file,
      `${readFileSync(cfg.file, "utf8")}\n[privacy]\npseudonymize = true\nkey_file = "${keyFile(cfg.dir)}"\ncolumns = ["learner_events.email"]\n`,
    );
    await db.query(
      "INSERT INTO learner_events VALUES (4, 'course-c', 'new.c@private.example', '2024-06-02 00:00:00')",
    );
    expect((await runPanorama(["--config", cfg.file, "run"])).code).toBe(0);
    const written = [...allFiles(cfg.datalake).values()].join("\n");
    for (const email of [
      "old.a@private.example",
      "old.b@private.example",
      "recent.c@private.example",
      "new.c@private.example",
    ]) {
      expect(written).not.toContain(email);
      expect(written).toContain(referencePseudonym(email));
    }
  });

  test("the packet path and mysql2's values give the same pseudonyms", async () => {
    // A POINT column cannot be copied from the packets: the second query takes the fallback path.
    await db.query(`DROP TABLE IF EXISTS two_paths;
      CREATE TABLE two_paths (id INT PRIMARY KEY, who VARCHAR(200) NULL, g POINT NULL) CHARSET utf8mb4`);
    for (const [i, value] of [...PERSONAL, "", null].entries()) {
      await db.query("INSERT INTO two_paths VALUES (?, ?, NULL)", [i, value]);
    }
    const connection = await connect({ ...mysqlConfig(), database: DATABASE });
    const pseudonyms = { columns: [1], pseudonymizer: new Pseudonymizer(KEY) };
    const read = async (sql: string, kinds: ("integer" | "string")[]) => {
      let text = "";
      const result = await streamCsv(
        connection,
        sql,
        [],
        kinds,
        (data) => {
          text += typeof data === "string" ? data : Buffer.from(data).toString("utf8");
          return undefined;
        },
        500,
        pseudonyms,
      );
      return { text, raw: result.raw };
    };
    try {
      const packets = await read("SELECT id, who FROM two_paths ORDER BY id", ["integer", "string"]);
      const parsed = await read("SELECT id, who, g FROM two_paths ORDER BY id", [
        "integer",
        "string",
        "string",
      ]);
      expect(packets.raw).toBe(true);
      expect(parsed.raw).toBe(false);
      const expected = [...PERSONAL.map(referencePseudonym), "", ""].map((p, i) => `${i},${p}`);
      expect(packets.text).toBe(expected.map((line) => `${line}\r\n`).join(""));
      expect(parsed.text).toBe(expected.map((line) => `${line},\r\n`).join(""));
    } finally {
      await close(connection);
    }
  });
});

function mysqlConfig() {
  const env = testEnv().mysql;
  return {
    host: env.host,
    port: env.port,
    user: env.user,
    password: env.password,
    database: env.database,
    socket: "",
    ssl: false,
    connections: 1,
  };
}
