// The servers started by scripts/test-env.sh, as the tests see them.

export interface TestEnv {
  mysql: {
    host: string;
    port: number;
    user: string;
    password: string;
    database: string;
    scratchDatabase: string;
    socket: string;
    rootPassword: string;
  };
  s3: {
    /** The signature-verifying proxy: what the code under test talks to. */
    endpoint: string;
    /** s3rver itself: accepts any signature, for setup and inspection. */
    directEndpoint: string;
    accessKeyId: string;
    secretAccessKey: string;
    bucket: string;
    logsBucket: string;
    region: string;
  };
}

const NAMES = {
  mysqlHost: "PANORAMA_TEST_MYSQL_HOST",
  mysqlPort: "PANORAMA_TEST_MYSQL_PORT",
  mysqlUser: "PANORAMA_TEST_MYSQL_USER",
  mysqlPassword: "PANORAMA_TEST_MYSQL_PASSWORD",
  mysqlDatabase: "PANORAMA_TEST_MYSQL_DATABASE",
  mysqlScratchDatabase: "PANORAMA_TEST_MYSQL_SCRATCH_DATABASE",
  mysqlSocket: "PANORAMA_TEST_MYSQL_SOCKET",
  mysqlRootPassword: "PANORAMA_TEST_MYSQL_ROOT_PASSWORD",
  s3Endpoint: "PANORAMA_TEST_S3_ENDPOINT",
  s3DirectEndpoint: "PANORAMA_TEST_S3_DIRECT_ENDPOINT",
  s3AccessKeyId: "PANORAMA_TEST_S3_ACCESS_KEY_ID",
  s3SecretAccessKey: "PANORAMA_TEST_S3_SECRET_ACCESS_KEY",
  s3Bucket: "PANORAMA_TEST_S3_BUCKET",
  s3LogsBucket: "PANORAMA_TEST_S3_LOGS_BUCKET",
  s3Region: "PANORAMA_TEST_S3_REGION",
} as const;

type Key = keyof typeof NAMES;

export function hasTestEnv(): boolean {
  return Object.values(NAMES).every((name) => Boolean(process.env[name]));
}

/**
 * Whether a test needing the servers should be skipped: only outside CI, and only when none of
 * them were started. Under CI a missing server is a failure, not a skip.
 */
export function skipWithoutTestEnv(): boolean {
  const ci = process.env.CI;
  if (hasTestEnv() || (ci && ci !== "false" && ci !== "0")) return false;
  console.warn("skipping integration tests: run them under scripts/test-env.sh (npm test does)");
  return true;
}

export function testEnv(): TestEnv {
  const missing = Object.values(NAMES).filter((name) => !process.env[name]);
  if (missing.length > 0) {
    throw new Error(
      `test environment variables missing: ${missing.join(", ")}. Run the tests under scripts/test-env.sh, e.g. \`npm test\` or \`scripts/test-env.sh node_modules/.bin/bun test\`.`,
    );
  }
  const get = (key: Key): string => process.env[NAMES[key]] ?? "";
  const port = Number(get("mysqlPort"));
  if (!Number.isInteger(port) || port <= 0)
    throw new Error(`${NAMES.mysqlPort} is not a port: ${get("mysqlPort")}`);
  return {
    mysql: {
      host: get("mysqlHost"),
      port,
      user: get("mysqlUser"),
      password: get("mysqlPassword"),
      database: get("mysqlDatabase"),
      scratchDatabase: get("mysqlScratchDatabase"),
      socket: get("mysqlSocket"),
      rootPassword: get("mysqlRootPassword"),
    },
    s3: {
      endpoint: get("s3Endpoint"),
      directEndpoint: get("s3DirectEndpoint"),
      accessKeyId: get("s3AccessKeyId"),
      secretAccessKey: get("s3SecretAccessKey"),
      bucket: get("s3Bucket"),
      logsBucket: get("s3LogsBucket"),
      region: get("s3Region"),
    },
  };
}
