import { describe, expect, test } from "bun:test";
import { parseConfig } from "../../src/config/load.ts";
import { blankUriPassword, secretsOf, uriCredentials } from "../../src/config/secrets.ts";

const FILE = "/etc/panorama/panorama.toml";

function configWithUri(uri: string) {
  const text = `mode = "CUSTOM"\nlms_host = "lms.example.com"\n[datalake]\nbucket = "acme-panorama"\n[mongodb]\nuri = ${JSON.stringify(uri)}\n`;
  return parseConfig(text, FILE, {}).config;
}

describe("the password of a MongoDB URI", () => {
  test("ends at the last @ before the host list, so unencoded / : @ ? stay in it", () => {
    expect(uriCredentials("mongodb://mongoadmin:My:Secret/Pw@127.0.0.1:39029/edxapp")).toEqual({
      user: "mongoadmin",
      password: "My:Secret/Pw",
    });
    expect(uriCredentials("mongodb://mongoadmin:S3cret@Pass1@127.0.0.1:39029/edxapp")).toEqual({
      user: "mongoadmin",
      password: "S3cret@Pass1",
    });
    expect(uriCredentials("mongodb+srv://u:pa?ss@cluster.example.net/db?appName=a@b")).toEqual({
      user: "u",
      password: "pa?ss",
    });
    expect(uriCredentials("mongodb://mongo:27017/edxapp?appName=a@b")).toEqual({ user: "", password: "" });
  });

  test("is blanked in messages, whatever it holds", () => {
    expect(blankUriPassword("mongodb://mongoadmin:My:Secret/Pw@127.0.0.1:39029/edxapp")).toBe(
      "mongodb://mongoadmin:***@127.0.0.1:39029/edxapp",
    );
    expect(blankUriPassword("mongodb://mongoadmin:S3cret@Pass1@127.0.0.1:39029/edxapp")).toBe(
      "mongodb://mongoadmin:***@127.0.0.1:39029/edxapp",
    );
    expect(blankUriPassword("mongo://admin:S3cretMongoPw@mongohost:27017/edxapp")).toBe(
      "mongo://admin:***@mongohost:27017/edxapp",
    );
    expect(blankUriPassword("mongodb://mongo:27017/edxapp")).toBe("mongodb://mongo:27017/edxapp");
  });

  test("is registered as a secret when it holds / or @", () => {
    expect(secretsOf(configWithUri("mongodb://mongoadmin:My:Secret/Pw@127.0.0.1:39029/edxapp"))).toContain(
      "My:Secret/Pw",
    );
    expect(secretsOf(configWithUri("mongodb://mongoadmin:S3cret@Pass1@127.0.0.1:39029/edxapp"))).toContain(
      "S3cret@Pass1",
    );
  });

  test("registers both forms of an encoded password", () => {
    const secrets = secretsOf(configWithUri("mongodb://openedx:p%40ss%2Fword@mongo:27017/edxapp"));
    expect(secrets).toContain("p%40ss%2Fword");
    expect(secrets).toContain("p@ss/word");
  });

  test("a lone % (not percent-encoding) is registered raw instead of throwing a URIError", () => {
    const config = configWithUri("mongodb://mongoadmin:50%off@127.0.0.1:39029/edxapp?authSource=admin");
    expect(secretsOf(config)).toContain("50%off");
  });
});
