// The multipart journal after a kill -9: entries of dead processes are orphans (their uploads
// get aborted), entries of live ones are not, and the temporary file of an entry that a killed
// process was still writing is removed (the entry it was replacing, if any, is intact).
import { expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, readdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { MultipartJournal } from "../../src/aws/multipart-journal.ts";

/** A pid that no process has: spawn one, wait for it to exit. */
function deadPid(): number {
  const child = Bun.spawnSync(["true"]);
  return child.pid;
}

test("orphans: dead writers' entries and temporary files, never a live process's", () => {
  const stateDir = mkdtempSync(join(tmpdir(), "panorama-journal-"));
  const journal = new MultipartJournal(stateDir);
  mkdirSync(journal.dir, { recursive: true });
  const dead = deadPid();
  const entry = (pid: number, uploadId: string) =>
    JSON.stringify({ bucket: "b", key: `k-${uploadId}`, uploadId, pid, started_at: "2026-11-25T00:00:00Z" });
  writeFileSync(join(journal.dir, `${dead}-a.json`), entry(dead, "dead-upload"));
  writeFileSync(join(journal.dir, `${process.pid}-b.json`), entry(process.pid, "live-upload"));
  writeFileSync(join(journal.dir, `.${dead}-c.json.${dead}.k3j9x.tmp`), "{ half writ");
  writeFileSync(join(journal.dir, `.${process.pid}-d.json.${process.pid}.q1w2e.tmp`), "{ being writ");

  const orphans = journal.orphans();
  expect(orphans.map((o) => o.upload.uploadId)).toEqual(["dead-upload"]);
  expect(readdirSync(journal.dir).sort()).toEqual(
    [`${dead}-a.json`, `${process.pid}-b.json`, `.${process.pid}-d.json.${process.pid}.q1w2e.tmp`].sort(),
  );
  journal.end(orphans[0]?.name ?? "");
  expect(journal.orphans()).toEqual([]);
});
