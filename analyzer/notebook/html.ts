import { Marked, type Tokens } from 'marked';
import type { NotebookCell, NotebookResult, ParamValue, QueryResult } from './types.js';
import { displayCell, isNumericType, rowsNote } from './values.js';

/** Escapes text for HTML content and quoted attribute values. */
export function escapeHtml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');
}

const SAFE_IMAGE = /^data:image\/(png|gif|jpeg|webp|svg\+xml)[;,]/i;

/**
 * Prose to HTML for a report that must load nothing and run nothing when opened:
 * raw HTML in the notebook is shown as text, links to other pages become their text
 * and address (only in-page #anchors stay links), and images other than data: URIs
 * show their alt text. The page's Content-Security-Policy enforces the same.
 */
const prose = new Marked({
  gfm: true,
  renderer: {
    html({ text }: Tokens.HTML | Tokens.Tag) {
      return escapeHtml(text);
    },
    link({ href, tokens }: Tokens.Link) {
      const text = this.parser.parseInline(tokens);
      if (href.startsWith('#')) return `<a href="${escapeHtml(href)}">${text}</a>`;
      const shown = tokens.length === 1 && tokens[0]!.raw === href;
      return shown ? `<span class="url">${text}</span>` : `${text} <span class="url">(${escapeHtml(href)})</span>`;
    },
    image({ href, text }: Tokens.Image) {
      if (SAFE_IMAGE.test(href)) return `<img src="${escapeHtml(href)}" alt="${escapeHtml(text)}">`;
      return `<span class="image-omitted">[image: ${escapeHtml(text || href)}]</span>`;
    },
  },
});

const CSS = `
:root { color-scheme: light; --fg: #1f2328; --muted: #59636e; --line: #d1d9e0; --bg-alt: #f6f8fa; }
body { margin: 0; font: 15px/1.5 -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; color: var(--fg); background: #fff; }
main { max-width: 1100px; margin: 0 auto; padding: 24px 32px 48px; }
h1, h2, h3 { line-height: 1.25; margin: 1.4em 0 0.6em; }
h1 { border-bottom: 1px solid var(--line); padding-bottom: 0.3em; }
code, pre { font: 13px/1.45 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
:not(pre) > code { background: var(--bg-alt); padding: 0.1em 0.3em; border-radius: 4px; }
pre { background: var(--bg-alt); padding: 12px 16px; overflow-x: auto; border-radius: 6px; }
details.sql { margin: 1em 0 0.5em; }
details.sql summary { cursor: pointer; color: var(--muted); font-size: 13px; }
.table-wrap { overflow-x: auto; margin: 0.5em 0; }
table { border-collapse: collapse; font-size: 13px; }
th, td { border: 1px solid var(--line); padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: var(--bg-alt); white-space: nowrap; }
td { min-width: 4em; max-width: 40em; overflow-wrap: break-word; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
td.null { color: var(--muted); font-style: italic; }
p.note { color: var(--muted); font-size: 13px; font-style: italic; margin: 0.25em 0 1em; }
figure.chart { margin: 1em 0; overflow-x: auto; }
.url, .image-omitted { color: var(--muted); }
footer { margin-top: 3em; padding-top: 1em; border-top: 1px solid var(--line); color: var(--muted); font-size: 13px; }
`.trim();

/**
 * The executed notebook as one self-contained HTML page: inline CSS, charts as
 * inline SVG, no script, no external URL. Every value from the store is escaped.
 */
export function renderNotebookHtml(result: NotebookResult): string {
  const title = result.title ?? result.file;
  const body = result.cells.map((cell, i) => renderCell(cell, i, result.file)).join('\n');
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<title>${escapeHtml(title)}</title>
<style>
${CSS}
</style>
</head>
<body>
<main>
${body}
<footer>Ran ${escapeHtml(result.file)} over store ${escapeHtml(result.store)}, ${result.replay_id ? `replay ${escapeHtml(result.replay_id)}` : 'no replay'}, at ${escapeHtml(result.generated_at)} (hookshadow notebook).</footer>
</main>
</body>
</html>
`;
}

function renderCell(cell: NotebookCell, index: number, file: string): string {
  switch (cell.type) {
    case 'markdown':
      return prose.parse(cell.markdown, { async: false });
    case 'params':
      return paramsTable(cell.params);
    case 'sql': {
      const label = `SQL${cell.name ? ` “${escapeHtml(cell.name)}”` : ''} · ${escapeHtml(file)}:${cell.line}`;
      const out = [`<details class="sql"><summary>${label}</summary><pre><code>${escapeHtml(cell.sql)}</code></pre></details>`];
      if (cell.result) {
        if (cell.max_rows > 0 && cell.result.rows.length > 0) out.push(resultTable(cell.result));
        const note = rowsNote(cell.result.rows.length, cell.result.row_count, cell.max_rows);
        if (note) out.push(`<p class="note">${escapeHtml(note)}</p>`);
      }
      return `<section class="query">\n${out.join('\n')}\n</section>`;
    }
    case 'chart': {
      if (cell.svg === null) return '<p class="note">No rows to chart.</p>';
      const note = cell.rows_drawn < cell.row_count ? `<figcaption class="note">The chart draws the first ${cell.rows_drawn} of ${cell.row_count} rows.</figcaption>` : '';
      return `<figure class="chart">${scopeSvgIds(cell.svg, `chart${index}-`)}${note}</figure>`;
    }
  }
}

/**
 * Vega names clip paths `clip1`, `clip2`… in every SVG; inline in one page, the
 * second chart's url(#clip1) would find the first chart's clip. Prefixing every id
 * (and each reference to one) keeps each chart's to itself.
 */
function scopeSvgIds(svg: string, prefix: string): string {
  return svg
    .replace(/\bid="([^"]+)"/g, (_, id: string) => `id="${prefix}${id}"`)
    .replace(/url\(#([^)]+)\)/g, (_, id: string) => `url(#${prefix}${id})`)
    .replace(/href="#([^"]+)"/g, (_, id: string) => `href="#${prefix}${id}"`);
}

function resultTable(result: QueryResult): string {
  const numeric = result.columns.map((c) => isNumericType(c.type));
  const head = result.columns.map((c, i) => `<th${numeric[i] ? ' class="num"' : ''} title="${escapeHtml(c.type)}">${escapeHtml(c.name)}</th>`).join('');
  const rows = result.rows.map((row) => `<tr>${row.map((v, i) => td(displayCell(v), numeric[i]!)).join('')}</tr>`);
  return `<div class="table-wrap"><table>\n<thead><tr>${head}</tr></thead>\n<tbody>\n${rows.join('\n')}\n</tbody>\n</table></div>`;
}

function td(text: string | null, numeric: boolean): string {
  if (text === null) return '<td class="null">NULL</td>';
  return `<td${numeric ? ' class="num"' : ''}>${escapeHtml(text)}</td>`;
}

function paramsTable(params: ParamValue[]): string {
  if (params.length === 0) return '<p class="note">This notebook takes no parameters.</p>';
  const rows = params.map((p) => `<tr><td><code>${escapeHtml(p.name)}</code></td>${td(p.value, false)}<td>${p.given ? '--param' : 'default'}</td></tr>`);
  return `<div class="table-wrap"><table class="params">\n<thead><tr><th>parameter</th><th>value</th><th>from</th></tr></thead>\n<tbody>\n${rows.join('\n')}\n</tbody>\n</table></div>`;
}
