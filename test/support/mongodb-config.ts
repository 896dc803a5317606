// [mongodb] settings as the configuration's defaults leave them, for tests that vary one or two.
import type { MongodbConfig } from "../../src/config/types.ts";

export const MONGODB_DEFAULTS: MongodbConfig = {
  uri: "",
  host: "127.0.0.1",
  port: 27017,
  user: "",
  password: "",
  database: "edxapp",
  auth_source: "",
  tls: false,
  use_split_mongo: true,
};
