/**
 * What running a notebook produces: the value both renderers (Markdown, HTML) read
 * and `hookshadow notebook --format json` prints. notebooks/README.md describes the
 * notebook format these come from.
 */

/** One result value, JSON-safe: big integers and decimals become numbers when exact enough, timestamps ISO-8601 UTC, lists and structs JSON text. */
export type CellValue = string | number | boolean | null;

export interface ResultColumn {
  name: string;
  /** DuckDB's type name, e.g. `BIGINT`, `VARCHAR`, `DECIMAL(10,2)`. */
  type: string;
}

/** The result of an sql block's last statement. */
export interface QueryResult {
  columns: ResultColumn[];
  /** The rows shown: at most the block's `rows` limit. */
  rows: CellValue[][];
  /** Every row the statement returned. */
  row_count: number;
}

export interface ParamValue {
  name: string;
  /** NULL when neither the notebook's default nor `--param` gives one. */
  value: string | null;
  /** True when `--param` gave it, false for the notebook's default. */
  given: boolean;
}

export type NotebookCell =
  /** Prose, verbatim Markdown. */
  | { type: 'markdown'; line: number; markdown: string }
  /** The `params` block, replaced by the values bound. */
  | { type: 'params'; line: number; params: ParamValue[] }
  /** An `sql` block: its source and its last statement's result (null when that statement returns no rows, e.g. CREATE). */
  | { type: 'sql'; line: number; name: string | null; info: string; sql: string; max_rows: number; result: QueryResult | null }
  /** A `vega-lite` block, replaced by its drawing. `svg` is null when the query returned no rows. */
  | { type: 'chart'; line: number; data_line: number; svg: string | null; rows_drawn: number; row_count: number };

export interface NotebookResult {
  format: 'hookshadow-notebook';
  /** The notebook file, as given. */
  file: string;
  /** The text of the notebook's first level-1 heading, if any. */
  title: string | null;
  store: string;
  /** The replay whose runs, intents and divergences the views showed, or null when the store has none. */
  replay_id: string | null;
  /** ISO-8601. */
  generated_at: string;
  params: ParamValue[];
  cells: NotebookCell[];
}
