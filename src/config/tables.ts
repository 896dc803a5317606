// The table set: the preset's tables, each [[tables]] entry (checked by schema.ts) laid over the
// preset table of its name or added, then [extract] include/exclude applied.
import { FORBIDDEN_FIELDS, presetTables } from "./presets.ts";
import { configError, type Origin } from "./reader.ts";
import { didYouMean, type Parsed } from "./schema.ts";
import type { ExtractConfig, TableConfig } from "./types.ts";

export function resolveTables(
  entries: Parsed["tables"],
  extract: ExtractConfig,
  basePrefix: string,
  origin: Origin,
  warnings: string[],
): TableConfig[] {
  const tables = new Map(presetTables(extract.preset).map((t) => [t.name, t]));
  const overridden = new Set<string>();
  for (const [i, entry] of entries.entries()) {
    const at = `tables[${i}]`;
    const fail = (key: string, problem: string, found?: unknown) =>
      configError(origin, `${at}.${key}`, problem, found);
    const name = entry.name;
    if (overridden.has(name)) throw fail("name", `table "${name}" is configured twice`);
    overridden.add(name);
    const table: TableConfig = tables.get(name) ?? {
      name,
      source: "mysql",
      datalake_table: "",
      view: "",
      partition_fields: [],
      incremental: null,
      changed_field: null,
      fields: null,
    };
    // Configured by the operator: strict from now on (DESIGN §10).
    delete table.preset;
    table.datalake_table = entry.datalake_table ?? table.datalake_table;
    table.view = entry.view ?? table.view;
    table.partition_fields = entry.partition_fields ?? table.partition_fields;
    table.fields = entry.fields ?? table.fields;
    table.incremental = entry.incremental ?? table.incremental;
    table.changed_field = entry.changed_field ?? table.changed_field;
    if (table.incremental && table.partition_fields.length === 0) {
      throw fail(
        "incremental",
        'an incremental table needs partition_fields: a run re-extracts whole partitions, those holding a row changed since the watermark; add partition_fields (such as ["course_id"]) or remove incremental',
      );
    }
    if (table.fields) {
      const names = table.fields.map((f) => f.name);
      for (const field of table.partition_fields) {
        if (!names.includes(field))
          throw fail("partition_fields", `"${field}" is not one of the table's fields`, field);
      }
      if (table.fields.length === table.partition_fields.length) {
        throw fail("partition_fields", "every field is a partition field: the CSV would have no column");
      }
    }
    const forbidden = FORBIDDEN_FIELDS[name] ?? [];
    const readForPartitions = [...table.partition_fields, table.incremental?.timestamp_field ?? ""];
    const forbiddenKey = forbidden.find((f) => readForPartitions.includes(f));
    if (forbiddenKey) {
      throw fail(
        table.partition_fields.includes(forbiddenKey) ? "partition_fields" : "incremental",
        `"${forbiddenKey}" of ${name} is never read (a password hash stays on the host): it cannot partition the table`,
      );
    }
    if (entry.fields?.some((f) => forbidden.includes(f.name))) {
      warnings.push(
        `${origin.file}: ${at}: ${forbidden.join(", ")} of ${name} is never read; it is written as an empty column`,
      );
    }
    tables.set(name, table);
  }
  const known = [...tables.keys()];
  for (const key of ["include", "exclude"] as const) {
    for (const name of extract[key]) {
      if (tables.has(name)) continue;
      throw configError(
        origin,
        `extract.${key}`,
        `unknown table "${name}"${didYouMean(name, known)}; add it with [[tables]]`,
      );
    }
  }
  const selected = [...tables.values()].filter(
    (t) =>
      (extract.include.length === 0 || extract.include.includes(t.name)) && !extract.exclude.includes(t.name),
  );
  for (const table of selected) {
    table.datalake_table ||= `${basePrefix}_raw_${table.name}`;
    table.view ||= `${basePrefix}_table_${table.name}`;
  }
  return selected;
}

/** The columns a table cannot be read without: its partition fields and its timestamp field. */
export function requiredFields(table: TableConfig): [string, "partition field" | "timestamp field"][] {
  return [
    ...table.partition_fields.map((f): [string, "partition field"] => [f, "partition field"]),
    ...(table.incremental
      ? [[table.incremental.timestamp_field, "timestamp field"] as [string, "timestamp field"]]
      : []),
  ];
}
