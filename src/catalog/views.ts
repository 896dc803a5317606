// The typed views (DESIGN §6): each raw string column cast by its MySQL type, so that analysts
// query numbers, timestamps and dates instead of text. TRY/TRY_CAST turn a value that does not
// parse (the empty field of a NULL, say) into NULL instead of failing the whole query.
import { columnKind } from "../extract/csv.ts";
import type { ViewColumn, ViewDef } from "./model.ts";
import { sqlName, sqlString } from "./sql.ts";

/** The expression that gives `column` its type in the view: its kind decides, as it decided the CSV. */
export function castOf(column: ViewColumn): string {
  const c = sqlName(column.name);
  switch (columnKind(column.type)) {
    case "integer":
      return `TRY_CAST(${c} AS BIGINT)`;
    case "decimal":
    case "double":
      return `TRY_CAST(${c} AS DOUBLE)`;
    case "datetime":
      // The CSV writes `YYYY-MM-DD HH:MM:SS.ffffff`; upstream's files left out a zero fraction.
      return `COALESCE(TRY(date_parse(${c}, ${sqlString("%Y-%m-%d %H:%i:%s.%f")})), TRY(date_parse(${c}, ${sqlString("%Y-%m-%d %H:%i:%s")})))`;
    case "date":
      return `TRY_CAST(${c} AS DATE)`;
    default:
      // Strings, JSON, TIME, binary (hex) and any other type: the text, with upstream's 'NULL' as NULL.
      return `NULLIF(${c}, ${sqlString("NULL")})`;
  }
}

/** `CREATE OR REPLACE VIEW` of a view in `database`, reading its raw table there. */
export function viewSql(view: ViewDef, database: string): string {
  const select = view.columns.map((column) => `  ${castOf(column)} AS ${sqlName(column.name)}`).join(",\n");
  return `CREATE OR REPLACE VIEW ${sqlName(database)}.${sqlName(view.name)} AS\nSELECT\n${select}\nFROM ${sqlName(database)}.${sqlName(view.table)}`;
}
