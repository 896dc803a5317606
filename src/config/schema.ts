// The configuration file's shape, declared once: every section and key with its type, default and
// check, and the message a person reads when a value is wrong ("expected ..."; the loader adds the
// file, the key path and what it got). The types (types.ts), the known-key lists, the environment
// variables and the did-you-mean suggestions come from here. Checks that join keys of several
// sections (a bucket required outside DEMO, the table set) are the loader's.
import { isAbsolute, resolve } from "node:path";
import * as v from "valibot";
import { closest, IDENTIFIER, IDENTIFIER_EXPECTED, isTable, type Raw } from "./reader.ts";
import { CRON_EXPECTED, cronProblem, parseDuration, parseSize } from "./units.ts";

export const MODES = ["DEMO", "FREE", "SAAS", "CUSTOM"] as const;
export const LOG_FORMATS = ["auto", "json", "prefixed", "docker", "cri"] as const;

export function didYouMean(word: string, options: readonly string[]): string {
  const suggestion = closest(word, options);
  return suggestion ? ` (did you mean "${suggestion}"?)` : "";
}

/** How an environment variable's text becomes what the file would hold, for keys that are not text. */
const FROM_TEXT = new WeakMap<object, (text: string) => unknown>();

/** The value of an environment variable for the key `schema` declares (unchanged when it does not read). */
export function fromText(schema: v.GenericSchema | undefined, text: string): unknown {
  const leaf = schema && "wrapped" in schema ? (schema.wrapped as v.GenericSchema) : schema;
  const read = leaf && FROM_TEXT.get(leaf);
  return read ? read(text) : text;
}

/**
 * The key is also set by the environment variable `name` (the Tutor plugin's, so an operator moving
 * from Tutor keeps their values): it overrides the file, or with `credential` fills it only where
 * the file leaves it empty (credentials come after the file's [aws] table).
 */
function env<const S extends v.GenericSchema>(name: string, schema: S, credential = false) {
  return v.pipe(schema, v.metadata({ env: name, credential }));
}

/** The environment variables of `schema`'s keys: [name, key path] in the order of the declaration. */
function environment(schema: v.GenericSchema, credentials: boolean): [string, string][] {
  const found: [string, string][] = [];
  walk(schema, "", (keyPath, s) => {
    const { env: name, credential } = v.getMetadata(s as v.SchemaWithPipe<[v.GenericSchema]>) as {
      env?: string;
      credential?: boolean;
    };
    if (name !== undefined && Boolean(credential) === credentials) found.push([name, keyPath]);
  });
  return found;
}

/** A lenient key's bad value is told, and its default stands in (DESIGN §3: [schedule]): its strict schema. */
const STRICT = new WeakMap<object, v.GenericSchema>();

function lenient<const S extends v.GenericSchema<unknown, string> & { default: string }>(schema: S) {
  const forgiving = v.fallback(schema, schema.default as v.InferOutput<S>);
  STRICT.set(forgiving, schema);
  return forgiving;
}

/** The issue of each lenient key of `raw` whose default stood in: [key path, issue]. */
export function lenientIssues(schema: v.GenericSchema, raw: Raw): [string, v.BaseIssue<unknown>][] {
  const found: [string, v.BaseIssue<unknown>][] = [];
  walk(schema, "", (keyPath, declared) => {
    const strict = STRICT.get(declared);
    if (!strict) return;
    let value: unknown = raw;
    for (const key of keyPath.split(".")) value = isTable(value) ? value[key] : undefined;
    const checked = v.safeParse(strict, value, { abortEarly: true });
    if (!checked.success) found.push([keyPath, checked.issues[0]]);
  });
  return found;
}

const text = () => v.string("expected a string");

/** A string that matches `pattern`, or is empty when `allowEmpty`. */
function matching(pattern: RegExp, expected: string, allowEmpty = true) {
  return v.pipe(
    text(),
    v.check((s) => (s === "" && allowEmpty) || pattern.test(s), `expected ${expected}`),
  );
}

const identifier = () => matching(IDENTIFIER, IDENTIFIER_EXPECTED, false);

/** A path; a relative one is taken from the configuration file's directory. */
function path(dir: string, required?: string) {
  return v.pipe(
    text(),
    v.check((s) => required === undefined || s !== "", `expected ${required}`),
    v.transform((s) => resolveFrom(dir, s)),
  );
}

function integer(min: number, max: number) {
  const schema = v.pipe(
    v.unknown(),
    v.transform((x) => (typeof x === "bigint" ? Number(x) : x)),
    v.custom<number>((x) => typeof x === "number" && Number.isInteger(x), "expected an integer"),
    v.check((n) => n >= min && n <= max, `expected an integer from ${min} to ${max}`),
  );
  FROM_TEXT.set(schema, (t) => (/^-?\d+$/.test(t.trim()) ? Number(t.trim()) : t));
  return schema;
}

function boolean() {
  const schema = v.boolean("expected true or false");
  // Tutor renders YAML booleans as True/False.
  FROM_TEXT.set(schema, (t) => {
    const word = t.trim().toLowerCase();
    if (["true", "1", "yes", "on"].includes(word)) return true;
    if (["false", "0", "no", "off", ""].includes(word)) return false;
    return t;
  });
  return schema;
}

function choice<const T extends string>(options: readonly T[], caseInsensitive = false) {
  return v.pipe(
    text(),
    v.rawTransform<string, T>(({ dataset, addIssue, NEVER }) => {
      const value = dataset.value;
      const found = options.find((o) =>
        caseInsensitive ? o.toLowerCase() === value.toLowerCase() : o === value,
      );
      if (found !== undefined) return found;
      const list = options.map((o) => `"${o}"`).join(", ");
      addIssue({ message: `expected one of ${list}${didYouMean(value, options)}` });
      return NEVER;
    }),
  );
}

const strings = () =>
  v.custom<string[]>(
    (x) => Array.isArray(x) && x.every((s) => typeof s === "string"),
    "expected an array of strings",
  );

/** An array of strings each matching `pattern`; the message shows the first that does not. */
function stringsMatching(pattern: RegExp, expected: string) {
  return v.pipe(
    strings(),
    v.rawCheck(({ dataset, addIssue }) => {
      if (!dataset.typed) return;
      const bad = dataset.value.find((s) => !pattern.test(s));
      if (bad !== undefined) addIssue({ message: `expected ${expected}`, input: bad });
    }),
  );
}

const identifiers = () => stringsMatching(IDENTIFIER, IDENTIFIER_EXPECTED);

/** A value read by a unit parser (durations, sizes): a positive whole number stands for itself. */
function unit(kind: string, parse: (text: string) => number | string, allowZero: boolean, suffix = "") {
  return v.pipe(
    v.unknown(),
    v.rawTransform<unknown, number>(({ dataset, addIssue, NEVER }) => {
      const value = dataset.value;
      if (typeof value === "number" && Number.isInteger(value) && (value > 0 || (allowZero && value === 0))) {
        return value;
      }
      if (typeof value !== "string") {
        addIssue({ message: `expected ${kind}${suffix}` });
        return NEVER;
      }
      const parsed = parse(value);
      if (typeof parsed === "string") addIssue({ message: `expected ${parsed}${suffix}` });
      else if (parsed <= 0 && !allowZero) addIssue({ message: "expected a duration greater than zero" });
      return typeof parsed === "string" ? NEVER : parsed;
    }),
  );
}

/** seconds */
const duration = () => unit("a duration string", parseDuration, false);
/** seconds, where "0" (or 0) means never */
const durationOrNever = () => unit("a duration string", parseDuration, true, ', or "0" for never');
/** bytes */
const size = () => unit("a size", parseSize, false);

/** A cron schedule (trimmed); with `orNone`, "" for none. */
function cron(orNone = false) {
  const suffix = orNone ? ', or "" for none' : "";
  return v.pipe(
    v.string(`expected ${CRON_EXPECTED}${suffix}`),
    v.rawTransform<string, string>(({ dataset, addIssue, NEVER }) => {
      const value = dataset.value;
      if (orNone && value.trim() === "") return "";
      const problem = cronProblem(value);
      if (problem) addIssue({ message: `expected ${problem}${suffix}` });
      return problem ? NEVER : value.trim();
    }),
  );
}

type Entries = v.ObjectEntries;

/**
 * A TOML table with these keys: anything else is an unknown key (with the nearest known one), a
 * missing key without a default is told its `required` message.
 */
function section<const E extends Entries>(entries: E, required: Record<string, string> = {}) {
  const known = Object.keys(entries);
  return v.pipe(
    v.custom<Raw>(isTable, "expected a table"),
    v.rawCheck(({ dataset, addIssue }) => {
      const value = dataset.value as Raw;
      const key = Object.keys(value).find((k) => !known.includes(k));
      if (key === undefined) return;
      addIssue({
        message: `unknown key${didYouMean(key, known)}`,
        input: undefined,
        path: [{ type: "object", origin: "key", input: value, key, value: value[key] }],
      });
    }),
    v.object(entries, (issue) => required[String(issue.path?.[0]?.key)] ?? "required"),
  );
}

/** An array of TOML tables ([[key]]). */
function tables<const S extends v.GenericSchema>(entry: S) {
  return v.pipe(
    v.custom<unknown[]>(Array.isArray, "expected an array of tables ([[tables]])"),
    v.array(entry),
  );
}

/** [datalake.base_partitions]: ordered (key, value) pairs, the keys identifiers, the values not empty, without '/'. */
function partitions() {
  return v.pipe(
    v.custom<Raw>(isTable, "expected a table"),
    v.rawTransform<Raw, [string, string][]>(({ dataset, addIssue, NEVER }) => {
      const pairs: [string, string][] = [];
      for (const [key, value] of Object.entries(dataset.value)) {
        const at = [{ type: "object", origin: "value", input: dataset.value, key, value }] as const;
        const problem = !IDENTIFIER.test(key)
          ? { message: `expected the key to be ${IDENTIFIER_EXPECTED}`, input: undefined }
          : typeof value !== "string"
            ? { message: "expected a string", input: value }
            : value === ""
              ? { message: "expected a non-empty string", input: value }
              : value.includes("/")
                ? {
                    message:
                      "expected a value without '/': it would split the object keys into other directories",
                    input: value,
                  }
                : null;
        if (problem) {
          addIssue({ ...problem, path: [...at] });
          return NEVER;
        }
        pairs.push([key, value as string]);
      }
      return pairs;
    }),
  );
}

const BUCKET = matching(
  /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/,
  "an S3 bucket name (3-63 lowercase letters, digits, dots and hyphens)",
);
const URL = matching(/^https?:\/\/[^\s/]+(\/\S*)?$/, "an http(s) URL");
const HOST = matching(/^[A-Za-z0-9._:-]+$/, "a host name or IP address", false);

/** The MySQL data types a field may name (without length, lower case). */
const MYSQL_TYPES = (
  "tinyint smallint mediumint int integer bigint year bit decimal numeric float double real datetime " +
  "timestamp date time char varchar tinytext text mediumtext longtext enum set json binary varbinary " +
  "tinyblob blob mediumblob longblob uuid"
).split(" ");

/** A column of [[tables]] fields: its name, and its MySQL type (lower case). */
const field = section({
  name: v.optional(identifier(), ""),
  type: v.pipe(
    v.optional(text(), ""),
    v.rawTransform<string, string>(({ dataset, addIssue, NEVER }) => {
      const type = dataset.value.toLowerCase();
      if (MYSQL_TYPES.includes(type)) return type;
      addIssue({
        message: `expected a MySQL data type such as int, varchar, datetime, double${didYouMean(type, MYSQL_TYPES)}`,
        input: type,
      });
      return NEVER;
    }),
  ),
});

/**
 * One [[tables]] entry: a key left out keeps the preset's value (undefined here); the loader
 * joins the entries with the preset (tables.ts).
 */
const tableEntry = section(
  {
    name: identifier(),
    datalake_table: v.optional(identifier()),
    view: v.optional(identifier()),
    partition_fields: v.optional(identifiers()),
    incremental: v.optional(
      section(
        { timestamp_field: identifier(), overlap: v.optional(duration(), "2 hours") },
        { timestamp_field: "required: the column that says when a row changed" },
      ),
    ),
    changed_field: v.optional(identifier()),
    fields: v.optional(
      v.pipe(
        tables(field),
        v.rawCheck(({ dataset, addIssue }) => {
          if (!dataset.typed) return;
          if (dataset.value.length === 0) {
            addIssue({
              message: "expected at least one field (omit the key for all columns)",
              input: undefined,
            });
            return;
          }
          const seen = new Set<string>();
          for (const [i, f] of dataset.value.entries()) {
            if (seen.has(f.name)) {
              const item = {
                type: "array",
                origin: "value",
                input: dataset.value,
                key: i,
                value: f,
              } as const;
              const name = { type: "object", origin: "value", input: f, key: "name", value: f.name } as const;
              addIssue({ message: `duplicate field "${f.name}"`, input: undefined, path: [item, name] });
              return;
            }
            seen.add(f.name);
          }
        }),
      ),
    ),
  },
  { name: "required: the MySQL table name" },
);

/** The configuration file; `dir` is its directory, where relative paths start. */
export function configSchema(dir: string) {
  return section(
    {
      mode: env("PANORAMA_MODE", choice(MODES, true)),
      lms_host: env(
        "LMS_HOST",
        v.optional(matching(/^[A-Za-z0-9._:-]+$/, "a host name such as lms.example.com"), ""),
      ),
      state_dir: env("PANORAMA_STATE_DIR", v.optional(path(dir, "a directory path"), "/var/lib/panorama")),
      datalake: v.optional(
        section({
          target: v.optional(choice(["s3", "local"]), "s3"),
          /** "" = <state_dir>/datalake */
          path: v.optional(path(dir), ""),
          bucket: env("PANORAMA_BUCKET", v.optional(BUCKET, "")),
          /** "" = bucket */
          logs_bucket: env("PANORAMA_RAW_LOGS_BUCKET", v.optional(BUCKET, "")),
          base_prefix: env("PANORAMA_BASE_PREFIX", v.optional(identifier(), "openedx")),
          region: env(
            "PANORAMA_REGION",
            v.optional(
              matching(/^[a-z]{2}(-[a-z]+)+-\d+$/, 'an AWS region such as "us-east-1"', false),
              "us-east-1",
            ),
          ),
          database: env("PANORAMA_DATALAKE_DATABASE", v.optional(identifier(), "panorama")),
          workgroup: env(
            "PANORAMA_DATALAKE_WORKGROUP",
            v.optional(matching(/^[A-Za-z0-9._-]{1,128}$/, "an Athena workgroup name", false), "panorama"),
          ),
          athena_results_bucket: v.optional(BUCKET, ""),
          account_id: v.optional(matching(/^\d{12}$/, "a 12-digit AWS account id"), ""),
          compression: v.optional(choice(["none", "gzip"]), "none"),
          kms_key_arn: v.optional(
            matching(
              /^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key\/[A-Za-z0-9-]+$/,
              "a KMS key ARN such as arn:aws:kms:us-east-1:123456789012:key/<key id>",
            ),
            "",
          ),
          endpoint: v.optional(URL, ""),
          glue_endpoint: v.optional(URL, ""),
          athena_endpoint: v.optional(URL, ""),
          /** [] = [["lms", lms_host]] */
          base_partitions: v.optional(partitions(), {}),
        }),
        {},
      ),
      aws: v.optional(
        section({
          access_key_id: env("PANORAMA_AWS_ACCESS_KEY", v.optional(text(), ""), true),
          secret_access_key: env("PANORAMA_AWS_SECRET_ACCESS_KEY", v.optional(text(), ""), true),
          session_token: v.optional(text(), ""),
        }),
        {},
      ),
      mysql: v.optional(
        section({
          host: v.optional(HOST, "127.0.0.1"),
          port: v.optional(integer(1, 65535), 3306),
          user: v.optional(text(), "root"),
          password: v.optional(text(), ""),
          password_file: v.optional(path(dir), ""),
          database: v.optional(identifier(), "edxapp"),
          socket: v.optional(path(dir), ""),
          ssl: v.optional(boolean(), false),
          connections: v.optional(integer(1, 16), 2),
        }),
        {},
      ),
      mongodb: v.optional(
        section({
          uri: v.optional(matching(/^mongodb(\+srv)?:\/\/\S+$/, "a mongodb:// or mongodb+srv:// URI"), ""),
          host: v.optional(matching(/^[A-Za-z0-9._:,-]+$/, "a host name or IP address", false), "127.0.0.1"),
          port: v.optional(integer(1, 65535), 27017),
          user: v.optional(text(), ""),
          password: v.optional(text(), ""),
          password_file: v.optional(path(dir), ""),
          database: v.optional(identifier(), "edxapp"),
          auth_source: v.optional(matching(IDENTIFIER, IDENTIFIER_EXPECTED), ""),
          tls: v.optional(boolean(), false),
          /** course index in MySQL (Open edX Maple and later) */
          use_split_mongo: env("PANORAMA_USE_SPLIT_MONGO", v.optional(boolean(), true)),
        }),
        {},
      ),
      extract: v.optional(
        section({
          preset: v.optional(choice(["openedx", "none"]), "openedx"),
          include: v.optional(identifiers(), () => []),
          exclude: v.optional(identifiers(), () => []),
          full_every: v.optional(durationOrNever(), "24h"),
        }),
        {},
      ),
      tables: v.optional(tables(tableEntry), []),
      logs: v.optional(
        section({
          paths: v.optional(
            v.pipe(
              strings(),
              v.transform((p) => p.map((s) => resolveFrom(dir, s))),
            ),
            ["/openedx/data/logs/tracking.log"],
          ),
          exclude: v.optional(
            v.pipe(
              strings(),
              v.transform((p) => p.map((s) => resolveFrom(dir, s))),
            ),
            [],
          ),
          format: v.optional(choice(LOG_FORMATS), "auto"),
          max_file_size: env("PANORAMA_LOGS_TOTAL_FILE_SIZE", v.optional(size(), "1M")),
          upload_timeout: env("PANORAMA_LOGS_UPLOAD_TIMEOUT", v.optional(duration(), "15m")),
        }),
        {},
      ),
      // A bad entry fails only `crontab`; the other commands warn and take the default.
      schedule: v.optional(
        section({
          run: lenient(env("PANORAMA_CRONTAB", v.optional(cron(), "55 * * * *"))),
          log_ship: lenient(v.optional(cron(), "*/5 * * * *")),
          /** `verify --repair`; "" = no cron line */
          verify: lenient(v.optional(cron(true), "30 3 * * *")),
        }),
        {},
      ),
      metrics: v.optional(section({ textfile: v.optional(path(dir), "") }), {}),
      privacy: v.optional(
        section({
          pseudonymize: v.optional(boolean(), false),
          key_file: v.optional(path(dir, "a file path"), "/etc/panorama/pseudonym.key"),
          /** "table.column": checked against the table set by the loader */
          columns: v.optional(strings(), () => []),
          log_fields: v.optional(
            stringsMatching(
              /^[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*$/,
              'event field paths such as "event.user_name"',
            ),
            () => [],
          ),
        }),
        {},
      ),
    },
    { mode: 'required: one of "DEMO", "FREE", "SAAS", "CUSTOM" (or set PANORAMA_MODE)' },
  );
}

function resolveFrom(dir: string, s: string): string {
  return s === "" || isAbsolute(s) ? s : resolve(dir, s);
}

/** The file's values, checked and with their defaults, before the loader joins sections. */
export type Parsed = v.InferOutput<ReturnType<typeof configSchema>>;

/** The entries of the table `schema` declares (through optional and pipe), or null. */
function entriesOf(schema: v.GenericSchema | undefined): Entries | null {
  if (!schema) return null;
  if ("wrapped" in schema) return entriesOf(schema.wrapped as v.GenericSchema);
  if ("entries" in schema) return schema.entries as Entries;
  if ("pipe" in schema) {
    for (const item of (schema.pipe as v.GenericSchema[]).slice().reverse()) {
      const entries = "kind" in item && item.kind === "schema" ? entriesOf(item) : null;
      if (entries) return entries;
    }
  }
  return null;
}

/** The declaration of the key at `keyPath` ("datalake.bucket"). */
export function schemaAt(schema: v.GenericSchema, keyPath: string): v.GenericSchema | undefined {
  let current: v.GenericSchema | undefined = schema;
  for (const key of keyPath.split(".")) current = entriesOf(current)?.[key] as v.GenericSchema | undefined;
  return current;
}

/** Calls `visit` with each key's path and declaration, in sections and [[tables]] entries too. */
function walk(
  schema: v.GenericSchema | undefined,
  at: string,
  visit: (keyPath: string, declared: v.GenericSchema) => void,
): void {
  const entries = entriesOf(schema) ?? entriesOf(itemOf(schema));
  for (const [key, child] of Object.entries(entries ?? {})) {
    const keyPath = at ? `${at}.${key}` : key;
    visit(keyPath, child as v.GenericSchema);
    walk(child as v.GenericSchema, keyPath, visit);
  }
}

/** Every known key by section ("" = top level, "tables" = each [[tables]] entry). */
function knownKeys(schema: v.GenericSchema): Record<string, readonly string[]> {
  const known: Record<string, readonly string[]> = { "": Object.keys(entriesOf(schema) ?? {}) };
  walk(schema, "", (keyPath, declared) => {
    const entries = entriesOf(declared) ?? entriesOf(itemOf(declared));
    if (entries) known[keyPath] = Object.keys(entries);
  });
  return known;
}

/** The item schema of an array of tables (through optional and pipe), or undefined. */
function itemOf(schema: v.GenericSchema | undefined): v.GenericSchema | undefined {
  if (!schema) return undefined;
  if ("item" in schema) return schema.item as v.GenericSchema;
  if ("wrapped" in schema) return itemOf(schema.wrapped as v.GenericSchema);
  if (!("pipe" in schema)) return undefined;
  const items = (schema.pipe as v.GenericSchema[]).filter((i) => i.kind === "schema");
  return items.map(itemOf).find((i) => i !== undefined);
}

const DECLARED = configSchema("/");
export const KNOWN_KEYS = knownKeys(DECLARED);
/** The variables that override a key of the file. */
export const ENV_OVERRIDES: readonly (readonly [string, string])[] = environment(DECLARED, false);
/** The variables that set a credential the file leaves empty ([aws]). */
export const ENV_CREDENTIALS: readonly (readonly [string, string])[] = environment(DECLARED, true);
