// One-line reports of an error (verify's table lines, its repair errors): the hint said once,
// whether or not the error's message already ends with it (an AwsError's does).
import { expect, test } from "bun:test";
import { AwsError } from "../../src/aws/client.ts";
import { messageWithHint, PanoramaError, withoutHint } from "../../src/errors.ts";

test("an AwsError, whose message carries its hint: the hint once, at the end", () => {
  const error = new AwsError("AccessDenied", 403, "ListObjectsV2", "s3://panorama-test", "Access Denied");
  expect(error.hint).toBeString();
  expect(error.message.endsWith(`; ${error.hint}`)).toBe(true);
  const line = messageWithHint(error);
  expect(line).toBe(
    `ListObjectsV2 s3://panorama-test failed: AccessDenied (HTTP 403): Access Denied (${error.hint})`,
  );
  expect(line.split(error.hint!)).toHaveLength(2);
});

test("an error whose message does not carry its hint gets it; one without a hint is its message", () => {
  expect(messageWithHint(new PanoramaError("state_dir is not writable", "chmod 0700 it"))).toBe(
    "state_dir is not writable (chmod 0700 it)",
  );
  expect(messageWithHint(new Error("boom"))).toBe("boom");
  expect(withoutHint("x failed: y (do z)", "do z")).toBe("x failed: y");
  expect(withoutHint("x failed: do z here", "do z")).toBe("x failed: do z here");
});
