// `panorama status`: partitions uploaded but not registered in Glue are shown per table, and
// only where there is a catalog to register them in.
import { describe, expect, test } from "bun:test";
import { PartitionState } from "../../src/catalog/partitions.ts";
import { acquireLock } from "../../src/state/lock.ts";
import { saveRuns } from "../../src/state/runs.ts";
import { collectStatus, formatStatus } from "../../src/status.ts";
import { tempConfig } from "../support/temp-config.ts";

function config(target: "s3" | "local", mode = "FREE") {
  return tempConfig({
    mode,
    datalake: `target = "${target}"\nbucket = "acme-panorama"`,
    tables: `[[tables]]\nname = "grades"\npartition_fields = ["course_id"]\n[[tables]]\nname = "users"`,
  });
}

const ref = (course: string) => ({
  values: ["lms.example.com", course],
  bucket: "acme-panorama",
  prefix: `openedx/grades/lms=lms.example.com/course_id=${course}/`,
});

describe("status: partitions not registered", () => {
  test("counted per table from the catalog state, shown in text and JSON", async () => {
    const cfg = config("s3");
    const state = new PartitionState(cfg.state_dir, cfg.datalake.database);
    const grades = cfg.tables.find((t) => t.name === "grades")!.datalake_table;
    expect(state.add(grades, [ref("a"), ref("b"), ref("c")])).toBe(3);
    const status = await collectStatus(cfg);
    expect(status.tables.map((t) => [t.table, t.pending_partitions])).toEqual([
      ["grades", 3],
      ["users", 0],
    ]);
    expect(formatStatus(status)).toMatch(/^grades .* 3 partition\(s\)$/m);
  });

  test("tracking-log day partitions waiting for Glue are counted and said, in a mode that ships logs", async () => {
    const cfg = config("s3", "SAAS");
    const day = (d: string) => ({
      values: ["lms.example.com", "2026", "11", d],
      bucket: "acme-panorama",
      prefix: `openedx/tracking_logs/lms=lms.example.com/year=2026/month=11/day=${d}/`,
    });
    new PartitionState(cfg.state_dir, cfg.datalake.database).add("openedx_raw_tracking_logs", [
      day("28"),
      day("29"),
    ]);
    const status = await collectStatus(cfg);
    expect(status.logs_pending_partitions).toBe(2);
    expect(formatStatus(status)).toContain("2 tracking-log day partition(s) not registered in Glue yet");
    // FREE ships no logs: nothing to count.
    expect((await collectStatus(config("s3"))).logs_pending_partitions).toBeNull();
  });

  test("a local datalake has no catalog: null, and no column value", async () => {
    const cfg = config("local");
    new PartitionState(cfg.state_dir, cfg.datalake.database).add("openedx_raw_grades", [ref("a")]);
    const status = await collectStatus(cfg);
    expect(status.tables.map((t) => t.pending_partitions)).toEqual([null, null]);
    expect(formatStatus(status)).not.toContain("partition(s)");
  });
});

describe("status: absent preset tables", () => {
  test("a table the last run found absent says so, with no figures and no error", async () => {
    const cfg = config("local");
    const run = { time: "2026-12-04T10:00:00.000Z", command: "run" as const, skipped: 0, watermark: null };
    saveRuns(cfg.state_dir, {
      grades: { ...run, rows: 0, objects: 0, bytes: 0, seconds: 0, error: null, absent: true },
      users: { ...run, rows: 12, objects: 1, bytes: 345, seconds: 0.1, error: null },
    });
    const status = await collectStatus(cfg);
    expect(status.tables.map((t) => [t.table, t.last_run?.absent ?? false])).toEqual([
      ["grades", true],
      ["users", false],
    ]);
    const text = formatStatus(status, { wide: true });
    expect(text).toMatch(/^grades +2026-12-04 10:00:00 +absent$/m);
    expect(text).toMatch(/^users +2026-12-04 10:00:00 +12 +1 +345 +0 +0\.1$/m);
  });
});

describe("status: a run in progress, and the width of the table", () => {
  test("names the lock holder and since when while a run holds the lock, and nothing once it is released", async () => {
    const cfg = config("local");
    const lock = acquireLock(cfg.state_dir, "run");
    try {
      const status = await collectStatus(cfg);
      expect(status.in_progress.run).toMatchObject({ command: "run", pid: process.pid });
      const since = status.in_progress.run!.since!;
      const later = new Date(Date.parse(since) + 3 * 60_000);
      expect(formatStatus(status, { now: later })).toContain(
        `a run in progress: \`panorama run\` (pid ${process.pid}) since ${since.replace("T", " ").slice(0, 19)} UTC, 3 min ago`,
      );
    } finally {
      lock.release();
    }
    // A command with a space in it, as verify --repair takes the lock.
    const repair = acquireLock(cfg.state_dir, "verify --repair");
    try {
      expect((await collectStatus(cfg)).in_progress.run).toMatchObject({
        command: "verify --repair",
        pid: process.pid,
      });
    } finally {
      repair.release();
    }
    const after = await collectStatus(cfg);
    expect(after.in_progress).toEqual({ run: null, log_ship: null });
    expect(formatStatus(after)).not.toContain("in progress");
  });

  test("the default fits 120 columns with long names and errors; --wide shows every column in full", async () => {
    const name = "course_groups_unregisteredlearnercohortassignments";
    const cfg = tempConfig({ tables: `[[tables]]\nname = "${name}"\n[[tables]]\nname = "users"` });
    const error = `MySQL panorama@127.0.0.1:3306/edxapp: reading ${name}: ${"a long reason, ".repeat(12)}the end`;
    saveRuns(cfg.state_dir, {
      [name]: {
        time: "2026-12-04T10:00:00.000Z",
        command: "run",
        rows: 1234567,
        objects: 0,
        bytes: 987654321,
        skipped: 0,
        seconds: 12.5,
        watermark: "2026-12-04 09:59:59.123456",
        error,
      },
      users: {
        time: "2026-12-04T10:00:01.000Z",
        command: "run",
        rows: 20,
        objects: 1,
        bytes: 300,
        skipped: 3,
        seconds: 0.1,
        watermark: null,
        error: null,
      },
    });
    const text = formatStatus(await collectStatus(cfg));
    const widest = Math.max(...text.split("\n").map((l) => [...l].length));
    expect(widest).toBeLessThanOrEqual(120);
    // The error would start past column 100: it goes under the table, cut at 120.
    expect(text).toMatch(new RegExp(`^${name} +12-04 10:00 +1,234,567 +0 +987\\.7 MB +12\\.5$`, "m"));
    expect(text).toMatch(
      new RegExp(`\nerrors:\n  ${name}: MySQL panorama@127\\.0\\.0\\.1:3306/edxapp: reading .*…\n`),
    );
    expect(text).toContain("(errors cut at 120 columns: `panorama status --wide` shows them whole)");
    const wide = formatStatus(await collectStatus(cfg), { wide: true });
    expect(wide).toContain(error);
    expect(wide).toMatch(/^users .* 987,654,321|^users +2026-12-04 10:00:01 +20 +1 +300 +3 +0\.1/m);
  });

  test("when the other columns leave the error too little room, the errors are listed under the table", async () => {
    const name = "course_groups_unregisteredlearnercohortassignments";
    const cfg = tempConfig({ tables: `[[tables]]\nname = "${name}"\n[[tables]]\nname = "users"` });
    const error = "the datalake s3://bucket cannot be reached: NetworkError: ECONNREFUSED";
    const run = {
      command: "run" as const,
      rows: 1234567,
      objects: 0,
      bytes: 987654321,
      skipped: 0,
      seconds: 12.5,
    };
    saveRuns(cfg.state_dir, {
      [name]: { ...run, time: "2026-12-04T10:00:00.000Z", watermark: null, error },
      users: {
        ...run,
        time: "2026-12-04T10:00:01.000Z",
        watermark: null,
        error: "stopped: the datalake could not be written",
      },
    });
    const status = await collectStatus(cfg);
    // Files kept in the spool and partitions not registered: two more columns before the error.
    for (const table of status.tables) {
      table.spooled_files = 8;
      table.spooled_bytes = 123456789;
      table.pending_partitions = 1200;
    }
    const text = formatStatus(status);
    expect(Math.max(...text.split("\n").map((l) => [...l].length))).toBeLessThanOrEqual(120);
    expect(text).not.toMatch(/^table .* error$/m);
    expect(text).toMatch(
      new RegExp(
        `\nerrors:\n  ${name}: the datalake s3://bucket cannot be reached: .*\n  users: stopped: the datalake could not be written\n`,
      ),
    );
    // The spool and unregistered columns are cut as well as the errors: the note says lines.
    expect(text).toContain("(lines cut at 120 columns: `panorama status --wide` shows every column whole)");
    expect(text).not.toContain("errors cut");
  });
});

describe("status: tracking-log lines lost", () => {
  const base = {
    mode: "FREE" as const,
    target: "/lake",
    tables: [],
    logs: [],
    logs_pending_partitions: null,
    last_verify: null,
    in_progress: { run: null, log_ship: null },
  };
  test("counted and uncounted files read as people say them, never '0 line(s) lost in 0 file(s)'", async () => {
    const status = await collectStatus(config("local"));
    const lost = (files: number, lines: number, uncounted: number) =>
      formatStatus({
        ...status,
        ...base,
        logs_lost: [
          {
            log: "/var/log/tracking.log",
            lines,
            bytes: lines * 100,
            files,
            uncounted_files: uncounted,
            last: "2026-12-07T10:00:00.000Z",
          },
        ],
      });
    expect(lost(0, 0, 2)).toContain(
      "/var/log/tracking.log: lines (not counted) lost in 2 file(s) removed or truncated before they were shipped; the last 2026-12-07 10:00:00",
    );
    expect(lost(2, 9, 0)).toContain(
      "/var/log/tracking.log: 9 line(s) (900 bytes) lost in 2 file(s) removed or truncated before they were shipped;",
    );
    expect(lost(1, 3, 1)).toContain(
      "/var/log/tracking.log: 3 line(s) (300 bytes) lost in 1 file(s), and lines not counted in 1 more, removed or truncated",
    );
    expect(lost(0, 0, 2)).not.toContain("0 file(s)");
  });
});

describe("status: tracking logs", () => {
  test("a path too long for the line loses its beginning, not the numbers; --wide shows it whole", async () => {
    const status = await collectStatus(config("local"));
    // A Kubernetes container log's path, as the kubelet names it.
    const path = `/var/log/containers/lms-7d9c5b8f6d-abcde_openedx_lms-${"4567cdef".repeat(8)}.log`;
    const short = "/var/log/tracking.log";
    const logs = [path, short].map((p) => ({
      path: p,
      size: 1_234_567,
      committed: 1_000_000,
      unshipped: 234_567,
      last_upload: "2026-12-07T10:00:00.000Z",
    }));
    const text = formatStatus({ ...status, logs });
    const lines = text.split("\n");
    expect(Math.max(...lines.map((l) => [...l].length))).toBeLessThanOrEqual(120);
    expect(lines.find((l) => l.startsWith("tracking log"))).toMatch(/ +bytes +not shipped +last upload$/);
    const long = lines.find((l) => l.startsWith("…"))!;
    expect(long).toMatch(/^…\S*4567cdef\.log +1,234,567 +234,567 +2026-12-07 10:00:00$/);
    expect(path.endsWith(long.split(" ")[0]!.slice(1))).toBe(true);
    expect(lines.some((l) => l.startsWith(`${short} `))).toBe(true);
    const wide = formatStatus({ ...status, logs }, { wide: true });
    expect(wide).toContain(`${path}  1,234,567`);
  });
});
