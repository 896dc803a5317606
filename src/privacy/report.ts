// What `status`, `verify` and `doctor` say about pseudonyms (DESIGN §11). The key file's path is
// shown, never the key.
import type { Config } from "../config/types.ts";
import { pseudonymizedColumns, pseudonymizedLogFields } from "./fields.ts";

export interface PseudonymsStatus {
  on: boolean;
  /** null when off */
  key_file: string | null;
  /** "table.column" pseudonymized in the extracted tables */
  columns: string[];
  /** event field paths pseudonymized by log-ship */
  log_fields: string[];
}

export function pseudonymsStatus(config: Config): PseudonymsStatus {
  if (!config.privacy.pseudonymize) return { on: false, key_file: null, columns: [], log_fields: [] };
  return {
    on: true,
    key_file: config.privacy.key_file,
    columns: config.tables.flatMap((t) =>
      [...pseudonymizedColumns(config, t.name)].map((c) => `${t.name}.${c}`),
    ),
    log_fields: pseudonymizedLogFields(config),
  };
}

export function pseudonymsLine(status: PseudonymsStatus): string {
  if (!status.on) return "pseudonyms: off (personal values are written as they are)";
  return `pseudonyms: on, key ${status.key_file}: ${status.columns.length} column(s) and ${status.log_fields.length} tracking-log field(s) pseudonymized`;
}
