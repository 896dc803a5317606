// The partition state's directory (state_dir/catalog/<database>) after a kill -9: the first save
// removes the temporary files of writers that died mid-write, never a live writer's.
import { afterAll, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PartitionState } from "../../src/catalog/partitions.ts";
import { OWN_START, OWN_WRITER } from "../../src/state/process-identity.ts";

const stateDir = mkdtempSync(join(tmpdir(), "panorama-partition-state-"));
afterAll(() => rmSync(stateDir, { recursive: true, force: true }));

/** A pid that no process has: spawn one, wait for it to exit. */
function deadPid(): number {
  return Bun.spawnSync(["true"]).pid;
}

test("the first save removes a dead writer's temporary file (its pid reused too), keeps a live one's and other files", () => {
  const state = new PartitionState(stateDir, "panorama");
  mkdirSync(state.dir, { recursive: true });
  const dead = `.openedx_raw_auth_user.json.${deadPid()}.k3j9x.tmp`;
  const live = `.openedx_raw_auth_user.json.${OWN_WRITER}.q1w2e.tmp`;
  // A killed pod's: the same pid as this process (pid 1 in every pod), another start time.
  const earlierPod = `.openedx_raw_auth_user.json.${process.pid}-${(OWN_START ?? 0) - 1}.z8y7x.tmp`;
  writeFileSync(join(state.dir, earlierPod), "{ half writ");
  writeFileSync(join(state.dir, dead), "{ half writ");
  writeFileSync(join(state.dir, live), "{ being writ");
  writeFileSync(join(state.dir, "notes.tmp"), "an operator's");

  const ref = { values: ["lms.example.com"], bucket: "", prefix: "openedx/auth_user/lms=lms.example.com/" };
  expect(state.add("openedx_raw_auth_user", [ref])).toBe(1);

  expect(readdirSync(state.dir).sort()).toEqual([live, "notes.tmp", "openedx_raw_auth_user.json"].sort());
  expect(readFileSync(join(state.dir, live), "utf8")).toBe("{ being writ");
});
