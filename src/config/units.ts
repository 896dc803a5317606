// Parsers for the human-friendly values of the config: durations, sizes, cron expressions.
// Each returns the parsed value or a string saying what was expected.

const DURATION_UNITS: Record<string, number> = {
  s: 1,
  sec: 1,
  secs: 1,
  second: 1,
  seconds: 1,
  m: 60,
  min: 60,
  mins: 60,
  minute: 60,
  minutes: 60,
  h: 3600,
  hr: 3600,
  hrs: 3600,
  hour: 3600,
  hours: 3600,
  d: 86400,
  day: 86400,
  days: 86400,
};

export const DURATION_EXPECTED = 'a duration such as "90s", "15m", "2 hours" or "1h30m"';

/** "15m", "2 hours", "1h30m", "90" (seconds) → seconds */
export function parseDuration(text: string): number | string {
  const source = text.trim().toLowerCase();
  if (/^\d+$/.test(source)) return Number(source);
  const part = /(\d+(?:\.\d+)?)\s*([a-z]+)\s*/y;
  let seconds = 0;
  let matched = 0;
  part.lastIndex = 0;
  while (part.lastIndex < source.length) {
    const start = part.lastIndex;
    const m = part.exec(source);
    if (!m || m.index !== start) return DURATION_EXPECTED;
    const unit = DURATION_UNITS[m[2] ?? ""];
    if (unit === undefined) return `${DURATION_EXPECTED} (unknown unit "${m[2]}")`;
    seconds += Number(m[1]) * unit;
    matched++;
  }
  if (matched === 0) return DURATION_EXPECTED;
  return Math.round(seconds);
}

export const SIZE_EXPECTED = 'a size such as "512K", "1M", "50MB" or a number of bytes';

const SIZE_UNITS: Record<string, number> = {
  "": 1,
  b: 1,
  k: 1024,
  kb: 1024,
  kib: 1024,
  m: 1024 ** 2,
  mb: 1024 ** 2,
  mib: 1024 ** 2,
  g: 1024 ** 3,
  gb: 1024 ** 3,
  gib: 1024 ** 3,
};

/** Fluent Bit style sizes, binary multiples: "1M" → 1048576 */
export function parseSize(text: string): number | string {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(text);
  if (!m) return SIZE_EXPECTED;
  const unit = SIZE_UNITS[(m[2] ?? "").toLowerCase()];
  if (unit === undefined) return `${SIZE_EXPECTED} (unknown unit "${m[2]}")`;
  const bytes = Math.round(Number(m[1]) * unit);
  if (bytes <= 0) return `${SIZE_EXPECTED}, greater than zero`;
  return bytes;
}

const CRON_FIELDS = [
  { name: "minute", min: 0, max: 59, names: [] as string[] },
  { name: "hour", min: 0, max: 23, names: [] as string[] },
  { name: "day of month", min: 1, max: 31, names: [] as string[] },
  {
    name: "month",
    min: 1,
    max: 12,
    names: ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"],
  },
  { name: "day of week", min: 0, max: 7, names: ["sun", "mon", "tue", "wed", "thu", "fri", "sat"] },
];

const CRON_MACROS = new Set([
  "@hourly",
  "@daily",
  "@midnight",
  "@weekly",
  "@monthly",
  "@yearly",
  "@annually",
]);

export const CRON_EXPECTED = 'a cron expression of five fields such as "55 * * * *", or @hourly/@daily';

/** Validates a crontab(5) schedule; returns null when valid, else what is wrong. */
export function cronProblem(expression: string): string | null {
  const text = expression.trim();
  if (CRON_MACROS.has(text)) return null;
  const fields = text.split(/\s+/);
  if (fields.length !== 5) return `${CRON_EXPECTED} (found ${fields.length} field(s))`;
  for (const [i, field] of fields.entries()) {
    const spec = CRON_FIELDS[i]!;
    for (const item of field.split(",")) {
      const problem = cronItemProblem(item, spec);
      if (problem) return `${CRON_EXPECTED} (${spec.name}: ${problem})`;
    }
  }
  return null;
}

function cronItemProblem(item: string, spec: (typeof CRON_FIELDS)[number]): string | null {
  const m = /^([^/]+)(?:\/(\d+))?$/.exec(item);
  if (!m) return `"${item}" is not a value, range or step`;
  const [, range = "", step] = m;
  if (step !== undefined && Number(step) === 0) return `step 0 in "${item}"`;
  if (range === "*") return null;
  const bounds = range.split("-");
  if (bounds.length > 2) return `"${item}" is not a range`;
  const values: number[] = [];
  for (const bound of bounds) {
    const named = spec.names.indexOf(bound.toLowerCase());
    const value =
      named >= 0 ? named + (spec.name === "month" ? 1 : 0) : /^\d+$/.test(bound) ? Number(bound) : NaN;
    if (Number.isNaN(value)) return `"${bound}" is not a number`;
    if (value < spec.min || value > spec.max) return `${value} is outside ${spec.min}-${spec.max}`;
    values.push(value);
  }
  if (values.length === 2 && values[0]! > values[1]!) return `range "${range}" goes backwards`;
  return null;
}
