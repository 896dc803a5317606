// Secrets are blanked in every log line, also in a --json line, where JSON escapes a quote,
// a backslash or a control character of a password: the escaped spelling is blanked too.
import { afterEach, expect, test } from "bun:test";
import { addSecrets, log, setLogSink, setupLogging } from "../../src/log.ts";

afterEach(() => setLogSink(null));

test("a password with a quote, a backslash and a tab never reaches a --json line", () => {
  const lines: string[] = [];
  setLogSink((text) => lines.push(text));
  setupLogging({ json: true });
  const password = 'Pw"with\\back\tslash-77';
  addSecrets([password]);
  log.error(`cannot connect with ${password}`, { detail: `uri mongodb://u:${password}@h` });
  const out = lines.join("");
  expect(out).toContain("cannot connect with ***");
  expect(out).toContain("mongodb://u:***@h");
  expect(out).not.toContain("with\\\\back");
  expect(out).not.toContain("slash-77");
});
