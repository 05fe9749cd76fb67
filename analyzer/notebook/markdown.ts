import type { NotebookCell, NotebookResult, ParamValue, QueryResult } from './types.js';
import { displayCell, isNumericType, rowsNote } from './values.js';

/**
 * The executed notebook as Markdown: the prose as written, each sql block followed
 * by its result as a Markdown table, each chart block replaced by an image whose
 * SVG is inline (a data: URI: one line, so no blank line in the SVG can end the
 * HTML block and spill SVG source into the page).
 */
export function renderNotebookMarkdown(result: NotebookResult): string {
  const parts = result.cells.map(renderCell);
  parts.push(`---\n\n${footer(result)}`);
  return parts.join('\n\n') + '\n';
}

function renderCell(cell: NotebookCell): string {
  switch (cell.type) {
    case 'markdown':
      return cell.markdown;
    case 'params':
      return paramsTable(cell.params);
    case 'sql': {
      const out = [fence(cell.info, cell.sql)];
      if (cell.result) {
        if (cell.max_rows > 0 && cell.result.rows.length > 0) out.push(resultTable(cell.result));
        const note = rowsNote(cell.result.rows.length, cell.result.row_count, cell.max_rows);
        if (note) out.push(`*${escapeText(note)}*`);
      }
      return out.join('\n\n');
    }
    case 'chart': {
      if (cell.svg === null) return '*No rows to chart.*';
      const img = `<img alt="chart (notebook line ${cell.line})" src="data:image/svg+xml;base64,${Buffer.from(cell.svg, 'utf8').toString('base64')}">`;
      return cell.rows_drawn < cell.row_count ? `${img}\n\n*The chart draws the first ${cell.rows_drawn} of ${cell.row_count} rows.*` : img;
    }
  }
}

/** A fence longer than any run of backticks inside, so the SQL cannot close it early. */
function fence(info: string, code: string): string {
  const longest = Math.max(0, ...[...code.matchAll(/`+/g)].map((m) => m[0].length));
  const ticks = '`'.repeat(Math.max(3, longest + 1));
  return `${ticks}${info}\n${code}\n${ticks}`;
}

function resultTable(result: QueryResult): string {
  const header = `| ${result.columns.map((c) => escapeText(c.name) || ' ').join(' | ')} |`;
  const rule = `| ${result.columns.map((c) => (isNumericType(c.type) ? '---:' : '---')).join(' | ')} |`;
  const rows = result.rows.map((row) => `| ${row.map((v) => mdCell(displayCell(v))).join(' | ')} |`);
  return [header, rule, ...rows].join('\n');
}

function paramsTable(params: ParamValue[]): string {
  if (params.length === 0) return '*This notebook takes no parameters.*';
  const rows = params.map((p) => `| ${escapeText(p.name)} | ${mdCell(p.value)} | ${p.given ? '--param' : 'default'} |`);
  return ['| parameter | value | from |', '| --- | --- | --- |', ...rows].join('\n');
}

function mdCell(text: string | null): string {
  if (text === null) return '*NULL*';
  return escapeText(text).replace(/\r?\n/g, '<br>');
}

/**
 * Values are data, not Markdown: punctuation that would format is backslash-escaped,
 * and <, >, & become entities so a value can never be HTML in whatever renders this.
 */
function escapeText(text: string): string {
  return text
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/[\\`*_[\]|~]/g, '\\$&');
}

function footer(result: NotebookResult): string {
  const replay = result.replay_id ? `replay ${escapeText(result.replay_id)}` : 'no replay';
  return `*Ran ${escapeText(result.file)} over store ${escapeText(result.store)}, ${replay}, at ${result.generated_at} (hookshadow notebook).*`;
}
