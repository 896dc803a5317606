import { describe, expect, test } from "bun:test";
import { cronProblem, parseDuration, parseSize } from "../../src/config/units.ts";
import { formatCount } from "../../src/progress.ts";

describe("durations", () => {
  test.each([
    ["15m", 900],
    ["2 hours", 7200],
    ["2 hour", 7200],
    ["1h30m", 5400],
    ["90s", 90],
    ["90", 90],
    ["1 day", 86400],
    ["0.5h", 1800],
  ])("%s = %d s", (text, seconds) => expect(parseDuration(text)).toBe(seconds));
  test.each(["", "soon", "15 fortnights", "m15", "1h x"])("%s is refused", (text) => {
    expect(typeof parseDuration(text)).toBe("string");
  });
});

describe("sizes", () => {
  test.each([
    ["1M", 1048576],
    ["50MB", 52428800],
    ["512K", 524288],
    ["1000", 1000],
    ["1.5M", 1572864],
    ["2G", 2147483648],
  ])("%s = %d bytes", (text, bytes) => expect(parseSize(text)).toBe(bytes));
  test.each(["", "M", "1X", "-1M", "0"])("%s is refused", (text) =>
    expect(typeof parseSize(text)).toBe("string"),
  );
});

describe("cron", () => {
  test.each(["55 * * * *", "*/5 * * * *", "0 0 1 jan mon", "0-30/10 1,2,3 * * 1-5", "@hourly", "0 0 * * 7"])(
    "%s is valid",
    (text) => expect(cronProblem(text)).toBeNull(),
  );
  test.each([
    ["* * * *", "five fields"],
    ["60 * * * *", "outside 0-59"],
    ["* 24 * * *", "outside 0-23"],
    ["* * 0 * *", "outside 1-31"],
    ["*/0 * * * *", "step 0"],
    ["5-1 * * * *", "backwards"],
    ["x * * * *", "not a number"],
    ["@sometimes", "five fields"],
  ])("%s is refused (%s)", (text, problem) => expect(cronProblem(text)).toContain(problem));
});

describe("counts as people read them", () => {
  // The grouping is our own (an Intl.NumberFormat slows every command's start-up): it must read
  // as the en-US locale's.
  test.each([0, 7, 999, 1000, 12345, 999999, 1000000, 1234567890, -1, -1234, 2 ** 53 - 1, 1.5, 1e21])(
    "%d",
    (n) => expect(formatCount(n)).toBe(n.toLocaleString("en-US")),
  );
  test("known groupings", () => {
    expect(formatCount(1234567)).toBe("1,234,567");
    expect(formatCount(-1000)).toBe("-1,000");
    expect(formatCount(100)).toBe("100");
  });
});
