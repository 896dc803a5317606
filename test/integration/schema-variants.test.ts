// The openedx preset, unchanged, on schemas of other Open edX releases (DESIGN §10): tables
// removed, columns removed, renamed and added, types widened. Each variant is the generated
// database altered; `panorama run` must exit 0, say what it skipped and filled, keep upstream's
// CSV header, and write every present value exactly (decoded with the opencsv rules).
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { readdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import type mysql from "mysql2/promise";
import reference from "../../src/config/openedx-tables.json" with { type: "json" };
import { type CheckResult, runChecks } from "../../src/doctor.ts";
import { canonicalForm, formatDouble } from "../../src/extract/csv.ts";
import { cleanEnv, runPanorama } from "../support/cli.ts";
import { skipWithoutTestEnv } from "../support/env.ts";
import { generatedDatabase, rootConnection, testConnection, writeTestConfig } from "../support/mysql.ts";
import { decodeFile } from "../support/opencsv.ts";

const skip = skipWithoutTestEnv();
// Generating the Open edX database and running the CLI take seconds each: more, on a busy
// machine, than bun's 5 s default.
setDefaultTimeout(120_000);

interface Variant {
  name: string;
  /** statements turning the generated database into this release's */
  alter: string[];
  absent: string[];
  /** table → preset columns the variant lacks */
  missing: Record<string, string[]>;
}

const VARIANTS: Variant[] = [
  { name: "as generated", alter: [], absent: [], missing: {} },
  {
    // An older release, or one without the enterprise and completion apps.
    name: "tables removed",
    alter: [
      "DROP TABLE enterprise_enterprisecustomer, enterprise_enterprisecustomeruser, enterprise_pendingenterprisecustomeruser",
      "DROP TABLE completion_blockcompletion, submissions_teamsubmission",
    ],
    absent: [
      "completion_blockcompletion",
      "enterprise_enterprisecustomer",
      "enterprise_enterprisecustomeruser",
      "enterprise_pendingenterprisecustomeruser",
      "submissions_teamsubmission",
    ],
    missing: {},
  },
  {
    name: "columns removed",
    alter: [
      "ALTER TABLE student_manualenrollmentaudit DROP COLUMN role",
      "ALTER TABLE site_configuration_siteconfiguration DROP COLUMN site_values",
      "ALTER TABLE submissions_submission DROP COLUMN team_submission_id, DROP COLUMN status",
      // The partitioned, incremental table loses a column too; and a host without a password column.
      "ALTER TABLE courseware_studentmodule DROP COLUMN done",
      "ALTER TABLE auth_user DROP COLUMN password",
    ],
    absent: [],
    missing: {
      student_manualenrollmentaudit: ["role"],
      site_configuration_siteconfiguration: ["site_values"],
      submissions_submission: ["status", "team_submission_id"],
      courseware_studentmodule: ["done"],
    },
  },
  {
    name: "columns renamed and added",
    alter: [
      "ALTER TABLE auth_userprofile CHANGE goals learning_goals LONGTEXT NULL",
      "ALTER TABLE certificates_generatedcertificate CHANGE `key` certificate_key VARCHAR(32) NOT NULL",
      // Added first, in the middle and last: the preset's order is kept whatever the table's.
      "ALTER TABLE auth_user ADD COLUMN sso_id VARCHAR(40) NULL FIRST, ADD COLUMN is_verified TINYINT(1) NOT NULL DEFAULT 1 AFTER username",
      "ALTER TABLE student_courseenrollment ADD COLUMN extra_json JSON NULL",
      "UPDATE student_courseenrollment SET extra_json = JSON_OBJECT('a', 'b,\"c')",
    ],
    absent: [],
    missing: {
      auth_userprofile: ["goals"],
      certificates_generatedcertificate: ["key"],
    },
  },
  {
    name: "types widened",
    alter: [
      "ALTER TABLE auth_user MODIFY id BIGINT NOT NULL AUTO_INCREMENT, MODIFY username VARCHAR(1000) NOT NULL, MODIFY first_name LONGTEXT NOT NULL",
      "ALTER TABLE courseware_studentmodule MODIFY id BIGINT NOT NULL AUTO_INCREMENT, MODIFY student_id BIGINT NOT NULL, MODIFY module_id VARCHAR(1000) NOT NULL",
      "ALTER TABLE student_courseenrollment MODIFY user_id BIGINT NOT NULL, MODIFY mode VARCHAR(500) NOT NULL",
      "ALTER TABLE grades_persistentcoursegrade MODIFY percent_grade DECIMAL(20,10) NOT NULL",
      // Values the wider types allow: beyond 2^53, and longer than the old VARCHAR.
      `INSERT INTO auth_user (id, password, username, first_name, last_name, email, is_superuser, is_staff, is_active, date_joined)
         VALUES (9007199254740993, 'pbkdf2$secret', '${"u".repeat(300)}', 'Ünïcode "first", name', '', 'big@example.com', 0, 0, 1, '2024-02-29 12:00:00.5')`,
    ],
    absent: [],
    missing: {},
  },
];

/** The preset's MySQL tables and their CSV headers (fields minus partition fields). */
const PRESET = reference.tables
  .filter((t) => t.datasource === "mysql")
  .map((t) => ({
    name: t.name,
    header: t.fields.map((f) => f.name).filter((f) => !(t.partitions?.partition_fields ?? []).includes(f)),
    partitionFields: t.partitions?.partition_fields ?? [],
  }));

/** Every CSV file of the local datalake, by table. */
function datalakeFiles(root: string): Map<string, string[]> {
  const files = new Map<string, string[]>();
  for (const name of readdirSync(root, { recursive: true }) as string[]) {
    if (!name.endsWith(".csv")) continue;
    const table = name
      .split("/")
      .pop()!
      .replace(/\.csv$/, "");
    files.set(table, [...(files.get(table) ?? []), join(root, name)]);
  }
  return files;
}

/** A value as the CSV must hold it, read with mysql2's exact options (DESIGN §5). */
function expectedCell(value: unknown, type: string): string {
  if (value === null || value === undefined) return "";
  if (type === "datetime" || type === "timestamp") {
    const [whole, fraction = ""] = String(value).split(".");
    return `${whole}.${fraction.padEnd(6, "0")}`;
  }
  if (type === "double" || type === "float") return formatDouble(Number(value));
  if (typeof value === "string") return canonicalForm(value);
  return String(value);
}

/** The rows the CSV must hold: the present columns' values, empty fields for the others. */
async function expectedRows(db: mysql.Connection, table: string, header: string[]): Promise<string[]> {
  const [columns] = await db.query<mysql.RowDataPacket[]>(
    "SELECT COLUMN_NAME AS name, DATA_TYPE AS type FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?",
    [table],
  );
  const types = new Map(columns.map((c) => [String(c.name), String(c.type)]));
  const present = header.filter((h) => types.has(h) && !(table === "auth_user" && h === "password"));
  const [rows] = await db.query<mysql.RowDataPacket[]>(
    `SELECT ${present.map((c) => `\`${c}\``).join(", ")} FROM \`${table}\``,
  );
  return rows
    .map((row) =>
      header.map((h) => (present.includes(h) ? expectedCell(row[h], types.get(h)!) : "")).join("\u0001"),
    )
    .sort();
}

const work: string[] = [];

afterAll(async () => {
  for (const dir of work) rmSync(dir, { recursive: true, force: true });
  if (skip) return;
  const root = await rootConnection();
  for (const [i] of VARIANTS.entries()) await root.query(`DROP DATABASE IF EXISTS panorama_variant_${i}`);
  await root.end();
});

describe.skipIf(skip)("the openedx preset on other releases' schemas (DESIGN §10)", () => {
  for (const [i, variant] of VARIANTS.entries()) {
    const database = `panorama_variant_${i}`;
    let db: mysql.Connection;
    let cfg: ReturnType<typeof writeTestConfig>;

    beforeAll(async () => {
      await generatedDatabase(database, {
        users: 30,
        courses: 3,
        enrollments: 60,
        studentmodule: 300,
        seed: 11,
      });
      db = await testConnection(database);
      for (const statement of variant.alter) await db.query(statement);
      cfg = writeTestConfig('[extract]\nexclude = ["course_structures"]\n', { database });
      work.push(cfg.dir);
    });

    afterAll(async () => {
      await db?.end();
    });

    test(`${variant.name}: exit 0, one line per absent table and per table with missing columns, every value exact`, async () => {
      const result = await runPanorama(["--config", cfg.file, "--json", "run"]);
      expect(result.stderr).not.toContain('"level":"error"');
      expect(result.code).toBe(0);
      const lines = result.stderr
        .split("\n")
        .filter(Boolean)
        .map((l) => JSON.parse(l) as { level: string; message: string; table?: string });
      const skipped = lines.filter((l) =>
        l.message.includes("skipped (this Open edX release has no such table)"),
      );
      expect(skipped.map((l) => `${l.level} ${l.table}`).sort()).toEqual(
        variant.absent.map((t) => `info ${t}`),
      );
      // The summary counts an absent table apart: neither done nor failed.
      expect(lines.find((l) => l.message === "run: finished")).toMatchObject({
        tables: PRESET.length - variant.absent.length,
        absent: variant.absent.length,
        failed: 0,
      });
      const filled = lines.filter((l) => l.message.includes("written as empty fields"));
      expect(filled.map((l) => `${l.level} ${l.table}`).sort()).toEqual(
        Object.keys(variant.missing)
          .map((t) => `warn ${t}`)
          .sort(),
      );
      for (const line of filled) {
        expect(line.message).toContain(
          `${variant.missing[line.table!]!.join(", ")} not in ${database}.${line.table}`,
        );
      }

      const files = datalakeFiles(cfg.datalake);
      expect([...files.keys()].sort()).toEqual(
        PRESET.map((t) => t.name)
          .filter((t) => !variant.absent.includes(t))
          .sort(),
      );
      for (const table of PRESET) {
        const paths = files.get(table.name) ?? [];
        if (variant.absent.includes(table.name)) continue;
        const rows: string[] = [];
        for (const path of paths) {
          const [header, ...records] = decodeFile(readFileSync(path, "utf8"));
          // Upstream's raw table columns, in order, whatever this database has.
          expect({ table: table.name, header }).toEqual({ table: table.name, header: table.header });
          rows.push(...records.map((r) => r.join("\u0001")));
        }
        expect({ table: table.name, rows: rows.sort() }).toEqual({
          table: table.name,
          rows: await expectedRows(db, table.name, table.header),
        });
      }
      // auth_user.password is never read: the column is empty in every row.
      const [authUser] = files.get("auth_user")!;
      const [header, ...users] = decodeFile(readFileSync(authUser!, "utf8"));
      const password = header!.indexOf("password");
      expect(password).toBe(1);
      expect(users.length).toBeGreaterThan(0);
      expect(users.every((u) => u[password] === "")).toBe(true);
    });

    if (variant.name === "tables removed") {
      test("status shows the absent tables; run --dry-run skips them and exits 0", async () => {
        const status = await runPanorama(["--config", cfg.file, "status", "--json"]);
        expect(status.code).toBe(0);
        const tables = (
          JSON.parse(status.stdout) as { tables: { table: string; last_run: { absent?: boolean } }[] }
        ).tables;
        expect(tables.filter((t) => t.last_run.absent).map((t) => t.table)).toEqual(
          PRESET.map((t) => t.name).filter((t) => variant.absent.includes(t)),
        );
        const text = await runPanorama(["--config", cfg.file, "status"]);
        expect(text.stdout).toMatch(/\nsubmissions_teamsubmission +\S+ \S+ +absent\n/);
        // --full: the tables present are planned although unchanged since the run above.
        const dry = await runPanorama(["--config", cfg.file, "run", "--dry-run", "--full"]);
        expect(dry.code).toBe(0);
        expect(dry.stdout).toContain("/auth_user/");
        for (const table of variant.absent) expect(dry.stdout).not.toContain(`/${table}/`);
      });

      test("doctor: the absent tables are said, not failed", async () => {
        const results: CheckResult[] = [];
        for await (const r of runChecks({ configPath: cfg.file, env: cleanEnv() })) results.push(r);
        const select = results.find((r) => r.check === "MySQL SELECT")!;
        expect(select.ok).toBe(true);
        expect(select.detail).toBe(
          `allowed on all ${PRESET.length - variant.absent.length} table(s); preset tables this release lacks (skipped): ${PRESET.map(
            (t) => t.name,
          )
            .filter((t) => variant.absent.includes(t))
            .join(", ")}`,
        );
      });

      test("a table the operator configured in [[tables]] stays strict: absent is an error", async () => {
        const strict = writeTestConfig(
          '[extract]\ninclude = ["auth_user", "completion_blockcompletion"]\n\n[[tables]]\nname = "completion_blockcompletion"\n',
          { database },
        );
        work.push(strict.dir);
        const result = await runPanorama(["--config", strict.file, "run"]);
        expect(result.code).toBe(1);
        expect(result.stderr).toContain(
          `completion_blockcompletion: table ${database}.completion_blockcompletion does not exist`,
        );
      });
    }

    if (variant.name === "columns removed") {
      test("the next (incremental) run warns again, once per table, and keeps the layout", async () => {
        const result = await runPanorama(["--config", cfg.file, "--json", "run"]);
        expect(result.code).toBe(0);
        const warnings = result.stderr.split("\n").filter((l) => l.includes("written as empty fields"));
        expect(warnings.length).toBe(Object.keys(variant.missing).length);
        const watermarks = JSON.parse(readFileSync(join(cfg.stateDir, "watermarks.json"), "utf8"));
        expect(watermarks.courseware_studentmodule.value).toMatch(/^\d{4}-/);
      });

      test("doctor: the missing columns are said, not failed, and never selected", async () => {
        const results: CheckResult[] = [];
        for await (const r of runChecks({ configPath: cfg.file, env: cleanEnv() })) results.push(r);
        const select = results.find((r) => r.check === "MySQL SELECT")!;
        expect(select.ok).toBe(true);
        expect(select.detail).toContain("preset columns it lacks (written empty): ");
        for (const [table, columns] of Object.entries(variant.missing)) {
          expect(select.detail).toContain(`${table} (${columns.join(", ")})`);
        }
      });

      test("fields the operator configured stay strict: a missing column is an error", async () => {
        const strict = writeTestConfig(
          '[extract]\ninclude = ["student_manualenrollmentaudit"]\n\n[[tables]]\nname = "student_manualenrollmentaudit"\nfields = [{ name = "id", type = "int" }, { name = "role", type = "varchar" }]\n',
          { database },
        );
        work.push(strict.dir);
        const result = await runPanorama(["--config", strict.file, "run"]);
        expect(result.code).toBe(1);
        const messages = result.stderr
          .split("\n")
          .filter(Boolean)
          .map((l) => (JSON.parse(l) as { message: string }).message);
        expect(messages).toContainEqual(
          expect.stringContaining(
            `student_manualenrollmentaudit: configured column "role" not found in ${database}.student_manualenrollmentaudit`,
          ),
        );
      });
    }

    if (variant.name === "columns removed") {
      // Last in this block: it drops the incremental table's timestamp column for good.
      test("a preset table without its partition or timestamp column is an error naming it, with the way out", async () => {
        await db.query("ALTER TABLE courseware_studentmodule DROP COLUMN modified");
        const result = await runPanorama([
          "--config",
          cfg.file,
          "--json",
          "run",
          "--tables",
          "courseware_studentmodule",
        ]);
        expect(result.code).toBe(1);
        const messages = result.stderr
          .split("\n")
          .filter(Boolean)
          .map((l) => (JSON.parse(l) as { message: string }).message);
        expect(messages).toContainEqual(
          `courseware_studentmodule: column "modified" (timestamp field) not found in ${database}.courseware_studentmodule (the preset reads this table incrementally by that column: configure the table in [[tables]] without it, or leave it out with [extract] exclude)`,
        );
        // doctor says it before a run fails on it.
        const doctor = await runPanorama(["--config", cfg.file, "doctor"]);
        expect(doctor.code).toBe(1);
        expect(doctor.stdout).toContain(
          'courseware_studentmodule (column "modified", its timestamp field, not found)',
        );
        expect(doctor.stdout).toContain("leave the table out with [extract] exclude");
      });
    }

    if (variant.name === "columns renamed and added") {
      test("schema pull lists the columns beyond the preset and the preset's missing ones, exit 0", async () => {
        const result = await runPanorama([
          "--config",
          cfg.file,
          "schema",
          "pull",
          "--tables",
          "auth_user,auth_userprofile",
        ]);
        expect(result.code).toBe(0);
        expect(result.stderr).toContain(
          "auth_user: columns beyond the configured fields, not extracted: sso_id, is_verified",
        );
        expect(result.stderr).toContain(
          "auth_userprofile: columns beyond the configured fields, not extracted: learning_goals, phone_number, state",
        );
        expect(result.stdout).toContain(
          '  # "goals": configured, not in this table (written as an empty field)',
        );
        // Beyond the preset: commented out, so that the block pasted changes no layout.
        expect(result.stdout).toMatch(
          /\n {2}# \{ name = "sso_id", type = "varchar" \}, {2}# varchar\(40\): not in the configured fields/,
        );
        expect(result.stdout).toContain(
          '  { name = "password", type = "varchar" },  # never read: always an empty field',
        );
      });

      test("schema pull's block for a preset table, pasted into [[tables]], writes the preset's CSV columns", async () => {
        const pulled = await runPanorama(["--config", cfg.file, "schema", "pull", "--tables", "auth_user"]);
        expect(pulled.code).toBe(0);
        const own = writeTestConfig(`[extract]\npreset = "none"\n${pulled.stdout}`, { database });
        try {
          const header = async (config: ReturnType<typeof writeTestConfig>) => {
            expect((await runPanorama(["--config", config.file, "run", "--tables", "auth_user"])).code).toBe(
              0,
            );
            const file = join(config.datalake, "openedx/auth_user/lms=lms.example.com/auth_user.csv");
            return readFileSync(file, "utf8").split("\r\n")[0];
          };
          expect(await header(own)).toBe(await header(cfg));
        } finally {
          rmSync(own.dir, { recursive: true, force: true });
        }
      });
    }
  }
});
