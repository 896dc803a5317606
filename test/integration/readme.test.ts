// The README's two set-up commands, as written. The demo runs for real, twice, in a temporary
// directory that reaches the checkout's scripts/ through a symbolic link (so `bash
// scripts/demo.sh` writes its default ./panorama-demo there). `npm test` is not run from inside
// the suite: the test checks that it is the command CI ends with.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { gunzipSync } from "node:zlib";
import openedx from "../../src/config/openedx-tables.json" with { type: "json" };
import { ROOT } from "../support/cli.ts";
import { skipWithoutTestEnv } from "../support/env.ts";

const README = readFileSync(join(ROOT, "README.md"), "utf8");

/** The commands of the README's first shell block, comments dropped. */
function firstCommands(): string[] {
  const block = /```sh\n([\s\S]*?)```/.exec(README)?.[1] ?? "";
  return block
    .split("\n")
    .map((line) =>
      line
        .replace(/\s+#.*$/, "")
        .replace(/^#.*$/, "")
        .trim(),
    )
    .filter(Boolean);
}

describe("README: the two commands at the top", () => {
  test("are the demo and the test command, in that order", () => {
    expect(firstCommands()).toEqual(["bash scripts/demo.sh", "npm test"]);
  });

  test("`npm test` is what CI runs, and it runs scripts/test.sh", () => {
    const ci = readFileSync(join(ROOT, ".ci", "run"), "utf8");
    const last = ci.trimEnd().split("\n").at(-1);
    expect(last).toBe(`exec ${firstCommands()[1]}`);
    const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { scripts: { test: string } };
    expect(pkg.scripts.test).toBe("bash scripts/test.sh");
  });
});

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? files(path) : [path];
  });
}

/** Relative path → sha256 of every file in the datalake. */
function fingerprint(datalake: string): Record<string, string> {
  return Object.fromEntries(
    files(datalake).map((f) => [
      relative(datalake, f),
      createHash("sha256").update(readFileSync(f)).digest("hex"),
    ]),
  );
}

/** Rows per table: CSV lines minus the header (a field never holds a line break), log events. */
function rowsPerTable(datalake: string): Record<string, number> {
  const base = join(datalake, "openedx");
  return Object.fromEntries(
    readdirSync(base).map((table) => [
      table,
      files(join(base, table)).reduce((n, file) => {
        const bytes = readFileSync(file);
        const text = (file.endsWith(".gz") ? gunzipSync(bytes) : bytes).toString("utf8");
        return n + text.split("\n").filter((l) => l !== "").length - (table === "tracking_logs" ? 0 : 1);
      }, 0),
    ]),
  );
}

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: "127.0.0.1", port }, () => {
      socket.destroy();
      resolve(true);
    });
    socket.on("error", () => resolve(false));
  });
}

async function demo(cwd: string): Promise<{ code: number; stdout: string; stderr: string }> {
  const command = firstCommands()[0]!;
  const child = Bun.spawn(["bash", "-c", command], { cwd, stdout: "pipe", stderr: "pipe", env: process.env });
  const [stdout, stderr, code] = await Promise.all([
    new Response(child.stdout).text(),
    new Response(child.stderr).text(),
    child.exited,
  ]);
  return { code, stdout, stderr };
}

describe.skipIf(skipWithoutTestEnv())("README: bash scripts/demo.sh", () => {
  let work = "";
  let dir = "";
  let datalake = "";
  let first: Record<string, string> = {};
  beforeAll(() => {
    work = mkdtempSync(join(tmpdir(), "panorama-readme-"));
    symlinkSync(join(ROOT, "scripts"), join(work, "scripts"));
    dir = join(work, "panorama-demo");
    datalake = join(dir, "datalake");
  });
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  test("fills a local datalake with every generated row, ships the sample log, stops its server", async () => {
    const result = await demo(work);
    expect({ code: result.code, stderr: result.code === 0 ? "" : result.stderr.slice(-3000) }).toEqual({
      code: 0,
      stderr: "",
    });
    expect(result.stdout).toContain("every generated row is in the datalake");

    const generated = JSON.parse(readFileSync(join(dir, "generated.json"), "utf8")).tables as Record<
      string,
      number
    >;
    const rows = rowsPerTable(datalake);
    const mysqlTables = openedx.tables.filter((t) => t.datasource === "mysql").map((t) => t.name);
    // Every MySQL table of the preset, with exactly the generated rows; course structures (MongoDB)
    // are not part of the demo.
    expect(Object.keys(rows).sort()).toEqual([...mysqlTables, "tracking_logs"].sort());
    for (const table of mysqlTables)
      expect({ table, rows: rows[table] }).toEqual({ table, rows: generated[table]! });
    const events = readFileSync(join(ROOT, "test", "fixtures", "tracking", "events.jsonl"), "utf8");
    expect(rows.tracking_logs).toBe(events.split("\n").filter(Boolean).length);

    // The layout: base partition, then course_id percent-encoded like Python's quote().
    const studentmodule = readdirSync(
      join(datalake, "openedx", "courseware_studentmodule", "lms=lms.demo.example"),
    );
    expect(studentmodule).toContain("course_id=course-v1%3AedX%2BDemoX%2BDemo_Course");
    expect(studentmodule).toContain("course_id=course-v1%3AUPValenciaX%2BBD~201.1x%2B3T2024");
    expect(studentmodule).toContain("course_id=course-v1%3AUniversit%C3%A4t_Wien%2B%C3%96konomie-1%2B2024_S");
    expect(existsSync(join(datalake, "openedx", "auth_user", "lms=lms.demo.example", "auth_user.csv"))).toBe(
      true,
    );
    expect(result.stdout).toContain("openedx/tracking_logs/lms=lms.demo.example/year=");

    // The DDL goes to a file, named on the way; the rows check ends the output.
    expect(readFileSync(join(dir, "catalog.sql"), "utf8")).toContain(
      "CREATE EXTERNAL TABLE IF NOT EXISTS `panorama`.`openedx_raw_auth_user`",
    );
    expect(result.stdout).toContain(`the Athena DDL of the tables and views: ${join(dir, "catalog.sql")}`);
    expect(result.stdout).not.toContain("CREATE EXTERNAL TABLE");
    expect(result.stdout.trimEnd().split("\n").at(-1)).toBe("every generated row is in the datalake");
    // The private server is gone.
    const port = Number(/^port = (\d+)$/m.exec(readFileSync(join(dir, "panorama.toml"), "utf8"))?.[1]);
    expect(port).toBeGreaterThan(0);
    expect(await portOpen(port)).toBe(false);
    expect(statSync(join(dir, "panorama.toml")).mode & 0o077).toBe(0);
    first = fingerprint(datalake);
  }, 180_000);

  test("runs again: incremental, and the datalake ends the same", async () => {
    expect(Object.keys(first).length).toBeGreaterThan(0);
    const result = await demo(work);
    expect({ code: result.code, stderr: result.code === 0 ? "" : result.stderr.slice(-3000) }).toEqual({
      code: 0,
      stderr: "",
    });
    expect(result.stdout).toContain("every generated row is in the datalake");
    const studentmodule = result.stderr
      .split("\n")
      .filter((l) => l.startsWith("{"))
      .map((l) => JSON.parse(l) as { message: string; rows?: number; unchanged_not_read?: number })
      .find((l) => l.message === "courseware_studentmodule: done");
    // Nothing changed: the courses the overlap window selects are probed, not read (DESIGN §7).
    expect(studentmodule?.rows).toBe(0);
    expect(studentmodule?.unchanged_not_read).toBeGreaterThan(0);
    expect(result.stderr).toContain("log-ship: uploaded 0 events");
    expect(fingerprint(datalake)).toEqual(first);
  }, 180_000);
});
