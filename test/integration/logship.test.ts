// `panorama log-ship` as cron and systemd run it: mode refusals, options, its own lock, SIGTERM
// in --follow, and crash safety — SIGKILL at random moments while a writer appends and rotates
// the log, then one --once: every event in the datalake exactly once, in source order.
import { afterAll, describe, expect, test } from "bun:test";
import {
  chmodSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { cleanEnv, runPanorama } from "../support/cli.ts";
import { spawnFollow, startWriter, waitForLock, watchStderr } from "../support/log-ship-process.ts";
import {
  asBytes,
  logShipSetup,
  removeLogShipSetups,
  shippedLines,
  shippedObjects,
  writerEvent,
} from "../support/log-writer.ts";
import { parseExposition, seriesValue } from "../support/prometheus.ts";

const env = cleanEnv();
afterAll(removeLogShipSetups);
const text = (lines: string[]) => lines.map((l) => `${l}\n`).join("");
const events = (from: number, to: number) =>
  Array.from({ length: to - from + 1 }, (_, i) => writerEvent(from + i));

/**
 * Each event once, in order within each source file, each line exactly the writer's event.
 * Returns how many source files (file ids) the objects came from.
 */
function expectExactlyOnce(datalake: string, written: number): number {
  const count = new Array<number>(written + 1).fill(0);
  const byFile = new Map<string, number[]>();
  for (const object of shippedObjects(datalake)) {
    const seqs = byFile.get(object.fileId) ?? [];
    byFile.set(object.fileId, seqs);
    for (const line of object.lines) {
      const seq = Number(/"seq": (\d+)/.exec(line)?.[1]);
      expect(line).toBe(asBytes(writerEvent(seq)));
      seqs.push(seq);
      count[seq] = (count[seq] ?? 0) + 1;
    }
  }
  for (const seqs of byFile.values()) {
    for (let i = 1; i < seqs.length; i++) expect(seqs[i]!).toBe(seqs[i - 1]! + 1);
  }
  const wrong = count.map((n, seq) => [seq, n]).filter(([seq, n]) => seq! > 0 && n !== 1);
  expect(wrong).toEqual([]);
  return byFile.size;
}

describe("log-ship on the command line", () => {
  test("FREE and DEMO refuse politely: exit 0, a message, nothing read or written", async () => {
    for (const mode of ["FREE", "DEMO"]) {
      const setup = logShipSetup({ mode });
      writeFileSync(setup.file, text(events(1, 2)));
      const result = await runPanorama(["--config", setup.configFile, "log-ship", "--once"], { env });
      expect(result.code).toBe(0);
      expect(result.stderr).toContain(`${mode} mode`);
      expect(result.stderr).toContain("the shipping of tracking logs is skipped");
      expect(existsSync(setup.stateDir)).toBe(false);
      expect(existsSync(setup.datalake)).toBe(false);
    }
  });

  test("--once and --follow together are a usage error", async () => {
    const setup = logShipSetup();
    const result = await runPanorama(["--config", setup.configFile, "log-ship", "--once", "--follow"], {
      env,
    });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("--once and --follow");
  });

  test("--once ships and checkpoints; --dry-run prints keys and writes nothing", async () => {
    const setup = logShipSetup();
    writeFileSync(setup.file, text([...events(1, 3), "not an event"]));
    const dry = await runPanorama(["--config", setup.configFile, "--json", "log-ship", "--dry-run"], { env });
    expect(dry.code).toBe(0);
    expect(dry.stdout).toMatch(
      /^upload\topenedx\/tracking_logs\/lms=lms\.example\.com\/year=2024\/.*\t3 events\t\d+ bytes\n$/,
    );
    expect(existsSync(setup.stateDir)).toBe(false);
    const once = await runPanorama(["--config", setup.configFile, "--json", "log-ship", "--once"], { env });
    expect(once.code).toBe(0);
    expect(once.stdout).toBe("");
    const summary = once.stderr
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l))
      .at(-1);
    expect(summary).toMatchObject({ objects: 1, events: 3, skipped: 1 });
    expect(shippedLines(setup.datalake)).toEqual(events(1, 3));
    expect(
      JSON.parse(readFileSync(join(setup.stateDir, "logship", "checkpoints.json"), "utf8")).files,
    ).toHaveLength(1);
  });

  test("its own lock: a second log-ship exits 3, while run's lock stays free", async () => {
    const setup = logShipSetup();
    writeFileSync(setup.file, text(events(1, 2)));
    const follower = spawnFollow(setup.configFile);
    const lock = join(setup.stateDir, "logship", "panorama.lock");
    for (let i = 0; i < 200 && !(existsSync(lock) && readFileSync(lock, "utf8").includes("pid")); i++) {
      await Bun.sleep(20);
    }
    const second = await runPanorama(["--config", setup.configFile, "log-ship", "--once"], { env });
    expect(second.code).toBe(3);
    expect(second.stderr).toContain(`pid ${follower.pid}, log-ship`);
    expect(existsSync(join(setup.stateDir, "panorama.lock"))).toBe(false);
    follower.kill("SIGTERM");
    expect(await follower.exited).toBe(0);
  });

  test("--follow: SIGTERM uploads what is buffered, checkpoints and exits 0", async () => {
    // upload_timeout is far away: only the stop can make these batches go up.
    const setup = logShipSetup({ logs: 'upload_timeout = "1h"' });
    writeFileSync(setup.file, text(events(1, 5)));
    const follower = spawnFollow(setup.configFile);
    await waitForLock(setup.stateDir, follower.pid);
    await Bun.sleep(300);
    writeFileSync(setup.file, text(events(6, 9)), { flag: "a" });
    await Bun.sleep(400);
    expect(shippedLines(setup.datalake)).toEqual([]);
    follower.kill("SIGTERM");
    expect(await follower.exited).toBe(0);
    expect(shippedLines(setup.datalake)).toEqual(events(1, 9));
    const stderr = await new Response(follower.stderr).text();
    expect(stderr).toContain("SIGTERM: uploading what is buffered");
  });

  test("--follow writes its files' lag to the metrics textfile while it runs, not only when it stops", async () => {
    const setup = logShipSetup({ logs: 'upload_timeout = "1h"', top: '[metrics]\ntextfile = "METRICS"' });
    const textfile = join(setup.dir, "metrics", "panorama.prom");
    writeFileSync(setup.configFile, setup.toml.replace("METRICS", textfile));
    writeFileSync(setup.file, text(events(1, 5)));
    const follower = spawnFollow(setup.configFile);
    const unshipped = { file: setup.file };
    try {
      await waitForLock(setup.stateDir, follower.pid);
      for (let i = 0; i < 1000 && !existsSync(textfile); i++) await Bun.sleep(10);
      expect(follower.exitCode).toBeNull();
      const running = parseExposition(readFileSync(textfile, "utf8"));
      // Read, not uploaded yet (upload_timeout is an hour away): all of it still to ship.
      expect(seriesValue(running, "panorama_log_unshipped_bytes", unshipped)).toBe(statSync(setup.file).size);
    } finally {
      follower.kill("SIGTERM");
    }
    expect(await follower.exited).toBe(0);
    const stopped = parseExposition(readFileSync(textfile, "utf8"));
    expect(seriesValue(stopped, "panorama_log_unshipped_bytes", unshipped)).toBe(0);
    expect(seriesValue(stopped, "panorama_last_exit_code", { command: "log-ship" })).toBe(0);
  });
});

describe("configured paths with nothing to read", () => {
  test("--once: a missing path and a directory exit 1 naming them, with a hint; the other file ships", async () => {
    const setup = logShipSetup();
    writeFileSync(setup.file, text(events(1, 3)));
    const missing = join(setup.logs, "nonexistent.log");
    const dir = join(setup.logs, "a-directory");
    mkdirSync(dir);
    // As root (the tests) a mode 000 file can still be read: a directory stands for a path
    // that cannot be read; the unit tests cover an unopenable file when not run as root.
    writeFileSync(
      setup.configFile,
      setup.toml.replace(`paths = ["${setup.file}"]`, `paths = ["${missing}", "${dir}", "${setup.file}"]`),
    );
    const once = await runPanorama(["--config", setup.configFile, "--json", "log-ship", "--once"], { env });
    expect(once.code).toBe(1);
    const lines = once.stderr
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    const errors = lines.filter((l) => l.level === "error").map((l) => l.message);
    expect(errors).toEqual([
      `${missing} (in logs.paths) does not exist: it is not shipped`,
      `${dir} (in logs.paths) is a directory: it is not shipped`,
    ]);
    expect(lines.some((l) => /^hint: check logs\.paths .* the user log-ship runs as/.test(l.message))).toBe(
      true,
    );
    expect(lines.at(-1)).toMatchObject({ events: 3 });
    expect(shippedLines(setup.datalake)).toEqual(events(1, 3));
  });

  // Root can open any file: the check runs the CLI as nobody (setpriv), which can open none here.
  test.skipIf(process.getuid?.() !== 0 || Bun.which("setpriv") === null)(
    "--once: a file the user cannot open exits 1 naming it",
    async () => {
      const setup = logShipSetup();
      writeFileSync(setup.file, text(events(1, 3)));
      chmodSync(setup.file, 0o600);
      chmodSync(setup.dir, 0o777);
      chmodSync(setup.logs, 0o755);
      chmodSync(setup.configFile, 0o644);
      const { code, stderr } = await runPanorama(
        ["--config", setup.configFile, "--json", "log-ship", "--once"],
        { env: { ...env, HOME: setup.dir }, uid: 65534 },
      );
      expect(code).toBe(1);
      expect(stderr).toContain(`cannot open ${setup.file}: EACCES`);
      expect(stderr).toContain("the user log-ship runs as");
    },
  );

  // A glob sees nothing in a directory it cannot list: as nobody (setpriv), the run names that
  // directory, not only "matches no file" (which sends the operator to fix a right path).
  test.skipIf(process.getuid?.() !== 0 || Bun.which("setpriv") === null)(
    "--once and doctor: a glob under a directory the user cannot list names that directory",
    async () => {
      const setup = logShipSetup();
      const pods = join(setup.logs, "pods");
      const hidden = join(pods, "lms-0");
      mkdirSync(hidden, { recursive: true });
      writeFileSync(join(hidden, "tracking.log"), text(events(1, 3)));
      chmodSync(hidden, 0o700);
      chmodSync(setup.dir, 0o777);
      chmodSync(setup.logs, 0o755);
      chmodSync(pods, 0o755);
      chmodSync(setup.configFile, 0o644);
      const glob = join(pods, "*", "tracking.log");
      // Without MongoDB, whose check in doctor waits 10 s for a server that is not there.
      writeFileSync(
        setup.configFile,
        `${setup.toml.replace(`paths = ["${setup.file}"]`, `paths = ["${glob}"]`)}\n[extract]\nexclude = ["course_structures"]\n`,
      );
      const asNobody = (args: string[]) =>
        runPanorama(["--config", setup.configFile, ...args], {
          env: { ...env, HOME: setup.dir },
          uid: 65534,
        });
      const once = await asNobody(["log-ship", "--once"]);
      expect(once.code).toBe(1);
      expect(once.stderr).toContain(
        `${glob} (in logs.paths) matches no file: its directory ${hidden} cannot be listed by this user (EACCES): it is not shipped`,
      );
      const doctor = await asNobody(["doctor"]);
      expect(doctor.stdout).toContain(
        `${glob}: its directory ${hidden} cannot be listed by this user (EACCES)`,
      );
      expect(doctor.stdout).toContain("run panorama as a user that can list those directories");
      // Once the user may list the directory, the same glob ships the file: the path was right
      // all along. (Not as root: state_dir is the user's now, and root refuses to write into it.)
      chmodSync(hidden, 0o755);
      chmodSync(join(hidden, "tracking.log"), 0o644);
      const listed = await asNobody(["log-ship", "--once"]);
      expect(listed.code, listed.stderr).toBe(0);
      expect(shippedLines(setup.datalake)).toEqual(events(1, 3));
    },
  );

  test("--follow: a missing path is warned about and the file shipped once it appears", async () => {
    const setup = logShipSetup();
    const follower = spawnFollow(setup.configFile);
    const stderr = watchStderr(follower.stderr as ReadableStream<Uint8Array>);
    const warning = `${setup.file} (in logs.paths) does not exist`;
    expect(await stderr.until(warning)).toBe(true);
    writeFileSync(setup.file, text(events(1, 3)));
    for (let i = 0; i < 600 && shippedLines(setup.datalake).length < 3; i++) await Bun.sleep(50);
    follower.kill("SIGTERM");
    expect(await follower.exited).toBe(0);
    expect(shippedLines(setup.datalake)).toEqual(events(1, 3));
    expect((await stderr.all()).split(warning)).toHaveLength(2);
  });
});

describe("status", () => {
  test("per tracking log: bytes not shipped yet and the last upload, as text and --json", async () => {
    const setup = logShipSetup();
    writeFileSync(setup.file, text(events(1, 3)));
    const before = JSON.parse(
      (await runPanorama(["--config", setup.configFile, "status", "--json"], { env })).stdout,
    );
    const size = Buffer.byteLength(text(events(1, 3)));
    expect(before.logs).toEqual([
      { path: setup.file, size, committed: 0, unshipped: size, last_upload: null },
    ]);
    expect((await runPanorama(["--config", setup.configFile, "log-ship", "--once"], { env })).code).toBe(0);
    writeFileSync(setup.file, text(events(4, 4)), { flag: "a" });
    const pending = Buffer.byteLength(text(events(4, 4)));

    const json = await runPanorama(["--config", setup.configFile, "status", "--json"], { env });
    expect(json.code).toBe(0);
    const [log] = JSON.parse(json.stdout).logs;
    expect(log).toMatchObject({
      path: setup.file,
      size: size + pending,
      committed: size,
      unshipped: pending,
    });
    expect(Math.abs(Date.now() - Date.parse(log.last_upload))).toBeLessThan(60_000);

    const plain = await runPanorama(["--config", setup.configFile, "status"], { env });
    expect(plain.code).toBe(0);
    const lines = plain.stdout.split("\n");
    expect(lines.find((l) => l.startsWith("tracking log"))).toMatch(
      /^tracking log +bytes +not shipped +last upload$/,
    );
    // The path whole, or its end after "…" where it is too long for the line (a long TMPDIR).
    const shows = (cell: string) =>
      cell === setup.file || (cell.startsWith("…") && cell.length > 20 && setup.file.endsWith(cell.slice(1)));
    const row = lines.find((l) => shows(l.split(/ {2,}/)[0]!))!;
    const [path, ...numbers] = row.split(/ {2,}/);
    expect(shows(path!)).toBe(true);
    expect(numbers).toEqual([
      (size + pending).toLocaleString("en-US"),
      pending.toLocaleString("en-US"),
      log.last_upload.replace("T", " ").slice(0, 19),
    ]);
  });

  test("a mode that ships no logs shows none", async () => {
    const setup = logShipSetup({ mode: "FREE" });
    writeFileSync(setup.file, text(events(1, 3)));
    const json = await runPanorama(["--config", setup.configFile, "status", "--json"], { env });
    expect(JSON.parse(json.stdout).logs).toEqual([]);
    const plain = await runPanorama(["--config", setup.configFile, "status"], { env });
    expect(plain.stdout).not.toContain("tracking log");
  });
});

describe("rotation under a running --follow", () => {
  test("the writer rotates on signals (rename, copytruncate) while appending: every event once, in order", async () => {
    const setup = logShipSetup({ logs: 'max_file_size = "16K"' });
    const writer = await startWriter(["--file", setup.file, "--format", "json", "--rate", "500"]);
    const follower = spawnFollow(setup.configFile, "ignore");
    // Rotations start after its first pass: files rotated away before any run are history.
    await waitForLock(setup.stateDir, follower.pid);
    const checkpoints = join(setup.stateDir, "logship", "checkpoints.json");
    for (let i = 0; i < 500 && !existsSync(checkpoints); i++) await Bun.sleep(10);
    for (let i = 0; i < 8; i++) {
      await Bun.sleep(150 + Math.random() * 250);
      writer.process.kill(i % 2 === 0 ? "SIGUSR1" : "SIGUSR2");
    }
    await Bun.sleep(200);
    const { written } = await writer.stop();
    // Caught up (on a loaded machine it may lag), then stopped.
    for (let i = 0; i < 200 && shippedLines(setup.datalake).length < written; i++) await Bun.sleep(50);
    follower.kill("SIGTERM");
    expect(await follower.exited).toBe(0);
    expect(existsSync(`${setup.file}.8`)).toBe(true);
    // A source file per file on disk (a copytruncate copy carries its original's id), but the
    // empty ones: on a loaded machine two signals may come between two writes.
    const sources = readdirSync(setup.logs).filter((name) => statSync(join(setup.logs, name)).size > 0);
    expect(expectExactlyOnce(setup.datalake, written)).toBe(sources.length);
  }, 20_000);
});

describe("crash safety", () => {
  test("SIGKILL at 14 random moments while a writer appends and rotates (both kinds): every event exactly once, in order", async () => {
    const started = performance.now();
    const setup = logShipSetup({ logs: 'max_file_size = "8K"\nformat = "auto"' });
    // The first run, before any rotation: rotated files older than it would be history.
    writeFileSync(setup.file, "");
    expect((await runPanorama(["--config", setup.configFile, "log-ship", "--once"], { env })).code).toBe(0);
    const writer = await startWriter([
      "--file",
      setup.file,
      "--format",
      "prefixed",
      "--rate",
      "400",
      "--rotate-every",
      "900",
      "--rotate",
      "rename,copytruncate",
    ]);
    let kills = 0;
    for (; kills < 14; kills++) {
      const follower = spawnFollow(setup.configFile, "ignore");
      // The kill lands in a running shipper: wait until it holds its lock (downtime across
      // rotations is logship-downtime.test.ts's).
      await waitForLock(setup.stateDir, follower.pid);
      // Half of the kills land early, while it catches up on what was written while it was
      // down (uploads and checkpoints back to back), half later, mostly while it waits or
      // flushes on age.
      await Bun.sleep(kills % 2 === 0 ? 40 + Math.random() * 160 : 200 + Math.random() * 800);
      follower.kill("SIGKILL");
      expect(await follower.exited).not.toBe(0);
      await Bun.sleep(Math.random() * 400);
    }
    const { written } = await writer.stop();
    const final = await runPanorama(["--config", setup.configFile, "--json", "log-ship", "--once"], { env });
    expect(final.code).toBe(0);
    expect(written).toBeGreaterThan(2400);
    // A file per rotation: a renamed file and a copytruncate copy keep the id they had.
    expect(expectExactlyOnce(setup.datalake, written)).toBe(Math.ceil(written / 900));
    console.info(
      `crash test: ${kills} kills, ${written} events, ${shippedObjects(setup.datalake).length} objects, ${Math.round(performance.now() - started)} ms`,
    );
    // 18 starts of log-ship: on a machine shared with other test runs, each may take seconds.
  }, 120_000);

  // A rename rotation cuts the line being written: its rest goes into the new file (containerd).
  test("CRI records (long lines split into P records, both streams interleaved), rotated in the middle of a line, SIGKILL at 9 random moments: every event exactly once", async () => {
    const setup = logShipSetup({ logs: 'max_file_size = "8K"\nformat = "cri"' });
    // The first run, before any rotation: rotated files older than it would be history.
    writeFileSync(setup.file, "");
    expect((await runPanorama(["--config", setup.configFile, "log-ship", "--once"], { env })).code).toBe(0);
    const writer = await startWriter([
      "--file",
      setup.file,
      "--format",
      "cri",
      "--rate",
      "400",
      "--rotate-every",
      "700",
      "--rotate",
      "rename,copytruncate",
    ]);
    for (let kills = 0; kills < 9; kills++) {
      const follower = spawnFollow(setup.configFile, "ignore");
      await waitForLock(setup.stateDir, follower.pid);
      await Bun.sleep(40 + Math.random() * 600);
      follower.kill("SIGKILL");
      expect(await follower.exited).not.toBe(0);
      await Bun.sleep(Math.random() * 300);
    }
    const { written } = await writer.stop();
    const final = await runPanorama(["--config", setup.configFile, "--json", "log-ship", "--once"], { env });
    expect(final.code).toBe(0);
    expect(written).toBeGreaterThan(1000);
    // Each event byte-identical to the writer's, once; one file id per rotation.
    expect(expectExactlyOnce(setup.datalake, written)).toBe(Math.ceil(written / 700));
    rmSync(setup.dir, { recursive: true, force: true });
  }, 120_000);
});
