// The built-in table sets. `openedx` is the Tutor plugin's table list (copied from
// shared/reference/openedx-tables.json; a test keeps the copy current): upstream's raw tables
// column for column, auth_user.password included (never read: always an empty field).
import openedxTables from "./openedx-tables.json" with { type: "json" };
import type { TableConfig } from "./types.ts";

interface ReferenceTable {
  name: string;
  datasource: string;
  fields: { name: string; type: string }[];
  partitions?: { interval: string; timestamp_field: string; partition_fields: string[] };
}

/**
 * Columns that are never read, whatever the config says (DESIGN §9): they keep their place in the
 * layout as empty fields, so that the raw table lines up with the one upstream created.
 */
export const FORBIDDEN_FIELDS: Record<string, string[]> = { auth_user: ["password"] };

/**
 * The timestamp each preset table's every save updates (Django `auto_now`: `modified` of
 * TimeStampedModel, `modified_date`, `updated_at`), which lets an unchanged table be skipped
 * cheaply (DESIGN §7). Tables without one (auth_user, student_courseenrollment: rows change without
 * a timestamp moving) are probed by a checksum of their content. The incremental table uses its
 * timestamp_field.
 */
const CHANGED_FIELDS: Record<string, string> = {
  submissions_teamsubmission: "modified",
  course_overviews_courseoverview: "modified",
  grades_persistentcoursegrade: "modified",
  certificates_generatedcertificate: "modified_date",
  course_groups_courseusergrouppartitiongroup: "updated_at",
  completion_blockcompletion: "modified",
  enterprise_enterprisecustomeruser: "modified",
  enterprise_pendingenterprisecustomeruser: "modified",
};

/** Seconds of the `interval` strings the reference uses ("2 hour"). */
function intervalSeconds(interval: string): number {
  const m = /^(\d+)\s*(second|minute|hour|day)s?$/.exec(interval.trim());
  if (!m) throw new Error(`openedx preset: unreadable interval "${interval}"`);
  const unit = { second: 1, minute: 60, hour: 3600, day: 86400 }[
    m[2] as "second" | "minute" | "hour" | "day"
  ];
  return Number(m[1]) * unit;
}

/** Tables of a preset with the names of the datalake objects left empty (filled by the loader). */
export function presetTables(preset: "openedx" | "none"): TableConfig[] {
  if (preset === "none") return [];
  return (openedxTables.tables as ReferenceTable[]).map((table) => {
    return {
      name: table.name,
      source: table.datasource === "mysql" ? "mysql" : "course_structures",
      datalake_table: "",
      view: "",
      partition_fields: table.partitions ? [...table.partitions.partition_fields] : [],
      incremental: table.partitions
        ? {
            timestamp_field: table.partitions.timestamp_field,
            overlap: intervalSeconds(table.partitions.interval),
          }
        : null,
      changed_field: CHANGED_FIELDS[table.name] ?? null,
      fields: table.fields.map((f) => ({ ...f })),
      preset: true,
    };
  });
}
