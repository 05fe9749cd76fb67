import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { HsError } from '../core/errors.js';
import { pathExists } from '../core/store/layout.js';
import { renderChart } from './charts.js';
import { runSqlBlock, type SqlOutcome } from './notebook/execute.js';
import { parseNotebook, type ParsedNotebook } from './notebook/parse.js';
import type { NotebookCell, NotebookResult, ParamValue } from './notebook/types.js';
import { openAnalysisReader } from './views.js';

export { MAX_CHART_ROWS } from './notebook/execute.js';
export { renderNotebookHtml } from './notebook/html.js';
export { renderNotebookMarkdown } from './notebook/markdown.js';
export { parseNotebook } from './notebook/parse.js';
export type { CellValue, NotebookCell, NotebookResult, ParamValue, QueryResult, ResultColumn } from './notebook/types.js';

export interface RunNotebookOptions {
  /** The notebook's path, as the user gave it (messages name it so). */
  file: string;
  store: string;
  /** A replay id or `latest`; default: the latest replay when the store has one. */
  replay?: string;
  /** `--param name=value`: each name must be declared by the notebook's params block. */
  params?: Record<string, string>;
}

/**
 * Runs a notebook over the analysis views (analyzer/views.ts) of a store and one
 * replay: every sql block in order on one connection, every chart over its block's
 * rows. The notebook is checked whole before the store is opened, so a typo in the
 * last block fails in milliseconds, not after every query ran.
 */
export async function runNotebook(opts: RunNotebookOptions): Promise<NotebookResult> {
  const notebook = parseNotebook(await readNotebook(opts.file), opts.file);
  const params = bindParams(notebook, opts.params ?? {});
  const values = new Map(params.map((p) => [p.name, p.value]));

  const reader = await openAnalysisReader(opts.store, opts.replay);
  try {
    const charted = new Set(notebook.cells.flatMap((c) => (c.type === 'chart' ? [c.data] : [])));
    const outcomes = new Map<number, SqlOutcome>();
    const cells: NotebookCell[] = [];
    for (const [index, cell] of notebook.cells.entries()) {
      if (cell.type === 'markdown') cells.push(cell);
      else if (cell.type === 'params') cells.push({ type: 'params', line: cell.line, params });
      else if (cell.type === 'sql') {
        const outcome = await runSqlBlock(reader.conn, { file: opts.file, line: cell.line, sql: cell.sql, maxRows: cell.maxRows, charted: charted.has(index) }, values);
        outcomes.set(index, outcome);
        cells.push({ type: 'sql', line: cell.line, name: cell.name, info: cell.info, sql: cell.sql, max_rows: cell.maxRows, result: outcome.result });
      } else {
        const source = notebook.cells[cell.data]!;
        cells.push(await drawChart(opts.file, cell.line, source.line, cell.spec, outcomes.get(cell.data)!));
      }
    }
    return {
      format: 'hookshadow-notebook',
      file: opts.file,
      title: notebook.title,
      store: opts.store,
      replay_id: reader.replayId,
      generated_at: new Date().toISOString(),
      params,
      cells,
    };
  } finally {
    reader.close();
  }
}

async function readNotebook(file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'it is a directory' : (err as Error).message;
    throw new HsError('HS_ERR_NOTEBOOK_INVALID', `${file}: cannot read the notebook: ${why}.`, { cause: err });
  }
}

/** The notebook's defaults overlaid with --param; a --param the notebook does not declare is a typo, not a no-op. */
function bindParams(notebook: ParsedNotebook, given: Record<string, string>): ParamValue[] {
  const declared = new Set(notebook.params.map((p) => p.name));
  for (const name of Object.keys(given)) {
    if (!declared.has(name)) {
      const list = [...declared].join(', ');
      throw new HsError('HS_ERR_USAGE', `--param ${name}: ${notebook.file} declares no such parameter (${list ? `it declares: ${list}` : 'it has no params block'}).`);
    }
  }
  return notebook.params.map((p) => (Object.hasOwn(given, p.name) ? { name: p.name, value: given[p.name]!, given: true } : { name: p.name, value: p.default, given: false }));
}

async function drawChart(file: string, line: number, dataLine: number, spec: Record<string, unknown>, data: SqlOutcome): Promise<NotebookCell> {
  if (data.result === null) {
    throw new HsError('HS_ERR_NOTEBOOK_INVALID', `${file}:${line}: vega-lite block draws the sql block at line ${dataLine}, whose last statement returns no rows to draw.`);
  }
  const base = { type: 'chart' as const, line, data_line: dataLine, rows_drawn: data.chartRows.length, row_count: data.result.row_count };
  // An empty chart is an empty frame with axes: say "no rows" instead.
  if (data.chartRows.length === 0) return { ...base, svg: null };
  try {
    return { ...base, svg: await renderChart(spec, data.chartRows) };
  } catch (err) {
    const code = err instanceof HsError ? err.code : 'HS_ERR_CHART_INVALID';
    throw new HsError(code, `${file}:${line}: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * The notebook a CLI argument names: a file, or the name of a notebook shipped in
 * hookshadow's notebooks/ (`daily-trend`), so an installed CLI can run them without
 * knowing where npm put them.
 */
export async function resolveNotebookFile(arg: string): Promise<string> {
  if (await pathExists(arg)) return arg;
  if (/^[a-z0-9-]+(\.md)?$/.test(arg)) {
    const name = arg.endsWith('.md') ? arg : `${arg}.md`;
    const here = dirname(fileURLToPath(import.meta.url));
    // From source (analyzer/) or built (dist/analyzer/): the shipped folder is one or two levels up.
    for (const dir of [join(here, '..', 'notebooks'), join(here, '..', '..', 'notebooks')]) {
      if (await pathExists(join(dir, name))) return join(dir, name);
    }
  }
  return arg;
}

