import { describe, expect, test } from "bun:test";
import { tableCatalog } from "../../src/catalog/model.ts";
import { checkCatalogName, hiveString, sqlName, sqlString } from "../../src/catalog/sql.ts";
import { tableChange } from "../../src/catalog/tables.ts";
import { castOf, viewSql } from "../../src/catalog/views.ts";
import { ConfigError } from "../../src/errors.ts";
import { parseView } from "../support/aws-json-server.ts";
import { tempConfig } from "../support/temp-config.ts";

describe("literals and names", () => {
  test("Hive strings escape backslashes and quotes; Athena strings double quotes", () => {
    expect(hiveString("it's \\ ok")).toBe("'it\\'s \\\\ ok'");
    expect(sqlString("it's \\ ok")).toBe("'it''s \\ ok'");
    expect(sqlName('a"b')).toBe('"a""b"');
  });

  test("catalog names: lower-case letters, digits and _ only, as config errors", () => {
    expect(checkCatalogName("openedx_raw_x1", "view", null)).toBe("openedx_raw_x1");
    expect(() => checkCatalogName("Users", "view", "/etc/p.toml")).toThrow(ConfigError);
    expect(() => checkCatalogName("a-b", "view", null)).toThrow('"a-b" is not a valid catalog name');
    expect(() => checkCatalogName("x".repeat(256), "view", null)).toThrow(ConfigError);
    expect(() => checkCatalogName("", "view", null)).toThrow(ConfigError);
  });
});

describe("view casts by MySQL type", () => {
  const cast = (type: string) => castOf({ name: "c", type });
  test("integers → BIGINT, float/double/decimal → DOUBLE", () => {
    for (const t of ["tinyint", "smallint", "mediumint", "int", "bigint"])
      expect(cast(t)).toBe('TRY_CAST("c" AS BIGINT)');
    for (const t of ["float", "double", "decimal"]) expect(cast(t)).toBe('TRY_CAST("c" AS DOUBLE)');
  });
  test("the cast follows the CSV's column kind: BIT is written as a number, so it is one", () => {
    expect(cast("bit")).toBe('TRY_CAST("c" AS BIGINT)');
    expect(cast("int(11) unsigned")).toBe('TRY_CAST("c" AS BIGINT)');
    expect(cast("double precision")).toBe('TRY_CAST("c" AS DOUBLE)');
  });
  test("datetime/timestamp parse the CSV's microsecond format; date is a DATE cast", () => {
    expect(cast("datetime")).toContain("date_parse(\"c\", '%Y-%m-%d %H:%i:%s.%f')");
    expect(cast("timestamp")).toContain("date_parse(\"c\", '%Y-%m-%d %H:%i:%s.%f')");
    expect(cast("date")).toBe('TRY_CAST("c" AS DATE)');
  });
  test("strings and JSON: 'NULL' is NULL", () => {
    for (const t of ["varchar", "longtext", "json", "char", "time"])
      expect(cast(t)).toBe(`NULLIF("c", 'NULL')`);
  });
  test("the view statement is one Athena accepts (as the test server parses it)", () => {
    const sql = viewSql(
      {
        name: "openedx_table_t",
        table: "openedx_raw_t",
        columns: [
          { name: "id", type: "int" },
          { name: "born", type: "date" },
          { name: "lms", type: "varchar" },
        ],
      },
      "panorama",
    );
    expect(parseView(sql)).toEqual({
      database: "panorama",
      view: "openedx_table_t",
      columns: ["id", "born", "lms"],
      fromDatabase: "panorama",
      from: "openedx_raw_t",
    });
    expect(parseView('CREATE OR REPLACE VIEW "v" AS SELECT (x AS "a" FROM "t"')).toHaveProperty("error");
  });
});

describe("table changes", () => {
  const wanted = {
    source: "x",
    name: "openedx_raw_x",
    columns: ["a", "b", "c"],
    partitionKeys: ["lms"],
    location: "s3://b/openedx/x/",
    serde: { library: "org.apache.hadoop.hive.serde2.OpenCSVSerde", parameters: { separatorChar: "," } },
    parameters: { EXTERNAL: "TRUE" },
  };
  const existing = (columns: string[], keys = ["lms"]) => ({
    Name: "openedx_raw_x",
    Parameters: { EXTERNAL: "TRUE", transient_lastDdlTime: "1" },
    PartitionKeys: keys.map((Name) => ({ Name, Type: "string" })),
    StorageDescriptor: {
      Columns: columns.map((Name) => ({ Name, Type: "string" })),
      Location: "s3://b/openedx/x/",
      InputFormat: "org.apache.hadoop.mapred.TextInputFormat",
      OutputFormat: "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat",
      SerdeInfo: { SerializationLibrary: wanted.serde.library, Parameters: { separatorChar: "," } },
    },
  });
  test("missing → create; equal → none; appended → update", () => {
    expect(tableChange(wanted, null)).toEqual({ action: "create" });
    expect(tableChange(wanted, existing(["a", "b", "c"]))).toEqual({ action: "none" });
    expect(tableChange(wanted, existing(["a", "b"]))).toMatchObject({ action: "update", added: ["c"] });
  });
  test("reordered columns or other partition keys cannot be updated in place", () => {
    expect(() => tableChange(wanted, existing(["b", "a"]))).toThrow(
      `does not line up with the layout of x: it lacks "c"; "b", "a" in another order`,
    );
    expect(() => tableChange(wanted, existing(["a", "b", "c", "d"]))).toThrow(
      `does not line up with the layout of x: it has "d", which the layout has not. Its columns: a, b, c, d; the layout's: a, b, c`,
    );
    expect(() => tableChange(wanted, existing(["a", "b", "c"], ["lms", "course_id"]))).toThrow(
      "partition keys",
    );
  });
});

describe("a table's catalog", () => {
  test("MySQL column names in upper case are the catalog's in lower case: the CSV meets them by position", () => {
    const config = tempConfig({ tables: '[[tables]]\nname = "t"\npartition_fields = ["Org"]' });
    const table = config.tables.find((t) => t.name === "t")!;
    const model = tableCatalog(config, table, [
      { name: "Key", type: "varchar" },
      { name: "id", type: "int" },
      { name: "Org", type: "varchar" },
    ]);
    expect(model.table.columns).toEqual(["key", "id"]);
    expect(model.table.partitionKeys).toEqual(["lms", "org"]);
    expect(model.view.columns.map((c) => c.name)).toEqual(["key", "id", "org", "lms"]);
    // What cannot be a catalog name in any case is still a configuration error.
    expect(() => tableCatalog(config, table, [{ name: "my-col", type: "varchar" }])).toThrow(
      '"my-col" is not a valid catalog name',
    );
  });
});
