// Which values are personal (DESIGN §11): the preset's columns and the tracking-log field paths
// that carry a username, an e-mail address, a name or an IP address. `[privacy] columns` and
// `log_fields` add to these lists; nothing removes from them.
import type { Config } from "../config/types.ts";

/** The preset's personal columns, by table: always pseudonymized when pseudonyms are on. */
export const PRESET_PERSONAL_COLUMNS: Readonly<Record<string, readonly string[]>> = {
  auth_user: ["username", "email", "first_name", "last_name"],
  auth_userprofile: ["name", "meta", "mailing_address", "city", "bio"],
  student_courseenrollmentallowed: ["email"],
  student_manualenrollmentaudit: ["enrolled_email"],
  certificates_generatedcertificate: ["name"],
  enterprise_pendingenterprisecustomeruser: ["user_email"],
  // e-mail addresses of people at the customer: its point of contact and the replies' address
  enterprise_enterprisecustomer: ["contact_email", "reply_to"],
  course_groups_unregisteredlearnercohortassignments: ["email"],
};

/**
 * Event field paths of the tracking log that carry a username or an IP address, found in the
 * real events (shared/fixtures/tracking, from event-routing-backends) and in DESIGN §11. Server
 * events hold their payload in `event`; the event-routing-backends form of the same events in
 * `data`: both are listed.
 */
export const DEFAULT_LOG_FIELDS: readonly string[] = [
  "username",
  "ip",
  "context.username",
  "context.ip",
  "event.username",
  "event.user_name",
  "event.target_username",
  "data.username",
  "data.user_name",
  "data.target_username",
];

/** The columns of `table` that `[privacy] columns` names (whether pseudonyms are on or not). */
export function namedPersonalColumns(config: Config, table: string): Set<string> {
  const columns = new Set<string>();
  for (const entry of config.privacy.columns) {
    const [name, column] = entry.split(".");
    if (name === table && column) columns.add(column);
  }
  return columns;
}

/** The columns of `table` to pseudonymize: none when pseudonyms are off. */
export function pseudonymizedColumns(config: Config, table: string): ReadonlySet<string> {
  if (!config.privacy.pseudonymize) return new Set();
  return new Set([...(PRESET_PERSONAL_COLUMNS[table] ?? []), ...namedPersonalColumns(config, table)]);
}

/** The event field paths to pseudonymize: defaults plus `log_fields`, without duplicates. */
export function pseudonymizedLogFields(config: Config): string[] {
  return [...new Set([...DEFAULT_LOG_FIELDS, ...config.privacy.log_fields])];
}
