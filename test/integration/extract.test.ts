// Extraction against the real MariaDB of scripts/test-env.sh, through the real CLI.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type mysql from "mysql2/promise";
import { quote } from "../../src/datalake/layout.ts";
import { listSpool } from "../../src/datalake/spool.ts";
import { canonicalForm } from "../../src/extract/csv.ts";
import { ADVERSARIAL_STRINGS as STRINGS } from "../support/adversarial.ts";
import { chunkingProxy } from "../support/chunking-proxy.ts";
import { runPanorama } from "../support/cli.ts";
import { skipWithoutTestEnv, testEnv } from "../support/env.ts";
import { testConnection, writeTestConfig } from "../support/mysql.ts";
import { decodeFile } from "../support/opencsv.ts";

const skip = skipWithoutTestEnv();
let db: mysql.Connection;

/** Every complete spool file: key → text. */
function spoolFiles(stateDir: string): Map<string, string> {
  const spool = join(stateDir, "spool");
  const files = new Map<string, string>();
  if (!existsSync(spool)) return files;
  for (const name of readdirSync(spool, { recursive: true }) as string[]) {
    if (name.endsWith(".csv")) files.set(name, readFileSync(join(spool, name), "utf8"));
  }
  return files;
}

function allSpoolNames(stateDir: string): string[] {
  const spool = join(stateDir, "spool");
  return existsSync(spool) ? (readdirSync(spool, { recursive: true }) as string[]) : [];
}

beforeAll(async () => {
  if (skip) return;
  db = await testConnection(testEnv().mysql.scratchDatabase);
});

afterAll(async () => {
  await db?.end();
});

describe.skipIf(skip)("adversarial values", () => {
  test("every value reads back, with the opencsv rules, as its canonical form", async () => {
    await db.query(`DROP TABLE IF EXISTS adversarial;
      CREATE TABLE adversarial (
        id INT PRIMARY KEY, s LONGTEXT NULL, b BIGINT NULL, dt6 DATETIME(6) NULL, dt DATETIME NULL, d DATE NULL,
        dec_ DECIMAL(30,10) NULL, dbl DOUBLE NULL, j JSON NULL, bin VARBINARY(16) NULL, t TIME NULL
      ) CHARSET utf8mb4`);
    const numbers: [string | null, string | null, number | null, string | null][] = [
      [
        "-9223372036854775808",
        "-12345678901234567890.0123456789",
        1.7976931348623157e308,
        '{"a": "b,\\"c", "n": null}',
      ],
      ["9223372036854775807", "0.0000000001", 2.2250738585072014e-308, '[1, "x", null, true]'],
      ["9007199254740993", "99999999999999999999.9999999999", 0.1 + 0.2, '"a JSON string value"'],
      ["0", "-0.5000000000", -1.5, "{}"],
      [null, null, 1e21, null],
      ["-1", "1.0000000000", 123456789.123, '"\\\\"'],
    ];
    for (const [i, s] of STRINGS.entries()) {
      const [b, dec, dbl, j] = numbers[i % numbers.length]!;
      await db.query("INSERT INTO adversarial VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", [
        i,
        s,
        b,
        i % 2 ? "2024-02-29 23:59:59.000001" : "1970-01-01 00:00:00.5",
        i % 3 ? "2038-01-19 03:14:08" : null,
        i % 2 ? "2024-02-29" : "1000-01-01",
        dec,
        dbl,
        j,
        i % 2 ? Buffer.from([0, 1, 0xab, 0xff]) : null,
        i % 2 ? "-838:59:59" : "12:00:00.25",
      ]);
    }
    const cfg = writeTestConfig(`[extract]\npreset = "none"\n\n[[tables]]\nname = "adversarial"\n`);
    const result = await runPanorama(["--config", cfg.file, "extract"]);
    expect(result.stderr).not.toContain(testEnv().mysql.password);
    expect(result.code).toBe(0);
    const files = spoolFiles(cfg.stateDir);
    expect([...files.keys()]).toEqual(["openedx/adversarial/lms=lms.example.com/adversarial.csv"]);
    const text = [...files.values()][0]!;
    expect(text.endsWith("\r\n")).toBe(true);
    const [header, ...records] = decodeFile(text);
    expect(header).toEqual(["id", "s", "b", "dt6", "dt", "d", "dec_", "dbl", "j", "bin", "t"]);

    const [source] = await db.query({ sql: "SELECT * FROM adversarial ORDER BY id", rowsAsArray: true });
    const rows = source as (string | number | Buffer | null)[][];
    expect(records.length).toBe(rows.length);
    const byId = new Map(records.map((r) => [r[0], r]));
    for (const row of rows) {
      const record = byId.get(String(row[0]))!;
      expect(record).toBeDefined();
      const [id, s, b, dt6, dt, d, dec, dbl, j, bin, t] = row;
      const text = (v: unknown) => (v === null ? "" : String(v));
      expect(record[0]).toBe(String(id));
      expect(record[1]).toBe(s === null ? "" : canonicalForm(String(s)));
      expect(record[2]).toBe(text(b));
      expect(record[3]).toBe(text(dt6));
      expect(record[4]).toBe(dt === null ? "" : `${dt}.000000`);
      expect(record[5]).toBe(text(d));
      expect(record[6]).toBe(text(dec));
      if (dbl === null) expect(record[7]).toBe("");
      else expect(Number(record[7])).toBe(dbl as number);
      expect(record[8]).toBe(j === null ? "" : canonicalForm(String(j)));
      expect(record[9]).toBe(bin === null ? "" : (bin as Buffer).toString("hex"));
      expect(record[10]).toBe(text(t));
    }
    // The BIGINT beyond 2^53 is exact, not rounded through a double.
    expect(text).toContain("9007199254740993");
    expect(text).toContain("-9223372036854775808");
  });
});

describe.skipIf(skip)("a table of many spool chunks", () => {
  test("every row reads back as its canonical form, across the writer's reused buffers", async () => {
    await db.query(`DROP TABLE IF EXISTS many_chunks;
      CREATE TABLE many_chunks (id INT PRIMARY KEY, s VARCHAR(300), n BIGINT) CHARSET utf8mb4;
      INSERT INTO many_chunks SELECT seq,
        CASE seq % 4 WHEN 0 THEN NULL WHEN 1 THEN CONCAT('row "', seq, '", \\\\ tail\n', REPEAT('é', seq % 90))
          WHEN 2 THEN REPEAT(CONCAT('x', seq), 1 + seq % 20) ELSE '' END,
        seq * 1000003 FROM seq_1_to_40000;`);
    const cfg = writeTestConfig(`[extract]\npreset = "none"\n\n[[tables]]\nname = "many_chunks"\n`);
    const result = await runPanorama(["--config", cfg.file, "extract"]);
    expect(result.code).toBe(0);
    const text = [...spoolFiles(cfg.stateDir).values()][0]!;
    expect(Buffer.byteLength(text)).toBeGreaterThan(8 * 256 * 1024);
    const [header, ...records] = decodeFile(text);
    expect(header).toEqual(["id", "s", "n"]);
    const [source] = await db.query({ sql: "SELECT * FROM many_chunks ORDER BY id", rowsAsArray: true });
    const expected = (source as (string | number | null)[][]).map(([id, s, n]) => [
      String(id),
      s === null ? "" : canonicalForm(String(s)),
      String(n),
    ]);
    expect(records.length).toBe(40_000);
    // The values hold what needs quoting and rewriting: quotes, commas, a backslash, a line feed.
    expect(expected[0]![1]).toStartWith('row "1", \\\\ tail\\n');
    expect(records).toEqual(expected);
  });
});

describe.skipIf(skip)("field partitions", () => {
  const expected: Record<string, string> = {
    "course-v1:O'Reilly+CS101+2024": "course-v1%3AO%27Reilly%2BCS101%2B2024",
    "100%_sure": "100%25_sure",
    "MITx/6.00x/2013_Spring": "MITx/6.00x/2013_Spring",
    "with space": "with%20space",
    "plus+sign": "plus%2Bsign",
    "ünï😀~x": "%C3%BCn%C3%AF%F0%9F%98%80~x",
  };

  test("one file per value, keys quoted like Python's urllib.parse.quote, values only as placeholders", async () => {
    await db.query(`DROP TABLE IF EXISTS pk_test;
      CREATE TABLE pk_test (id INT PRIMARY KEY, course_id VARCHAR(255) NULL, grade DOUBLE) CHARSET utf8mb4`);
    const ids = Object.keys(expected);
    for (const [i, courseId] of ids.entries()) {
      await db.query("INSERT INTO pk_test VALUES (?, ?, ?), (?, ?, ?)", [
        i * 2,
        courseId,
        i,
        i * 2 + 1,
        courseId,
        i + 0.5,
      ]);
    }
    await db.query("INSERT INTO pk_test VALUES (100, NULL, 1)");
    const cfg = writeTestConfig(
      `[extract]\npreset = "none"\n\n[[tables]]\nname = "pk_test"\npartition_fields = ["course_id"]\n`,
    );
    const result = await runPanorama(["--config", cfg.file, "extract"]);
    expect(result.code).toBe(0);
    const files = spoolFiles(cfg.stateDir);
    const wantedKeys = [
      ...ids.map((id) => `openedx/pk_test/lms=lms.example.com/course_id=${expected[id]}/pk_test.csv`),
      "openedx/pk_test/lms=lms.example.com/course_id=__HIVE_DEFAULT_PARTITION__/pk_test.csv",
    ].sort();
    expect([...files.keys()].sort()).toEqual(wantedKeys);
    for (const [i, id] of ids.entries()) {
      const text = files.get(`openedx/pk_test/lms=lms.example.com/course_id=${expected[id]}/pk_test.csv`)!;
      const [header, ...records] = decodeFile(text);
      // The partition column is not in the file: it is the partition.
      expect(header).toEqual(["id", "grade"]);
      expect(records.map((r) => r[0]).sort()).toEqual([String(i * 2), String(i * 2 + 1)]);
    }
    const manifest = JSON.parse(
      readFileSync(
        join(
          cfg.stateDir,
          "spool",
          `openedx/pk_test/lms=lms.example.com/course_id=${expected[ids[0]!]}/pk_test.csv.manifest.json`,
        ),
        "utf8",
      ),
    );
    expect(manifest).toMatchObject({
      table: "pk_test",
      partitions: [
        ["lms", "lms.example.com"],
        ["course_id", ids[0]],
      ],
      rows: 2,
    });
    expect(manifest.hash).toMatch(/^xxh64:[0-9a-f]{16}$/);
  });

  test("--dry-run reads and prints what would be written, and writes nothing", async () => {
    const cfg = writeTestConfig(
      `[extract]\npreset = "none"\n\n[[tables]]\nname = "pk_test"\npartition_fields = ["course_id"]\n`,
    );
    const result = await runPanorama(["--config", cfg.file, "extract", "--dry-run"]);
    expect(result.code).toBe(0);
    const key =
      "openedx/pk_test/lms=lms.example.com/course_id=course-v1%3AO%27Reilly%2BCS101%2B2024/pk_test.csv";
    const line = result.stdout.split("\n").find((l) => l.startsWith(`${key}\t`));
    expect(line).toMatch(/\t2 rows\t\d+ bytes$/);
    expect(existsSync(join(cfg.stateDir, "spool"))).toBe(false);
    // Every row was read and encoded: the bytes are those the real extraction writes.
    expect((await runPanorama(["--config", cfg.file, "extract"])).code).toBe(0);
    expect(line).toBe(`${key}\t2 rows\t${Buffer.byteLength(spoolFiles(cfg.stateDir).get(key)!)} bytes`);

    // Compressed: the dry run's bytes are the gzip file's.
    writeFileSync(
      cfg.file,
      readFileSync(cfg.file, "utf8").replace('target = "local"', 'target = "local"\ncompression = "gzip"'),
    );
    const gzipDry = await runPanorama(["--config", cfg.file, "extract", "--dry-run"]);
    const gzipLine = gzipDry.stdout.split("\n").find((l) => l.startsWith(`${key}.gz\t`));
    const gzipRun = await runPanorama(["--config", cfg.file, "extract"]);
    expect({ code: gzipRun.code, errors: gzipRun.code === 0 ? "" : gzipRun.stderr }).toEqual({
      code: 0,
      errors: "",
    });
    const gz = readFileSync(join(cfg.stateDir, "spool", `${key}.gz`));
    expect(gzipLine).toBe(`${key}.gz\t2 rows\t${gz.length} bytes`);
  });
});

describe.skipIf(skip)("incremental extraction", () => {
  const body = `[extract]\npreset = "none"\n\n[[tables]]\nname = "inc_test"\npartition_fields = ["course_id"]\nincremental = { timestamp_field = "modified", overlap = "1 hour" }\n`;
  const courses = ["course-v1:A+1+1", "course-v1:B+1+1", "course-v1:C+1+1", "course-v1:D+1+1"];

  async function extractedPartitions(
    cfg: { file: string; stateDir: string },
    args: string[] = [],
  ): Promise<string[]> {
    rmSync(join(cfg.stateDir, "spool"), { recursive: true, force: true });
    const result = await runPanorama(["--config", cfg.file, "extract", ...args]);
    expect(result.code).toBe(0);
    return [...spoolFiles(cfg.stateDir).keys()]
      .map((k) => decodeURIComponent(k.split("/")[3]!.slice("course_id=".length)))
      .sort();
  }

  test("later runs rewrite only the partitions with rows at or after watermark - overlap, when they changed; a skipped run loses nothing", async () => {
    const [a, b, c, d] = courses as [string, string, string, string];
    await db.query(`DROP TABLE IF EXISTS inc_test;
      CREATE TABLE inc_test (id INT PRIMARY KEY, course_id VARCHAR(255), state TEXT, modified DATETIME(6), KEY (modified))`);
    for (const [i, course] of courses.entries()) {
      const modified = course === d ? "2024-01-05 00:00:00" : "2024-01-01 00:00:00";
      await db.query("INSERT INTO inc_test VALUES (?, ?, 'old', ?), (?, ?, 'old', ?)", [
        i * 10,
        course,
        modified,
        i * 10 + 1,
        course,
        modified,
      ]);
    }
    const cfg = writeTestConfig(body);
    expect(await extractedPartitions(cfg)).toEqual(courses);
    const watermarks = JSON.parse(readFileSync(join(cfg.stateDir, "watermarks.json"), "utf8"));
    expect(watermarks.inc_test.value).toBe("2024-01-05 00:00:00.000000");

    // Nothing changed: only the partition holding the watermark's rows is inside the overlap, and
    // it is as at its last read (the unchanged probe, here by checksum: no auto-increment key).
    expect(await extractedPartitions(cfg)).toEqual([]);

    await db.query(
      "UPDATE inc_test SET state = 'new', modified = '2024-02-01 00:00:00' WHERE course_id = ?",
      [b],
    );
    expect(await extractedPartitions(cfg)).toEqual([b]);

    // Change A, skip the cron run, change C: the next run catches both, and leaves D (older) alone
    // (B, inside the overlap, is unchanged).
    await db.query("UPDATE inc_test SET modified = '2024-03-01 00:00:00' WHERE id = 0");
    await db.query("UPDATE inc_test SET modified = '2024-03-02 00:00:00' WHERE id = 20");
    expect(await extractedPartitions(cfg)).toEqual([a, c]);

    // A row stamped before the watermark but inside the overlap (a late commit) is still caught.
    await db.query("UPDATE inc_test SET modified = '2024-03-01 23:30:00' WHERE id = 31");
    expect(await extractedPartitions(cfg)).toEqual([d]);

    // A change outside the overlap without its timestamp moving waits for a full read.
    await db.query("UPDATE inc_test SET state = 'quiet' WHERE id = 11");
    expect(await extractedPartitions(cfg)).toEqual([]);

    // --full extracts every partition again.
    expect(await extractedPartitions(cfg, ["--full"])).toEqual(courses);
  });

  test("a run that fails midway leaves the watermark unchanged and no partial file", async () => {
    const cfg = writeTestConfig(body);
    expect((await extractedPartitions(cfg)).length).toBe(4);
    const before = readFileSync(join(cfg.stateDir, "watermarks.json"), "utf8");
    await db.query("UPDATE inc_test SET modified = '2024-06-01 00:00:00' WHERE id IN (0, 10)");
    rmSync(join(cfg.stateDir, "spool"), { recursive: true, force: true });
    // A plain file where partition B's directory must go makes that partition fail.
    const blocked = join(
      cfg.stateDir,
      "spool/openedx/inc_test/lms=lms.example.com",
      `course_id=${quote(courses[1]!)}`,
    );
    mkdirSync(join(blocked, ".."), { recursive: true });
    writeFileSync(blocked, "in the way");
    const result = await runPanorama(["--config", cfg.file, "extract"]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain("inc_test");
    expect(readFileSync(join(cfg.stateDir, "watermarks.json"), "utf8")).toBe(before);
    expect(allSpoolNames(cfg.stateDir).some((n) => n.includes(".partial-"))).toBe(false);
  });
});

describe.skipIf(skip)("errors", () => {
  test("a missing table and a missing column are named; other tables still run; exit 1", async () => {
    await db.query(`DROP TABLE IF EXISTS ok_table; CREATE TABLE ok_table (id INT PRIMARY KEY, name VARCHAR(20));
      INSERT INTO ok_table VALUES (1, 'one')`);
    const cfg = writeTestConfig(`[extract]
preset = "none"

[[tables]]
name = "no_such_table"

[[tables]]
name = "ok_table"

[[tables]]
name = "pk_test"
fields = [{ name = "id", type = "int" }, { name = "no_such_column", type = "varchar" }]

[[tables]]
name = "ok_tabel"
`);
    const result = await runPanorama(["--config", cfg.file, "--json", "extract"]);
    expect(result.code).toBe(1);
    const lines = result.stderr
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line) as { message: string });
    const said = (table: string) => lines.find((l) => l.message.startsWith(`${table}: table `))?.message;
    const database = testEnv().mysql.scratchDatabase;
    // A typo is told the close name the database has; a name close to none, the ways out.
    expect(said("ok_tabel")).toBe(
      `ok_tabel: table ${database}.ok_tabel does not exist (${database} has a table ok_table: fix the name in [[tables]] (or check [mysql] database))`,
    );
    expect(said("no_such_table")).toBe(
      `no_such_table: table ${database}.no_such_table does not exist (fix the name in [[tables]], or leave the entry out, or check [mysql] database)`,
    );
    expect(result.stderr).toContain('\\"no_such_column\\" not found in');
    expect(result.stderr).toContain("pk_test");
    expect(result.stderr).toContain("3 of 4 tables failed");
    expect([...spoolFiles(cfg.stateDir).keys()]).toEqual([
      "openedx/ok_table/lms=lms.example.com/ok_table.csv",
    ]);
  });

  test("a wrong password names host, port, user and database, with a hint, never the password", async () => {
    const env = testEnv().mysql;
    const cfg = writeTestConfig(`[extract]\npreset = "none"\n[[tables]]\nname = "ok_table"\n`, {
      password: "wrong-Secret-9876",
    });
    const result = await runPanorama(["--config", cfg.file, "extract"]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`${env.user}@${env.host}:${env.port}/${env.scratchDatabase}`);
    expect(result.stderr).toContain("check [mysql] user and password");
    expect(result.stderr).not.toContain("wrong-Secret-9876");
  });

  test("a spool that cannot be written is reported as such, not as a MySQL error; the other tables still run", async () => {
    await db.query(`DROP TABLE IF EXISTS blocked_table;
      CREATE TABLE blocked_table (id INT PRIMARY KEY); INSERT INTO blocked_table VALUES (1), (2);`);
    const cfg = writeTestConfig(
      `[extract]\npreset = "none"\n[[tables]]\nname = "blocked_table"\n[[tables]]\nname = "ok_table"\n`,
    );
    // A file where the table's spool directory must be made.
    mkdirSync(join(cfg.stateDir, "spool", "openedx"), { recursive: true });
    writeFileSync(join(cfg.stateDir, "spool", "openedx", "blocked_table"), "in the way");
    const result = await runPanorama(["--config", cfg.file, "extract"]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain("blocked_table: writing the spool failed: ENOTDIR");
    expect(result.stderr).not.toContain("MySQL ");
    expect(result.stderr).toContain("1 of 2 tables failed (blocked_table)");
    expect([...spoolFiles(cfg.stateDir).keys()]).toEqual([
      "openedx/ok_table/lms=lms.example.com/ok_table.csv",
    ]);
    await db.query("DROP TABLE blocked_table");
  });

  test("--tables naming an unconfigured table is a usage error", async () => {
    const cfg = writeTestConfig(`[extract]\npreset = "none"\n[[tables]]\nname = "ok_table"\n`);
    const result = await runPanorama(["--config", cfg.file, "extract", "--tables", "ok_tabel"]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('did you mean \\"ok_table\\"');
  });

  test("a connection killed mid-stream is read again once; killed again, an error, and no file is renamed into the spool", async () => {
    // A view that sleeps 2 ms per row keeps the query streaming long enough to be killed mid-way.
    await db.query(`DROP TABLE IF EXISTS big_table; DROP VIEW IF EXISTS slow_table;
      CREATE TABLE big_table (id INT PRIMARY KEY, payload VARCHAR(200));
      INSERT INTO big_table SELECT seq, REPEAT('x', 200) FROM seq_1_to_5000;
      CREATE VIEW slow_table AS SELECT id, payload FROM big_table WHERE SLEEP(0.002) = 0`);
    const cfg = writeTestConfig(`[extract]\npreset = "none"\n[[tables]]\nname = "slow_table"\n`);
    const child = runPanorama(["--config", cfg.file, "extract"]);
    const killer = await testConnection(testEnv().mysql.scratchDatabase);
    // MariaDB's KILL closes the session as a restart does ("Connection lost"): the first read is
    // read again, and the second is killed too.
    const killed = new Set<number>();
    for (let i = 0; i < 1000 && killed.size < 2; i++) {
      const [rows] = await killer.query(
        "SELECT ID, TIME_MS FROM information_schema.PROCESSLIST WHERE INFO LIKE 'SELECT `id`, `payload` FROM `slow_table`%' AND INFO NOT LIKE '%PROCESSLIST%'",
      );
      const found = (rows as { ID: number; TIME_MS: number }[])[0];
      // Let some rows reach the file first, so the kill lands mid-stream.
      if (found !== undefined && !killed.has(Number(found.ID)) && found.TIME_MS > 300) {
        await killer.query(`KILL ${Number(found.ID)}`);
        killed.add(Number(found.ID));
      } else await Bun.sleep(20);
    }
    await killer.end();
    expect(killed.size).toBe(2);
    const result = await child;
    expect(result.code).toBe(1);
    expect(result.stderr.split("slow_table is read again once the server answers")).toHaveLength(2);
    expect(result.stderr).toContain("1 of 1 tables failed (slow_table)");
    expect(spoolFiles(cfg.stateDir).size).toBe(0);
    expect(allSpoolNames(cfg.stateDir).some((n) => n.includes(".partial-"))).toBe(false);
  }, 60_000);
});

describe.skipIf(skip)("schema pull", () => {
  test("prints [[tables]] TOML with the fields and types in column order, loadable as config", async () => {
    const cfg = writeTestConfig(`[extract]\npreset = "none"\n[[tables]]\nname = "ok_table"\n`);
    const result = await runPanorama([
      "--config",
      cfg.file,
      "schema",
      "pull",
      "--tables",
      "ok_table,pk_test",
    ]);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain(
      '[[tables]]\nname = "ok_table"\nfields = [\n  { name = "id", type = "int" },',
    );
    expect(result.stdout).toContain('{ name = "course_id", type = "varchar" },  # varchar(255)');
    const { parseConfig } = await import("../../src/config/load.ts");
    const loaded = parseConfig(
      `mode = "CUSTOM"\nlms_host = "x"\n[datalake]\ntarget = "local"\n[extract]\npreset = "none"\n${result.stdout}`,
      "pulled.toml",
      {},
    );
    expect(loaded.config.tables.map((t) => t.name)).toEqual(["ok_table", "pk_test"]);
    expect(loaded.config.tables[1]!.fields!.map((f) => f.name)).toEqual(["id", "course_id", "grade"]);
  });

  test("a missing table is reported and the command exits 1", async () => {
    const cfg = writeTestConfig(`[extract]\npreset = "none"\n[[tables]]\nname = "ok_table"\n`);
    const result = await runPanorama(["--config", cfg.file, "schema", "pull", "--tables", "nope_table"]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain("nope_table");
  });
});

// partition-scan.ts: when every partition is read, one SELECT in key order is routed to the
// partitions' files. Compared with the same table read one partition at a time (gzip turns the
// scan off: the files are then decompressed), and made to give up where it cannot serve the read.
describe.skipIf(skip)("every partition in one scan", () => {
  const body = (table: string) =>
    `[extract]\npreset = "none"\n\n[[tables]]\nname = "${table}"\npartition_fields = ["course_id"]\n`;

  /** key (without .gz) → text, of every complete spool file, decompressed. */
  function spoolTexts(stateDir: string): Map<string, string> {
    const spool = join(stateDir, "spool");
    const texts = new Map<string, string>();
    for (const name of readdirSync(spool, { recursive: true }) as string[]) {
      if (name.endsWith(".csv")) texts.set(name, readFileSync(join(spool, name), "utf8"));
      if (name.endsWith(".csv.gz"))
        texts.set(
          name.slice(0, -3),
          Buffer.from(Bun.gunzipSync(readFileSync(join(spool, name)))).toString("utf8"),
        );
    }
    return texts;
  }

  /** Extract `table` by scan (plain) and one partition at a time (gzip); both logs and files. */
  async function bothWays(table: string): Promise<{
    scan: Map<string, string>;
    perPartition: Map<string, string>;
    scanLog: string;
  }> {
    const plain = writeTestConfig(body(table));
    const gzip = writeTestConfig(body(table));
    writeFileSync(
      gzip.file,
      readFileSync(gzip.file, "utf8").replace('target = "local"', 'target = "local"\ncompression = "gzip"'),
    );
    const scanRun = await runPanorama(["--config", plain.file, "--log-level", "debug", "extract", "--full"]);
    expect({ code: scanRun.code, stderr: scanRun.code === 0 ? "" : scanRun.stderr }).toEqual({
      code: 0,
      stderr: "",
    });
    const perRun = await runPanorama(["--config", gzip.file, "--log-level", "debug", "extract", "--full"]);
    expect(perRun.code).toBe(0);
    expect(perRun.stderr).not.toContain("in one scan");
    const result = {
      scan: spoolTexts(plain.stateDir),
      perPartition: spoolTexts(gzip.stateDir),
      scanLog: scanRun.stderr,
    };
    for (const leftover of [...allSpoolNames(plain.stateDir), ...allSpoolNames(gzip.stateDir)])
      expect(leftover).not.toContain(".partial-");
    rmSync(plain.dir, { recursive: true, force: true });
    rmSync(gzip.dir, { recursive: true, force: true });
    return result;
  }

  test("the same files, byte for byte, as one query per partition: NULL and unicode values, values that differ in case only, rows the reference encodes", async () => {
    await db.query(`DROP TABLE IF EXISTS scan_test;
      CREATE TABLE scan_test (id INT PRIMARY KEY, course_id VARCHAR(400) NULL, grade DOUBLE NULL,
        state LONGTEXT NULL, created DATETIME(6) NULL, KEY (course_id)) CHARSET utf8mb4 COLLATE utf8mb4_bin`);
    const courses = ["course-v1:A+B+C", "ünï😀~x", "k".repeat(240), null, "MITx/6.00x/2013_Spring", "a", "A"];
    const doubles = [0.5, 0.1 + 0.2, 1e-7, 1.5e300, -0, 12, null];
    const rows: unknown[][] = [];
    for (let id = 1; id <= 3000; id++) {
      rows.push([
        id,
        courses[(id * 5) % courses.length],
        doubles[id % doubles.length],
        STRINGS[id % STRINGS.length],
        id % 11 === 0 ? null : `2024-01-02 03:04:${String(id % 60).padStart(2, "0")}.${id % 7}`,
      ]);
    }
    for (let i = 0; i < rows.length; i += 500)
      await db.query("INSERT INTO scan_test VALUES ?", [rows.slice(i, i + 500)]);
    const { scan, perPartition, scanLog } = await bothWays("scan_test");
    expect(scanLog).toContain("scan_test: 7 partitions read in one scan");
    expect(scan.size).toBe(7);
    expect([...scan.keys()].sort()).toEqual([...perPartition.keys()].sort());
    for (const [key, text] of scan) expect(text === perPartition.get(key)).toBe(true);
    const nullKey =
      "openedx/scan_test/lms=lms.example.com/course_id=__HIVE_DEFAULT_PARTITION__/scan_test.csv";
    expect(decodeFile(scan.get(nullKey)!).length).toBe(1 + rows.filter((r) => r[1] === null).length);
  });

  test("values the collation folds together are partitions of their own: listed apart, each routed to its file by the scan", async () => {
    await db.query(`DROP TABLE IF EXISTS scan_fold;
      CREATE TABLE scan_fold (id INT PRIMARY KEY, course_id VARCHAR(40) NULL, n INT, KEY (course_id))
        CHARSET utf8mb4 COLLATE utf8mb4_general_ci;
      INSERT INTO scan_fold VALUES (1, 'Course', 1), (2, 'COURSE', 2), (3, 'other', 3), (4, 'Course ', 4), (5, NULL, 5)`);
    const { scan, perPartition, scanLog } = await bothWays("scan_fold");
    expect(scanLog).toContain("scan_fold: 5 partitions read in one scan");
    expect([...scan.keys()].sort()).toEqual([...perPartition.keys()].sort());
    for (const [key, text] of scan) expect(text === perPartition.get(key)).toBe(true);
    const ids = (value: string) =>
      decodeFile(scan.get(`openedx/scan_fold/lms=lms.example.com/course_id=${value}/scan_fold.csv`)!)
        .slice(1)
        .map((r) => r[0]);
    expect([ids("Course"), ids("COURSE"), ids("Course%20")]).toEqual([["1"], ["2"], ["4"]]);
  });

  test("a course id too long for a file name once encoded: extracted, its spool file's name cut, its key whole", async () => {
    const long = `course-v1:${"Org+".repeat(60)}X`;
    await db.query(`DROP TABLE IF EXISTS long_ids;
      CREATE TABLE long_ids (id INT PRIMARY KEY, course_id VARCHAR(255), KEY (course_id));
      INSERT INTO long_ids VALUES (1, 'course-v1:a+b+c'), (2, '${long}'), (3, '${long}')`);
    const cfg = writeTestConfig(body("long_ids"));
    const result = await runPanorama(["--config", cfg.file, "extract"]);
    expect({ code: result.code, stderr: result.code === 0 ? "" : result.stderr }).toEqual({
      code: 0,
      stderr: "",
    });
    // What the upload reads: the spool's entries, under their keys (S3 takes a key this long).
    const entries = await listSpool(join(cfg.stateDir, "spool"));
    expect(entries.map((e) => [e.key, e.rows]).sort()).toEqual([
      [`openedx/long_ids/lms=lms.example.com/course_id=${encodeURIComponent(long)}/long_ids.csv`, 2],
      ["openedx/long_ids/lms=lms.example.com/course_id=course-v1%3Aa%2Bb%2Bc/long_ids.csv", 1],
    ]);
  });

  test("the partitions of a watermark window are read one by one, not by a scan of the whole table", async () => {
    await db.query(`DROP TABLE IF EXISTS scan_window;
      CREATE TABLE scan_window (id INT AUTO_INCREMENT PRIMARY KEY, course_id VARCHAR(40), n INT,
        modified DATETIME(6), KEY (course_id), KEY (modified));
      INSERT INTO scan_window (course_id, n, modified)
        SELECT CONCAT('c', seq % 5), seq, '2024-01-01' + INTERVAL seq HOUR FROM seq_1_to_20000`);
    const cfg = writeTestConfig(
      `${body("scan_window")}incremental = { timestamp_field = "modified", overlap = "1 hour" }\n`,
    );
    const first = await runPanorama(["--config", cfg.file, "--log-level", "debug", "extract"]);
    expect(first.code).toBe(0);
    expect(first.stderr).toContain("scan_window: 5 partitions read in one scan");
    // Saves in four courses, two of them those of the rows the window (from an hour before the
    // last read's newest save) holds: the window lists four of the five, all changed, all read.
    await db.query("UPDATE scan_window SET n = -1, modified = '2026-06-01' WHERE id IN (7, 8, 19999, 20000)");
    const next = await runPanorama(["--config", cfg.file, "--log-level", "debug", "extract"]);
    expect(next.code).toBe(0);
    expect(next.stderr).not.toContain("in one scan");
    expect(next.stderr).not.toContain("not listed");
    expect(next.stderr).not.toContain("out of order");
    const c2 = spoolTexts(cfg.stateDir).get(
      "openedx/scan_window/lms=lms.example.com/course_id=c2/scan_window.csv",
    );
    expect(decodeFile(c2!).find((r) => r[0] === "7")?.[1]).toBe("-1");
    expect(next.stderr).toMatch(/scan_window: extracted.*"rows":16000,"files":4/);
    rmSync(cfg.dir, { recursive: true, force: true });
  });

  test("a column the module does not encode (BIT): read one partition at a time", async () => {
    await db.query(`DROP TABLE IF EXISTS scan_bit;
      CREATE TABLE scan_bit (id INT PRIMARY KEY, course_id VARCHAR(40), flag BIT(1));
      INSERT INTO scan_bit VALUES (1, 'x', 1), (2, 'y', 0), (3, 'x', 0)`);
    const { scan, perPartition, scanLog } = await bothWays("scan_bit");
    expect(scanLog).toContain(
      "scan_bit: a column the WebAssembly encoder does not encode: read one partition at a time",
    );
    expect(scan.size).toBe(2);
    for (const [key, text] of scan) expect(text === perPartition.get(key)).toBe(true);
  });

  test("the scan stopped by the server (a time limit, a query killer): read one partition at a time, the same files", async () => {
    // 100,000 rows of 300 bytes: the scan streams for a while after it is seen in the process list.
    await db.query(`DROP TABLE IF EXISTS scan_stopped;
      CREATE TABLE scan_stopped (id INT PRIMARY KEY, course_id VARCHAR(40), payload VARCHAR(300), KEY (course_id));
      INSERT INTO scan_stopped SELECT seq, CONCAT('course-v1:s+', seq % 6), REPEAT('y', 300) FROM seq_1_to_100000`);
    const reference = writeTestConfig(body("scan_stopped"));
    const unstopped = await runPanorama(["--config", reference.file, "extract", "--full"]);
    expect(unstopped.code).toBe(0);
    const cfg = writeTestConfig(body("scan_stopped"));
    const child = runPanorama(["--config", cfg.file, "extract", "--full"]);
    const killer = await testConnection(testEnv().mysql.scratchDatabase);
    let stopped = false;
    for (let i = 0; i < 2000 && !stopped; i++) {
      // The scan's statement (the partition field first); a partition's has a WHERE.
      const [rows] = await killer.query(
        "SELECT ID FROM information_schema.PROCESSLIST WHERE INFO LIKE 'SELECT `course_id`, `id`%' AND INFO NOT LIKE '%WHERE%'",
      );
      const found = (rows as { ID: number }[])[0];
      if (found !== undefined) {
        await killer.query(`KILL QUERY ${Number(found.ID)}`);
        stopped = true;
      } else await Bun.sleep(2);
    }
    await killer.end();
    const result = await child;
    expect(stopped).toBe(true);
    expect(result.code).toBe(0);
    expect(result.stderr).toContain(
      "scan_stopped: the server stopped the scan of every partition (Query execution was interrupted): read one partition at a time",
    );
    const files = spoolFiles(cfg.stateDir);
    const expected = spoolFiles(reference.stateDir);
    expect(files.size).toBe(6);
    expect([...files.keys()].sort()).toEqual([...expected.keys()].sort());
    for (const [key, text] of expected) expect(files.get(key) === text).toBe(true);
    await db.query("DROP TABLE scan_stopped");
    for (const c of [reference, cfg]) rmSync(c.dir, { recursive: true, force: true });
  }, 60_000);

  test("the connection lost mid-scan and the server gone: the table fails, named, and no partition's file reaches the spool", async () => {
    await db.query(`DROP TABLE IF EXISTS scan_lost;
      CREATE TABLE scan_lost (id INT PRIMARY KEY, course_id VARCHAR(40), payload VARCHAR(200), KEY (course_id));
      INSERT INTO scan_lost SELECT seq, CONCAT('c', seq % 5), REPEAT('x', 200) FROM seq_1_to_20000`);
    // The server's bytes a few at a time, one piece a turn: the scan is still streaming when the
    // proxy drops every connection.
    const proxy = await chunkingProxy({ host: testEnv().mysql.host, port: testEnv().mysql.port }, 3);
    const cfg = writeTestConfig(body("scan_lost"));
    writeFileSync(cfg.file, readFileSync(cfg.file, "utf8").replace(/^port = \d+$/m, `port = ${proxy.port}`));
    // The proxy does not come back: the run waits 300 ms for the server, not the 2 minutes it would.
    const child = runPanorama(["--config", cfg.file, "--log-level", "debug", "extract", "--full"], {
      env: { PANORAMA_TEST_SERVER_WAIT_MS: "300" },
    });
    const partialWithRows = () =>
      allSpoolNames(cfg.stateDir).some(
        (n) => n.includes(".partial-") && Bun.file(join(cfg.stateDir, "spool", n)).size > 16_384,
      );
    let dropped = false;
    for (let i = 0; i < 1500 && !dropped; i++) {
      if (partialWithRows()) {
        await proxy.close();
        dropped = true;
      } else await Bun.sleep(10);
    }
    if (!dropped) await proxy.close();
    const result = await child;
    expect(dropped).toBe(true);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain("scan_lost is read again once the server answers");
    expect(result.stderr).toContain("1 of 1 tables failed (scan_lost)");
    expect(result.stderr).not.toContain("in one scan");
    expect(spoolFiles(cfg.stateDir).size).toBe(0);
    expect(allSpoolNames(cfg.stateDir).some((n) => n.includes(".partial-"))).toBe(false);
    rmSync(cfg.dir, { recursive: true, force: true });
  }, 30_000);
});
