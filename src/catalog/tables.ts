// Raw tables through the Glue API: created when missing, updated when columns were appended (or
// the location, SerDe or properties changed), left alone when equal. A column list that is not
// the old one plus new columns at the end would misread every existing CSV file, so it is an
// error that says how to rebuild the table.
import type { GlueColumn, GlueTable, StorageDescriptor, TableInput } from "../aws/glue.ts";
import { PanoramaError } from "../errors.ts";
import { type RawTable, TEXT_INPUT_FORMAT, TEXT_OUTPUT_FORMAT } from "./model.ts";

const strings = (names: string[]): GlueColumn[] => names.map((Name) => ({ Name, Type: "string" }));

/** The table's storage descriptor; a partition's is the same with its own location. */
export function storageDescriptor(table: RawTable, location = table.location): StorageDescriptor {
  return {
    Columns: strings(table.columns),
    Location: location,
    InputFormat: TEXT_INPUT_FORMAT,
    OutputFormat: TEXT_OUTPUT_FORMAT,
    SerdeInfo: { SerializationLibrary: table.serde.library, Parameters: { ...table.serde.parameters } },
  };
}

export function tableInput(table: RawTable): TableInput {
  return {
    Name: table.name,
    TableType: "EXTERNAL_TABLE",
    Parameters: { ...table.parameters },
    PartitionKeys: strings(table.partitionKeys),
    StorageDescriptor: storageDescriptor(table),
  };
}

/** A table whose catalog definition cannot be brought to the config's by an update. */
export class TableMismatchError extends PanoramaError {}

export type TableChange =
  | { action: "create" }
  | { action: "none" }
  | { action: "update"; added: string[]; reason: string };

/** Every wanted entry is there; entries Glue or Athena added themselves do not count. */
function hasAll(actual: Record<string, string> | undefined, wanted: Record<string, string>): boolean {
  return Object.entries(wanted).every(([key, value]) => actual?.[key] === value);
}

/**
 * How `actual` (the raw table's columns) differs from `wanted` (the layout's), in words: the
 * layout's columns it lacks, its columns the layout does not have, and those in another place.
 */
export function columnDifferences(actual: string[], wanted: string[]): string {
  const lacks = wanted.filter((c) => !actual.includes(c));
  const extra = actual.filter((c) => !wanted.includes(c));
  // Of the columns both have, those whose order differs (a missing column alone moves none).
  const common = actual.filter((c) => wanted.includes(c));
  const wantedOrder = wanted.filter((c) => actual.includes(c));
  const moved = common.filter((c, i) => wantedOrder[i] !== c);
  const quote = (names: string[]) => names.map((n) => `"${n}"`).join(", ");
  const parts: string[] = [];
  if (lacks.length > 0) parts.push(`it lacks ${quote(lacks)}`);
  if (extra.length > 0) parts.push(`it has ${quote(extra)}, which the layout has not`);
  if (moved.length > 0) parts.push(`${quote(moved)} in another order`);
  if (parts.length === 0) parts.push("its columns differ in number");
  return parts.join("; ");
}

/** What to do to bring `existing` (GetTable's answer, null when missing) to `wanted`. */
export function tableChange(wanted: RawTable, existing: GlueTable | null): TableChange {
  if (!existing) return { action: "create" };
  const rebuild = `drop it and create it again: \`panorama catalog --drop --yes --tables ${wanted.source}\`, then \`panorama catalog --tables ${wanted.source}\` (the table, its view and its partitions; the data stays in place)`;
  const keys = (existing.PartitionKeys ?? []).map((k) => k.Name);
  if (keys.join(",") !== wanted.partitionKeys.join(",")) {
    throw new TableMismatchError(
      `table ${existing.Name}: its partition keys are (${keys.join(", ")}), the config's are (${wanted.partitionKeys.join(", ")})`,
      rebuild,
    );
  }
  const sd = existing.StorageDescriptor ?? {};
  const columns = (sd.Columns ?? []).map((c) => c.Name);
  const prefixOk = columns.every((c, i) => wanted.columns[i] === c);
  if (!prefixOk || columns.length > wanted.columns.length) {
    // Data written under it would be read into the wrong columns (DESIGN §6).
    throw new TableMismatchError(
      `table ${existing.Name} does not line up with the layout of ${wanted.source}: ${columnDifferences(columns, wanted.columns)}. Its columns: ${columns.join(", ")}; the layout's: ${wanted.columns.join(", ")}`,
      `${rebuild}, and \`panorama run --full --tables ${wanted.source}\` to write its files again in the layout; or, to keep the table, give ${wanted.source} the \`fields\` that match it in [[tables]]`,
    );
  }
  const added = wanted.columns.slice(columns.length);
  const reasons: string[] = [];
  if (added.length > 0) reasons.push(`column${added.length > 1 ? "s" : ""} ${added.join(", ")} appended`);
  if (sd.Location !== wanted.location)
    reasons.push(`location ${sd.Location ?? "(none)"} → ${wanted.location}`);
  if (
    sd.SerdeInfo?.SerializationLibrary !== wanted.serde.library ||
    !hasAll(sd.SerdeInfo?.Parameters, wanted.serde.parameters) ||
    sd.InputFormat !== TEXT_INPUT_FORMAT ||
    sd.OutputFormat !== TEXT_OUTPUT_FORMAT
  ) {
    reasons.push("SerDe or formats changed");
  }
  if (!hasAll(existing.Parameters, wanted.parameters)) reasons.push("table properties changed");
  if (reasons.length === 0) return { action: "none" };
  return { action: "update", added, reason: reasons.join("; ") };
}
