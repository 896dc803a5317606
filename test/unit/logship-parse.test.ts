// Finding the event in a tracking-log line, in every format, byte for byte.
import { describe, expect, test } from "bun:test";
import type { LogFormat } from "../../src/config/types.ts";
import { dockerEvent, eventTime, parseEventTime, parseLine } from "../../src/logship/parse.ts";
import { dockerWrapped, fixtureEvents, prefixed } from "../support/log-writer.ts";

const utf8 = new TextEncoder();
const bytes = (s: string) => utf8.encode(s);

function eventOf(line: Uint8Array | string, format: LogFormat): Uint8Array | null {
  const parsed = parseLine(typeof line === "string" ? bytes(line) : line, format);
  if (parsed.kind === "event") return parsed.event;
  if (parsed.kind === "docker") return parsed.partial ? null : dockerEvent(parsed.log);
  return null;
}

const text = (b: Uint8Array | null) => (b === null ? null : Buffer.from(b).toString("utf8"));

describe("json lines", () => {
  test("every fixture event is kept exactly, in json and auto", () => {
    for (const event of fixtureEvents()) {
      expect(text(eventOf(event, "json"))).toBe(event);
      expect(text(eventOf(event, "auto"))).toBe(event);
    }
  });

  test("blanks and a CR around the object are not part of the event", () => {
    expect(text(eventOf('  {"a": 1}\r', "json"))).toBe('{"a": 1}');
  });

  test("a line that is not one JSON object has no event", () => {
    for (const line of ["", "   ", "hello", '{"a": 1', 'x {"a": 1}', "[1, 2]"]) {
      expect(eventOf(line, "json")).toBeNull();
    }
  });
});

describe("prefixed lines (Tutor)", () => {
  test("the event is from the first { to the last }", () => {
    for (const event of fixtureEvents()) {
      expect(text(eventOf(prefixed(event), "prefixed"))).toBe(event);
      expect(text(eventOf(prefixed(event), "auto"))).toBe(event);
    }
  });

  test("a log line without braces has no event", () => {
    expect(eventOf("2024-03-01 10:00:00,123 INFO 7 [tracking] nothing here", "prefixed")).toBeNull();
    expect(eventOf("} {", "prefixed")).toBeNull();
  });
});

describe("Docker wrappers", () => {
  test("the event inside the decoded log string of a [tracking] line", () => {
    for (const event of fixtureEvents()) {
      expect(text(eventOf(dockerWrapped(prefixed(event)), "docker"))).toBe(event);
      expect(text(eventOf(dockerWrapped(prefixed(event)), "auto"))).toBe(event);
    }
  });

  test("lines of other loggers are skipped", () => {
    const other = dockerWrapped('2024-03-01 10:00:00,123 INFO 7 [django.request] {"path": "/"}');
    expect(eventOf(other, "docker")).toBeNull();
    expect(eventOf(other, "auto")).toBeNull();
    expect(eventOf("not json", "docker")).toBeNull();
    expect(eventOf('{"stream": "stdout"}', "docker")).toBeNull();
  });

  test("auto: a Docker wrapper that cannot be read (cut short, two run together) has no event, not its bytes from { to }", () => {
    const event = fixtureEvents()[0]!;
    const whole = dockerWrapped(prefixed(event));
    const other = dockerWrapped('2024-03-01 10:00:00,123 INFO 7 [django.request] {"path": "/"}');
    // The Docker daemon stopped mid-line, then went on writing after it.
    const cut = `${whole.slice(0, whole.length - 40)}${whole}`;
    const runTogether = `${other.slice(0, 60)}${other}`;
    for (const line of [cut, runTogether, whole.slice(0, -1)]) {
      expect(eventOf(line, "auto")).toBeNull();
      expect(eventOf(line, "docker")).toBeNull();
    }
  });

  test("a log without its final newline is a part of a longer message", () => {
    const parsed = parseLine(bytes(JSON.stringify({ log: "[tracking] {", stream: "stdout" })), "docker");
    expect(parsed).toEqual({ kind: "docker", log: "[tracking] {", partial: true });
  });

  test("escaped unicode in the wrapper is decoded into UTF-8", () => {
    const event = '{"name": "é ✓ 😀"}';
    const line = JSON.stringify({ log: `[tracking] ${event}\n` }).replace(/[^\x20-\x7e]/gu, (c) =>
      c
        .split("")
        .map((u) => `\\u${u.charCodeAt(0).toString(16).padStart(4, "0")}`)
        .join(""),
    );
    expect(line).toContain("\\u00e9");
    expect(text(eventOf(line, "docker"))).toBe(event);
  });
});

describe("bytes that are not text", () => {
  test("invalid UTF-8 is copied unchanged, in json and prefixed", () => {
    const invalid = Buffer.concat([
      bytes('{"name": "x'),
      Buffer.from([0xff, 0xc3, 0x28, 0xe2, 0x82]),
      bytes('"}'),
    ]);
    expect(Buffer.from(eventOf(invalid, "json")!)).toEqual(invalid);
    const line = Buffer.concat([bytes("2024 INFO [tracking] "), Buffer.from([0xfe]), invalid, bytes("  ")]);
    expect(Buffer.from(eventOf(line, "prefixed")!)).toEqual(invalid);
    expect(Buffer.from(eventOf(line, "auto")!)).toEqual(invalid);
  });

  test("invalid UTF-8 in a Docker line does not throw", () => {
    const line = Buffer.concat([
      bytes('{"log": "[tracking] {\\"a\\": \\"'),
      Buffer.from([0xff]),
      bytes('\\"}\\n"}'),
    ]);
    expect(text(eventOf(line, "docker"))).toBe('{"a": "\uFFFD"}');
    expect(eventOf(Buffer.from([0xff, 0xfe, 0x7b]), "docker")).toBeNull();
  });

  test("a 100 KB unicode event is kept exactly", () => {
    const big = `{"name": "big", "time": "2024-03-01T10:00:00.000000+00:00", "data": "${"Ωμέγα ✓ 😀 ".repeat(6000)}"}`;
    expect(bytes(big).length).toBeGreaterThan(100_000);
    for (const format of ["json", "auto"] as const) expect(text(eventOf(big, format))).toBe(big);
    expect(text(eventOf(prefixed(big), "prefixed"))).toBe(big);
    expect(text(eventOf(dockerWrapped(prefixed(big)), "docker"))).toBe(big);
  });
});

describe("event time", () => {
  test("Open edX formats, in UTC", () => {
    expect(parseEventTime("2024-03-01T10:00:00.123456+00:00")?.toISOString()).toBe(
      "2024-03-01T10:00:00.123Z",
    );
    expect(parseEventTime("2024-03-01T10:00:00Z")?.toISOString()).toBe("2024-03-01T10:00:00.000Z");
    expect(parseEventTime("2024-03-01 10:00:00")?.toISOString()).toBe("2024-03-01T10:00:00.000Z");
    expect(parseEventTime("2024-03-01T01:30:00+02:00")?.toISOString()).toBe("2024-02-29T23:30:00.000Z");
    expect(parseEventTime("2024-03-01T23:30:00-0130")?.toISOString()).toBe("2024-03-02T01:00:00.000Z");
    expect(parseEventTime(" 2024-03-01t10:00:00,5z ")?.toISOString()).toBe("2024-03-01T10:00:00.500Z");
    expect(parseEventTime("2024-03-01T10:00:00.98 +02")?.toISOString()).toBe("2024-03-01T08:00:00.980Z");
    expect(parseEventTime("2024-02-29T23:59:60.1-00:00")?.toISOString()).toBe("2024-03-01T00:00:00.100Z");
    for (const bad of [
      "",
      "yesterday",
      "2024-02-30T10:00:00",
      "2024-13-01T00:00:00",
      "1709287200",
      "2024-3-01T10:00:00",
      "2024-03-01T10:00:00.Z",
      "2024-03-01T10:00:00+02:",
      "2024-03-01T10:00:00+2:00",
      "2024-03-01T10:00:00 junk",
      "2024-03-01T24:00:00",
      "2024-03-01X10:00:00",
    ]) {
      expect(parseEventTime(bad)).toBeNull();
    }
  });

  test("the top-level time, else timestamp; none when unreadable", () => {
    expect(
      eventTime(bytes('{"event": {"time": "2020-01-01T00:00:00"}, "time": "2024-03-01T10:00:00+00:00"}')),
    ).toEqual(new Date("2024-03-01T10:00:00Z"));
    expect(eventTime(bytes('{"timestamp": "2023-08-22T20:16:25.500832Z"}'))).toEqual(
      new Date("2023-08-22T20:16:25.500Z"),
    );
    expect(eventTime(bytes('{"time": NaN, "x": 1}'))).toBeNull();
    expect(eventTime(bytes('{"grade": NaN, "time": "2024-03-01T10:00:00+00:00"}'))).toEqual(
      new Date("2024-03-01T10:00:00Z"),
    );
    expect(eventTime(bytes('{"time": 1709287200}'))).toBeNull();
    for (const event of fixtureEvents()) expect(eventTime(bytes(event))).not.toBeNull();
  });

  test("only a top-level key counts: not one nested, in an array, in a string, or a value", () => {
    const at = (s: string) => eventTime(bytes(s))?.toISOString() ?? null;
    expect(at('{"event": {"time": "2020-01-01T00:00:00"}}')).toBeNull();
    expect(
      at('{"list": [{"time": "2020-01-01T00:00:00"}], "x": {"y": [1, {"time": "2021-01-01"}]}}'),
    ).toBeNull();
    expect(at('{"name": "time", "page": "\\"time\\": \\"2020-01-01T00:00:00\\""}')).toBeNull();
    expect(at('{"a": "x\\\\", "time": "2024-03-01T10:00:00Z"}')).toBe("2024-03-01T10:00:00.000Z");
    expect(at('{"a": "say \\"hi\\", ok", "time" : "2024-03-01T10:00:00Z"}')).toBe("2024-03-01T10:00:00.000Z");
    expect(at('{"time": "2024-03-01T10:00:00\\u002b02:00"}')).toBe("2024-03-01T08:00:00.000Z");
    expect(at('{"time": "soon", "timestamp": "2024-03-01T10:00:00Z"}')).toBe("2024-03-01T10:00:00.000Z");
    expect(at('{"timestamp": "2023-01-01T00:00:00Z", "time": "2024-03-01T10:00:00Z"}')).toBe(
      "2024-03-01T10:00:00.000Z",
    );
    expect(at('{"time": "2024-03-01T10:00:00Z')).toBeNull();
    expect(at("")).toBeNull();
    const invalid = Buffer.concat([
      Buffer.from('{"u": "\xff\xfe'),
      Buffer.from([0xc3, 0x28, 0x22, 0x2c]),
      Buffer.from(' "time": "2024-03-01T10:00:00Z"}'),
    ]);
    expect(eventTime(invalid)?.toISOString()).toBe("2024-03-01T10:00:00.000Z");
  });

  test("the same time as JSON.parse finds, for every fixture event in every wrapping", () => {
    const reference = (event: string) => {
      const record = JSON.parse(event) as Record<string, unknown>;
      for (const field of ["time", "timestamp"]) {
        const value = record[field];
        const time = typeof value === "string" ? parseEventTime(value) : null;
        if (time) return time;
      }
      return null;
    };
    for (const event of fixtureEvents()) {
      for (const format of ["json", "prefixed", "docker"] as const) {
        const line =
          format === "json"
            ? event
            : format === "prefixed"
              ? prefixed(event)
              : dockerWrapped(prefixed(event));
        const found = eventOf(line, format === "docker" ? "docker" : format);
        expect(found).not.toBeNull();
        expect(eventTime(found!)).toEqual(reference(event));
      }
    }
  });
});
