import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  connectMongo,
  MongodbError,
  mongodbError,
  mongoTarget,
  redactUri,
} from "../../src/extract/mongodb.ts";
import { cleanEnv, runPanorama } from "../support/cli.ts";
import { MONGODB_DEFAULTS } from "../support/mongodb-config.ts";

const SLASH = "mongodb://mongoadmin:My:Secret/Pw@127.0.0.1:39029/edxapp";
const AT = "mongodb://mongoadmin:S3cret@Pass1@127.0.0.1:39029/edxapp";
const PERCENT = "mongodb://mongoadmin:50%off@127.0.0.1:39029/edxapp?authSource=admin";

async function failure(uri: string): Promise<Error> {
  try {
    const connection = await connectMongo({ ...MONGODB_DEFAULTS, uri });
    await connection.client.close();
  } catch (error) {
    return error as Error;
  }
  throw new Error("expected connectMongo to fail");
}

describe("a MongoDB URI whose password is not percent-encoded", () => {
  test("/ and : in the password: a clear error naming user@hosts/db, never the password", async () => {
    const error = await failure(SLASH);
    expect(error).toBeInstanceOf(MongodbError);
    expect(error.message).toBe(
      "MongoDB mongoadmin@127.0.0.1:39029/edxapp: the password in [mongodb] uri holds characters that must be percent-encoded",
    );
    expect((error as MongodbError).hint).toContain("%2F");
  });

  test("@ in the password: the user is not taken for user@password", async () => {
    const error = await failure(AT);
    expect(error.message).toStartWith("MongoDB mongoadmin@127.0.0.1:39029/edxapp: ");
    expect(error.message).not.toContain("Pass1");
    expect(error.message).not.toContain("S3cret");
  });

  test("a lone %: a clear error, not the driver's bare URI error", async () => {
    const error = await failure(PERCENT);
    expect(error).toBeInstanceOf(MongodbError);
    expect(error.message).toContain("must be percent-encoded");
    expect(error.message).not.toContain("50%off");
  });

  test("redactUri blanks such passwords, alone or within a driver message", () => {
    expect(redactUri(SLASH)).toBe("mongodb://mongoadmin:***@127.0.0.1:39029/edxapp");
    expect(redactUri(AT)).toBe("mongodb://mongoadmin:***@127.0.0.1:39029/edxapp");
    expect(redactUri(`failed: ${SLASH} (x)`)).toBe(
      "failed: mongodb://mongoadmin:***@127.0.0.1:39029/edxapp (x)",
    );
  });

  test("driver messages lose the password in every form", () => {
    const config = {
      ...MONGODB_DEFAULTS,
      uri: "mongodb://openedx:p%2Fss%40x@mongo:27017/edxapp?appName=a@b",
    };
    expect(mongoTarget(config).description).toBe("openedx@mongo:27017/edxapp");
    const error = mongodbError(new Error("bad p/ss@x and p%2Fss%40x"), config, "cannot connect");
    expect(error.message).toBe("MongoDB openedx@mongo:27017/edxapp: cannot connect: bad *** and ***");
  });
});

describe("the CLI with such a URI", () => {
  const dir = mkdtempSync(join(tmpdir(), "panorama-mongodb-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  function configFile(uri: string): string {
    const file = join(dir, `${Math.random().toString(36).slice(2)}.toml`);
    const text = [
      'mode = "CUSTOM"',
      'lms_host = "lms.example.com"',
      `state_dir = ${JSON.stringify(join(dir, "state"))}`,
      "[datalake]",
      'target = "local"',
      "[mysql]",
      "port = 1",
      "[mongodb]",
      `uri = ${JSON.stringify(uri)}`,
      "",
    ].join("\n");
    writeFileSync(file, text, { mode: 0o600 });
    return file;
  }

  test("doctor prints neither form of the password", async () => {
    for (const [uri, secret] of [
      [SLASH, "Secret/Pw"],
      [AT, "Pass1"],
    ] as const) {
      const result = await runPanorama(["doctor", "--config", configFile(uri)], { env: cleanEnv() });
      expect(result.stdout).toContain("MongoDB");
      expect(result.stdout + result.stderr).not.toContain(secret);
    }
  });

  test("a lone % in the password does not crash every command with a URI error", async () => {
    const result = await runPanorama(["status", "--config", configFile(PERCENT)], { env: cleanEnv() });
    expect(result.stderr).not.toContain("URI error");
    expect(result.code).toBe(0);
  });
});
