import { describe, expect, test } from "bun:test";
import {
  objectKey,
  otherVariantKey,
  partitionPath,
  quote,
  tableLocationPrefix,
  trackingLogKey,
} from "../../src/datalake/layout.ts";

describe("quote", () => {
  test("matches Python 3's urllib.parse.quote(v)", () => {
    // Expected values computed with Python 3.11: urllib.parse.quote(value).
    const cases: [string, string][] = [
      ["course-v1:MITx+6.00x+2024", "course-v1%3AMITx%2B6.00x%2B2024"],
      ["course-v1:edX+DemoX+Demo_Course", "course-v1%3AedX%2BDemoX%2BDemo_Course"],
      ["O'Reilly+X", "O%27Reilly%2BX"],
      ["100%+pure", "100%25%2Bpure"],
      ["a/b/c", "a/b/c"],
      ["with space", "with%20space"],
      ["a+b", "a%2Bb"],
      ["x:y", "x%3Ay"],
      ["ñandú", "%C3%B1and%C3%BA"],
      ["日本語", "%E6%97%A5%E6%9C%AC%E8%AA%9E"],
      ["😀", "%F0%9F%98%80"],
      ["~tilde~", "~tilde~"],
      ["", ""],
      ["-_.~", "-_.~"],
      ["!*'()", "%21%2A%27%28%29"],
      ["#?&=;", "%23%3F%26%3D%3B"],
      ["a\u00a0b", "a%C2%A0b"],
      ["\u007f\u0000\n\t", "%7F%00%0A%09"],
      ["ABCxyz0189", "ABCxyz0189"],
      ["%41", "%2541"],
      ["lms.example.com", "lms.example.com"],
      ["localhost:8000", "localhost%3A8000"],
      ["é/😀/%", "%C3%A9/%F0%9F%98%80/%25"],
    ];
    for (const [value, expected] of cases) expect([value, quote(value)]).toEqual([value, expected]);
  });

  test("a lone surrogate (Python raises) is encoded as U+FFFD", () => {
    expect(quote("a\ud800b")).toBe("a%EF%BF%BDb");
    expect(quote("\udc00")).toBe("%EF%BF%BD");
  });
});

describe("object keys", () => {
  const partitions: [string, string][] = [
    ["lms", "lms.example.com"],
    ["course_id", "course-v1:MITx+6.00x+2024"],
  ];

  test("partition path quotes values, not keys", () => {
    expect(partitionPath(partitions)).toBe("lms=lms.example.com/course_id=course-v1%3AMITx%2B6.00x%2B2024");
    expect(partitionPath([])).toBe("");
  });

  test("a value whose pieces between slashes would be empty, . or .. keeps its slashes encoded: no key leaves its place", () => {
    expect(partitionPath([["course_id", "MITx/6.00x/2012_Fall"]])).toBe("course_id=MITx/6.00x/2012_Fall");
    expect(partitionPath([["course_id", "/x"]])).toBe("course_id=/x");
    expect(partitionPath([["p", "a/../../../escape"]])).toBe("p=a%2F..%2F..%2F..%2Fescape");
    expect(partitionPath([["p", "a//b"]])).toBe("p=a%2F%2Fb");
    expect(partitionPath([["p", "x/."]])).toBe("p=x%2F.");
    expect(partitionPath([["p", "x/"]])).toBe("p=x%2F");
    for (const value of ["a/../../../escape", "a//b", "x/.", "x/", "..", "MITx/6.00x/2012_Fall"]) {
      const key = objectKey({
        basePrefix: "openedx",
        table: "t",
        partitions: [["p", value]],
        compression: "none",
      });
      // Every segment of the key stays a segment: nothing for a path or URL parser to collapse.
      expect(key.split("/").filter((s) => s === "" || s === "." || s === "..")).toEqual([]);
    }
  });

  test("uncompressed and gzip variants", () => {
    const base = { basePrefix: "openedx", table: "courseware_studentmodule", partitions };
    const plain = objectKey({ ...base, compression: "none" });
    const gz = objectKey({ ...base, compression: "gzip" });
    expect(plain).toBe(
      "openedx/courseware_studentmodule/lms=lms.example.com/course_id=course-v1%3AMITx%2B6.00x%2B2024/courseware_studentmodule.csv",
    );
    expect(gz).toBe(`${plain}.gz`);
    expect(otherVariantKey(plain)).toBe(gz);
    expect(otherVariantKey(gz)).toBe(plain);
    expect(() => otherVariantKey("openedx/x/x.json")).toThrow(/not a datalake CSV object key/);
  });

  test("tables without field partitions and an empty base prefix", () => {
    expect(
      objectKey({
        basePrefix: "openedx",
        table: "auth_user",
        partitions: [["lms", "lms.example.com"]],
        compression: "none",
      }),
    ).toBe("openedx/auth_user/lms=lms.example.com/auth_user.csv");
    expect(objectKey({ basePrefix: "", table: "t", partitions: [], compression: "none" })).toBe("t/t.csv");
  });

  test("table location", () => {
    expect(tableLocationPrefix("openedx", "auth_user")).toBe("openedx/auth_user/");
    expect(tableLocationPrefix("", "auth_user")).toBe("auth_user/");
  });
});

describe("tracking-log keys", () => {
  const time = new Date(Date.UTC(2024, 2, 1, 4, 5, 6, 789));

  test("logs bucket = data bucket", () => {
    expect(
      trackingLogKey({
        sameBucket: true,
        basePrefix: "openedx",
        lmsHost: "lms.example.com",
        time,
        id: "a1b2c3d4",
      }),
    ).toBe(
      "openedx/tracking_logs/lms=lms.example.com/year=2024/month=03/day=01/tracking.log-20240301-040506-a1b2c3d4.gz",
    );
  });

  test("separate logs bucket", () => {
    expect(
      trackingLogKey({
        sameBucket: false,
        basePrefix: "openedx",
        lmsHost: "lms.example.com",
        time,
        id: "a1b2c3d4",
      }),
    ).toBe(
      "tracking_logs/lms.example.com/year=2024/month=03/day=01/tracking.log-20240301-040506-a1b2c3d4.gz",
    );
  });

  test("the date is UTC, whatever the local time zone", () => {
    const late = new Date("2023-12-31T23:59:59-05:00"); // 2024-01-01 04:59:59 UTC
    expect(trackingLogKey({ sameBucket: false, basePrefix: "", lmsHost: "h", time: late, id: "x" })).toBe(
      "tracking_logs/h/year=2024/month=01/day=01/tracking.log-20240101-045959-x.gz",
    );
  });
});
