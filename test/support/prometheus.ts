// A strict reader of Prometheus text exposition (format 0.0.4, as node_exporter's textfile
// collector reads it): throws on any line the rules reject, else returns the samples.

export interface ParsedSample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const TYPES = new Set(["counter", "gauge", "histogram", "summary", "untyped"]);

function parseValue(text: string, line: number): number {
  if (text === "NaN") return Number.NaN;
  if (text === "+Inf") return Number.POSITIVE_INFINITY;
  if (text === "-Inf") return Number.NEGATIVE_INFINITY;
  if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(text))
    throw new Error(`line ${line}: bad value "${text}"`);
  return Number(text);
}

/** The label set of `{...}` starting at `text[0]`; returns it and the rest of the line. */
function parseLabels(text: string, line: number): { labels: Record<string, string>; rest: string } {
  const labels: Record<string, string> = {};
  let i = 1;
  for (;;) {
    if (text[i] === "}") return { labels, rest: text.slice(i + 1) };
    const eq = text.indexOf("=", i);
    if (eq < 0) throw new Error(`line ${line}: label without "="`);
    const name = text.slice(i, eq);
    if (!LABEL_NAME.test(name) || name.startsWith("__"))
      throw new Error(`line ${line}: bad label name "${name}"`);
    if (name in labels) throw new Error(`line ${line}: label "${name}" twice`);
    if (text[eq + 1] !== '"') throw new Error(`line ${line}: label value not quoted`);
    let value = "";
    let j = eq + 2;
    for (;;) {
      const c = text[j];
      if (c === undefined) throw new Error(`line ${line}: unterminated label value`);
      if (c === '"') break;
      if (c === "\\") {
        const next = text[j + 1];
        if (next === "\\") value += "\\";
        else if (next === '"') value += '"';
        else if (next === "n") value += "\n";
        else throw new Error(`line ${line}: bad escape "\\${next}" in a label value`);
        j += 2;
        continue;
      }
      value += c;
      j++;
    }
    labels[name] = value;
    i = j + 1;
    if (text[i] === ",") i++;
    else if (text[i] !== "}") throw new Error(`line ${line}: expected "," or "}" after a label`);
  }
}

export function parseExposition(text: string): ParsedSample[] {
  if (!text.endsWith("\n")) throw new Error("the text does not end with a line feed");
  const samples: ParsedSample[] = [];
  const typed = new Set<string>();
  const helped = new Set<string>();
  const finished = new Set<string>();
  const series = new Set<string>();
  let current = "";
  const enter = (name: string, line: number) => {
    if (name === current) return;
    if (finished.has(name)) throw new Error(`line ${line}: the lines of "${name}" are not together`);
    if (current) finished.add(current);
    current = name;
  };
  text
    .slice(0, -1)
    .split("\n")
    .forEach((raw, index) => {
      const line = index + 1;
      if (raw.trim() === "") return;
      if (raw.startsWith("#")) {
        const meta = /^#\s+(HELP|TYPE)\s+(\S+)(?:\s(.*))?$/.exec(raw);
        if (!meta) return; // a comment
        const [, kind, name, rest = ""] = meta as unknown as [string, string, string, string?];
        if (!METRIC_NAME.test(name)) throw new Error(`line ${line}: bad metric name "${name}"`);
        enter(name, line);
        if (kind === "TYPE") {
          if (typed.has(name)) throw new Error(`line ${line}: a second TYPE for "${name}"`);
          if (samples.some((s) => s.name === name))
            throw new Error(`line ${line}: TYPE after samples of "${name}"`);
          if (!TYPES.has(rest.trim())) throw new Error(`line ${line}: unknown type "${rest}"`);
          typed.add(name);
        } else {
          if (helped.has(name)) throw new Error(`line ${line}: a second HELP for "${name}"`);
          if (/\\[^\\n]/.test(rest.replaceAll("\\\\", "")))
            throw new Error(`line ${line}: bad escape in HELP`);
          helped.add(name);
        }
        return;
      }
      const name = /^[^\s{]+/.exec(raw)?.[0] ?? "";
      if (!METRIC_NAME.test(name)) throw new Error(`line ${line}: bad metric name "${name}"`);
      enter(name, line);
      let rest = raw.slice(name.length);
      let labels: Record<string, string> = {};
      if (rest.startsWith("{")) ({ labels, rest } = parseLabels(rest, line));
      const fields = rest.trim().split(/\s+/);
      if (!/^\s/.test(rest) || fields.length < 1 || fields.length > 2)
        throw new Error(`line ${line}: expected a value and at most a timestamp`);
      const value = parseValue(fields[0]!, line);
      if (fields[1] !== undefined && !/^-?\d+$/.test(fields[1]))
        throw new Error(`line ${line}: bad timestamp`);
      const key = `${name}${JSON.stringify(Object.entries(labels).sort())}`;
      if (series.has(key)) throw new Error(`line ${line}: the same series twice`);
      series.add(key);
      samples.push({ name, labels, value });
    });
  return samples;
}

/** The value of one series, or undefined. */
export function seriesValue(
  samples: ParsedSample[],
  name: string,
  labels: Record<string, string> = {},
): number | undefined {
  return samples.find(
    (s) =>
      s.name === name &&
      Object.keys(s.labels).length === Object.keys(labels).length &&
      Object.entries(labels).every(([k, v]) => s.labels[k] === v),
  )?.value;
}
