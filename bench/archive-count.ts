/**
 * Prints the number of flow records in an archive directory (every finished `*.parquet` file under it),
 * counted by DuckDB: the row count the peer bench (bench/archive-side-by-side.sh) compares with what it sent.
 * Run: node bench/archive-count.ts DIR   (prints 0 when the directory holds no file)
 */
import { readdirSync } from "node:fs";
import { DuckDBInstance } from "@duckdb/node-api";

const dir = process.argv[2];
if (dir === undefined) throw new Error("usage: node bench/archive-count.ts DIR");
const any = (readdirSync(dir, { recursive: true }) as string[]).some(
  (n) => n.endsWith(".parquet") && !n.startsWith(".tmp"),
);
if (!any) console.log(0);
else {
  const con = await (await DuckDBInstance.create(":memory:")).connect();
  const r = await con.runAndReadAll(
    `SELECT count(*) FROM read_parquet('${dir.replaceAll("'", "''")}/**/*.parquet')`,
  );
  console.log(String(r.getRows()[0]![0]));
  con.closeSync();
}
