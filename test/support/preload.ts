// Loaded before every test file (bunfig.toml): a test run leaves nothing behind and its output
// holds only the test runner's.
// - Every temporary file of the run, those of the CLI processes it starts included (they inherit
//   TMPDIR), goes under one directory that is removed when the run ends.
// - The log lines of the code under test, errors that a test provokes on purpose included, are
//   not written: tests that look at them spy on `log`.
import { afterAll } from "bun:test";
import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setLogSink } from "../../src/log.ts";

const dir = mkdtempSync(join(tmpdir(), "panorama-tests-"));
// Traversable like /tmp (each test's own directory is still 0700): tests that run the CLI as
// another user (nobody, to check permission errors as root) must reach the files they prepare.
chmodSync(dir, 0o755);
process.env.TMPDIR = dir;
// A global hook: after the last test file, whichever files ran.
afterAll(() => rmSync(dir, { recursive: true, force: true }));

setLogSink(() => {});
