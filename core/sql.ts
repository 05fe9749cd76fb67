/**
 * Quoting for the few places DuckDB cannot take a bound parameter (COPY targets,
 * table-function file lists built from our own store paths). Everything else binds.
 */
export function sqlString(value: string): string {
  return `'${value.replaceAll("'", "''")}'`;
}

/** Quotes an identifier (a view or column name). */
export function sqlIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}
