// Batches (size, UTC day of event time) and the object keys they go to.
import { describe, expect, test } from "bun:test";
import { parseConfig } from "../../src/config/load.ts";
import { Batcher, type ClosedBatch } from "../../src/logship/batch.ts";
import { batchKey, partitionOf } from "../../src/logship/upload.ts";

const utf8 = new TextEncoder();
const event = (time: string | null, pad = 0) =>
  utf8.encode(`{"name": "x",${time === null ? "" : ` "time": "${time}",`} "pad": "${"p".repeat(pad)}"}`);

/** Feed events (each on a line of its own length + 1) and collect the batches closed on the way. */
function feed(batcher: Batcher, events: Uint8Array[]): ClosedBatch[] {
  const closed: ClosedBatch[] = [];
  let offset = batcher.end;
  for (const e of events) {
    const c = batcher.add(e, offset, offset + e.length + 1);
    // A body is a view of the batcher's buffer, reused two batches later: keep a copy.
    if (c) closed.push({ ...c, body: c.body.slice() });
    offset += e.length + 1;
  }
  return closed;
}

const lines = (batch: ClosedBatch) => Buffer.from(batch.body).toString("utf8").split("\n").slice(0, -1);

describe("batches", () => {
  test("closed before max_file_size uncompressed bytes would be passed", () => {
    const events = Array.from({ length: 10 }, () => event("2024-03-01T10:00:00.000000+00:00", 60));
    const size = events[0]!.length + 1;
    const batcher = new Batcher(size * 3 + 5, 0, null);
    const closed = feed(batcher, events);
    closed.push(batcher.close());
    expect(closed.map((b) => b.events)).toEqual([3, 3, 3, 1]);
    for (const b of closed) expect(b.body.length).toBeLessThanOrEqual(size * 3 + 5);
    // contiguous: each starts where the previous ended, the first event starts each one
    expect(closed.map((b) => [b.start, b.end, b.firstEventOffset])).toEqual([
      [0, 3 * size, 0],
      [3 * size, 6 * size, 3 * size],
      [6 * size, 9 * size, 6 * size],
      [9 * size, 10 * size, 9 * size],
    ]);
  });

  test("each body holds exactly its events while the next batch fills", () => {
    const events = Array.from({ length: 50 }, (_, i) =>
      event(`2024-03-01T10:00:${String(i).padStart(2, "0")}Z`, i * 7),
    );
    const batcher = new Batcher(400, 0, null);
    let offset = 0;
    let next = 0;
    const check = (batch: ClosedBatch) => {
      const text = lines(batch);
      expect(text).toEqual(
        events.slice(next, next + batch.events).map((e) => Buffer.from(e).toString("utf8")),
      );
      next += batch.events;
    };
    let last: { batch: ClosedBatch; copy: Uint8Array<ArrayBuffer> } | null = null;
    for (const e of events) {
      const c = batcher.add(e, offset, offset + e.length + 1);
      offset += e.length + 1;
      // the last one closed stays intact while the next one fills (until that one closes)
      if (!c) {
        if (last) expect(last.batch.body).toEqual(last.copy);
        continue;
      }
      check(c);
      last = { batch: c, copy: c.body.slice() };
    }
    check(batcher.close());
    expect(next).toBe(50);
  });

  test("an event bigger than max_file_size is a batch of its own", () => {
    const batcher = new Batcher(100, 0, null);
    const closed = feed(batcher, [event(null), event(null, 500), event(null)]);
    expect(closed.map((b) => b.events)).toEqual([1, 1]);
    expect(batcher.close().events).toBe(1);
  });

  test("never two UTC days of event time in one batch; events without a time join the current day", () => {
    const batcher = new Batcher(1_000_000, 0, null);
    const closed = feed(batcher, [
      event("2024-03-01T23:59:59.999999+00:00"),
      event(null),
      event("2024-03-02T01:30:00.000000+02:00"), // 2024-03-01T23:30Z: still the 1st
      event("2024-03-02T00:00:00.000000+00:00"),
      event(null),
      event("2024-03-02T10:00:00.000000+00:00"),
    ]);
    closed.push(batcher.close());
    expect(closed.map((b) => [b.day, b.events, b.time.toISOString()])).toEqual([
      ["2024-03-01", 3, "2024-03-01T23:59:59.999Z"],
      ["2024-03-02", 3, "2024-03-02T00:00:00.000Z"],
    ]);
    expect(lines(closed[0]!)[1]).toBe('{"name": "x", "pad": ""}');
  });

  test("a first event without a time takes the time carried from the checkpoint", () => {
    const batcher = new Batcher(1_000_000, 500, new Date("2024-03-05T08:00:00Z"));
    feed(batcher, [event(null), event("2024-03-05T09:00:00+00:00")]);
    const batch = batcher.close();
    expect(batch.time.toISOString()).toBe("2024-03-05T08:00:00.000Z");
    expect(batch.carried?.toISOString()).toBe("2024-03-05T09:00:00.000Z");
    expect(batch.start).toBe(500);
  });

  test("lines without an event belong to the batch's range but not to its body", () => {
    const batcher = new Batcher(1_000_000, 0, null);
    batcher.skip(10);
    const e = event("2024-03-01T10:00:00+00:00");
    batcher.add(e, 10, 10 + e.length + 1);
    batcher.skip(10 + e.length + 1 + 7);
    const batch = batcher.close();
    expect([batch.start, batch.end, batch.firstEventOffset, batch.events, batch.skipped]).toEqual([
      0,
      18 + e.length,
      10,
      1,
      2,
    ]);
    expect(batcher.pending).toBe(false);
  });
});

describe("keys (DESIGN §8)", () => {
  const base = 'mode = "CUSTOM"\nlms_host = "lms.example.com"\n[datalake]\nbucket = "acme-panorama"\n';
  const time = new Date("2024-03-01T10:00:07.123Z");

  test("logs bucket = data bucket: under base_prefix, Hive partitions", () => {
    const config = parseConfig(base, "/etc/panorama/panorama.toml", {}).config;
    expect(batchKey(config, "0123456789ab", 1048576, time)).toBe(
      "openedx/tracking_logs/lms=lms.example.com/year=2024/month=03/day=01/tracking.log-20240301-100007-0123456789ab-1048576.gz",
    );
    expect(partitionOf(config, "2024-03-01")).toEqual({
      values: ["lms.example.com", "2024", "03", "01"],
      bucket: "acme-panorama",
      prefix: "openedx/tracking_logs/lms=lms.example.com/year=2024/month=03/day=01/",
    });
  });

  test("a separate logs bucket: tracking_logs/<lms_host>/...", () => {
    const config = parseConfig(
      `${base}logs_bucket = "acme-logs"\nbase_prefix = "edx"\n`,
      "/x.toml",
      {},
    ).config;
    expect(batchKey(config, "0123456789ab", 0, time)).toBe(
      "tracking_logs/lms.example.com/year=2024/month=03/day=01/tracking.log-20240301-100007-0123456789ab-0.gz",
    );
    expect(partitionOf(config, "2024-12-31")).toEqual({
      values: ["lms.example.com", "2024", "12", "31"],
      bucket: "acme-logs",
      prefix: "tracking_logs/lms.example.com/year=2024/month=12/day=31/",
    });
  });
});
