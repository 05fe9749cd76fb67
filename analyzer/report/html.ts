/**
 * `hookshadow analyze --format html`: one self-contained page. No script, no external
 * URL: styles are inline, the trend chart is inline SVG, and a Content-Security-Policy
 * forbids scripts and fetches, so even a slip in escaping could neither run code nor
 * call out. Every interpolated value goes through the `html` template tag, which
 * escapes anything that is not already markup; payload-derived strings are untrusted.
 */
import { diffWordsWithSpace } from 'diff';
import { DIVERGENT_CLASSES, type Divergence } from '../../core/divergence-schema.js';
import { renderChart } from '../charts.js';
import type { AnalysisResult, DivergentDelivery, Ranked } from '../result.js';
import { differenceOrigin, differenceSides, eventLabel, percent, plural, shortValue, sumCounts, truncate, valueJson, verdictOf } from './describe.js';
import { escapeHtml } from './escape.js';

export interface HtmlOptions {
  /** Deliveries shown in detail; the rest are counted. */
  maxDeliveries?: number;
}

const DEFAULTS: Required<HtmlOptions> = { maxDeliveries: 1000 };

/** Longest value text shown in a diff column; beyond it the value is cut. */
const MAX_VALUE_CHARS = 20_000;
/** Word diffs needing more edits than this are shown without highlights (bounds the time on very different values). */
const MAX_EDIT_LENGTH = 1_000;

/** Markup that is already safe; anything else interpolated into `html` is escaped. */
interface SafeHtml {
  readonly __html: string;
}

type HtmlValue = string | number | SafeHtml | HtmlValue[] | null | undefined;

const raw = (markup: string): SafeHtml => ({ __html: markup });

/** Template tag: escapes every interpolated string, passes `SafeHtml` through, joins arrays. */
function html(strings: TemplateStringsArray, ...values: HtmlValue[]): SafeHtml {
  let out = strings[0]!;
  values.forEach((value, i) => {
    out += toHtml(value) + strings[i + 1]!;
  });
  return raw(out);
}

function toHtml(value: HtmlValue): string {
  if (value === null || value === undefined) return '';
  if (Array.isArray(value)) return value.map(toHtml).join('');
  if (typeof value === 'object') return value.__html;
  return escapeHtml(String(value));
}

/** Renders the analysis as one self-contained HTML page. */
export async function renderHtml(result: AnalysisResult, options: HtmlOptions = {}): Promise<string> {
  const opts = { ...DEFAULTS, ...options };
  const verdict = verdictOf(result);
  const chart = await trendChart(result);
  const page = html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>hookshadow — ${result.replay_id}</title>
<style>${raw(STYLE)}</style>
</head>
<body>
<header>
<h1>hookshadow analysis <code>${result.replay_id}</code></h1>
<p class="verdict ${verdict.status}">${verdict.headline}</p>
<p class="meta">store <code>${result.store}</code> · rules ${result.rules_file === null ? 'none' : html`<code>${result.rules_file}</code>`} · generated ${result.generated_at}</p>
</header>
<main>
${totalsSection(result)}
<section id="trend"><h2>Daily trend</h2>${chart}</section>
${classSection(result)}
${flowSection(result)}
${worstSection(result)}
${baselineSection(result)}
${rulesSection(result)}
${noiseSection(result)}
${unattributedSection(result)}
${deliveriesSection(result, opts)}
</main>
</body>
</html>
`;
  return page.__html;
}

function totalsSection(result: AnalysisResult): SafeHtml {
  const t = result.totals;
  const items: [string, number][] = [
    ['deliveries', t.deliveries],
    ['with a flow', t.deliveries_with_flow],
    ['flow runs', t.flow_runs],
    ['divergent runs', t.divergent_runs],
    ['divergent deliveries', t.divergent_deliveries],
    ['legacy effects', t.legacy_effects],
    ['intents', t.intents],
    ['matches', t.matches],
    ['unexpected', t.unexpected],
    ['expected', t.expected],
  ];
  return html`<section id="totals"><h2>Totals</h2><dl class="totals">${items.map(([label, n]) => html`<div><dt>${label}</dt><dd>${n}</dd></div>`)}</dl></section>`;
}

/** The chart's series, in legend order, with their colours (so the picture does not depend on Vega's palette). */
const TREND_SERIES = ['flow runs', 'divergent runs'];

const TREND_SPEC = {
  width: 640,
  height: 220,
  background: '#ffffff',
  transform: [{ fold: TREND_SERIES, as: ['series', 'count'] }],
  mark: { type: 'bar' },
  encoding: {
    // Ordinal, not temporal: days are UTC strings, and a temporal axis would be drawn in the machine's time zone.
    x: { field: 'day', type: 'ordinal', title: 'day (UTC)', axis: { labelAngle: 0 } },
    xOffset: { field: 'series', type: 'nominal', sort: TREND_SERIES },
    y: { field: 'count', type: 'quantitative', title: 'runs' },
    color: {
      field: 'series',
      type: 'nominal',
      sort: TREND_SERIES,
      scale: { domain: TREND_SERIES, range: ['#4c78a8', '#e45756'] },
      legend: { title: null, orient: 'top' },
    },
  },
};

/** Flow runs and divergent runs per day as inline SVG, in the `#trend-chart` container. */
async function trendChart(result: AnalysisResult): Promise<SafeHtml> {
  if (result.daily.length === 0) return html`<div id="trend-chart" class="empty">No days to chart.</div>`;
  const rows = result.daily.map((d) => ({ day: d.day, 'flow runs': d.flow_runs, 'divergent runs': d.divergent_runs }));
  // Vega escapes the text it draws; the SVG holds only our numbers and day labels.
  const svg = await renderChart(TREND_SPEC, rows);
  const rates = result.daily.map((d) => `${d.day}: ${percent(d.divergence_rate)}`).join(', ');
  return html`<figure id="trend-chart">${raw(svg)}<figcaption>Divergence rate per day — ${rates}</figcaption></figure>`;
}

/** A table; cells are escaped unless already markup. */
function table(header: string[], rows: HtmlValue[][], numeric: boolean[] = []): SafeHtml {
  const cls = (i: number) => (numeric[i] ? raw(' class="num"') : '');
  return html`<table><thead><tr>${header.map((h, i) => html`<th${cls(i)}>${h}</th>`)}</tr></thead><tbody>${rows.map(
    (row) => html`<tr>${row.map((cell, i) => html`<td${cls(i)}>${cell}</td>`)}</tr>`,
  )}</tbody></table>`;
}

function classSection(result: AnalysisResult): SafeHtml {
  const rows: HtmlValue[][] = DIVERGENT_CLASSES.map((cls) => {
    const c = result.counts_by_class[cls] ?? { unexpected: 0, expected: 0 };
    return [cls, c.unexpected, c.expected];
  });
  rows.push([html`<strong>total</strong>`, result.totals.unexpected, result.totals.expected]);
  return html`<section id="classes"><h2>Divergences by class</h2>${table(['class', 'unexpected', 'expected'], rows, [false, true, true])}</section>`;
}

function flowSection(result: AnalysisResult): SafeHtml {
  const rows = result.by_flow.map((f) => [
    html`<code>${f.flow}</code>`,
    f.runs,
    f.divergent_runs,
    percent(f.divergence_rate),
    sumCounts(f.unexpected),
    f.expected,
  ]);
  const body = rows.length
    ? table(['flow', 'runs', 'divergent runs', 'rate', 'unexpected', 'expected'], rows, [false, true, true, true, true, true])
    : html`<p>No flow ran.</p>`;
  return html`<section id="flows"><h2>Flows</h2>${body}</section>`;
}

function worstSection(result: AnalysisResult): SafeHtml | null {
  const { kinds, targets, flows } = result.worst;
  if (kinds.length + targets.length + flows.length === 0) return null;
  const list = (title: string, ranked: Ranked[]) =>
    html`<div><h3>${title}</h3><ol>${ranked.map((r) => html`<li><code>${r.key}</code> <span class="count">${r.count}</span></li>`)}</ol></div>`;
  return html`<section id="worst"><h2>Worst offenders</h2><div class="worst">${list('kinds', kinds)}${list('targets', targets)}${list('flows', flows)}</div></section>`;
}

function baselineSection(result: AnalysisResult): SafeHtml | null {
  const b = result.baseline;
  if (!b) return null;
  const list = (title: string, rows: Divergence[]) =>
    html`<h3>${title} (${rows.length})</h3>${rows.length ? html`<ul class="diffs">${rows.map((d) => html`<li>${differenceHead(d)}${shortValues(d)}</li>`)}</ul>` : html`<p>None.</p>`}`;
  return html`<section id="baseline"><h2>Against baseline <code>${b.replay_id}</code></h2>${list('Introduced', b.introduced)}${list('Resolved', b.resolved)}</section>`;
}

function rulesSection(result: AnalysisResult): SafeHtml {
  const { expect, expired, unused } = result.rules;
  const problemsOf = (id: string) => [expired.includes(id) ? 'expired' : null, unused.includes(id) ? 'unused' : null].filter((p): p is string => p !== null);
  const rows = expect.map((r) => {
    const problems = problemsOf(r.id);
    if (r.expired && !problems.includes('expired')) problems.unshift('expired');
    const status = problems.length ? html`<span class="bad">${problems.join(', ')}</span>` : 'ok';
    return [html`<code>${r.id}</code>`, r.owner, r.expires ?? '—', r.suppressed, status, r.reason];
  });
  // Stale rules that are not expect rules (normalize rules) have no row above.
  const expectIds = new Set(expect.map((r) => r.id));
  const others = [...new Set([...expired, ...unused])].filter((id) => !expectIds.has(id));
  const otherList = others.length
    ? html`<p>Other stale rules: ${others.map((id, i) => html`${i ? ', ' : ''}<code>${id}</code> (${problemsOf(id).join(', ')})`)}</p>`
    : null;
  const body = rows.length
    ? table(['rule', 'owner', 'expires', 'suppressed', 'status', 'reason'], rows, [false, false, false, true, false, false])
    : html`<p>No expect rules.</p>`;
  return html`<section id="rules"><h2>Rules</h2>${body}${otherList}</section>`;
}

function noiseSection(result: AnalysisResult): SafeHtml | null {
  const noise = result.noise;
  if (!noise) return null;
  const rows = noise.paths.map((p) => [
    html`<code>${p.kind}</code>`,
    html`<code>${p.path}</code>`,
    `${p.self_differs}/${p.self_pairs}`,
    `${p.legacy_differs}/${p.legacy_pairs}`,
    p.noise ? html`<span class="bad">noise</span>` : 'signal',
  ]);
  return html`<section id="noise"><h2>Noise</h2><p>Compared with perturbed replay <code>${noise.replay_id}</code>; noise paths ${noise.excluded ? 'excluded from' : 'still in'} the counts.</p>${
    rows.length ? table(['kind', 'path', 'self differs', 'legacy differs', 'verdict'], rows, [false, false, true, true, false]) : html`<p>No paths differed.</p>`
  }</section>`;
}

function unattributedSection(result: AnalysisResult): SafeHtml | null {
  if (result.unattributed_total === 0) return null;
  return html`<section id="unattributed"><h2>Unattributed effects (${result.unattributed_total})</h2>${result.unattributed.map(differenceBlock)}</section>`;
}

function deliveriesSection(result: AnalysisResult, opts: Required<HtmlOptions>): SafeHtml {
  const shown = result.deliveries.slice(0, opts.maxDeliveries);
  // The analyzer may have cut the list already (`--limit`); its totals still count every delivery.
  const total = Math.max(result.deliveries_total, result.deliveries.length);
  const unexpected = Math.max(result.totals.divergent_deliveries, result.deliveries.filter((d) => d.unexpected).length);
  const left = total - shown.length;
  return html`<section id="deliveries"><h2>Divergent deliveries (${total}, ${unexpected} with unexpected differences)</h2>${shown.map(deliveryBlock)}${
    left ? html`<p class="more">…and ${plural(left, 'more delivery', 'more deliveries')} not shown.</p>` : null
  }</section>`;
}

/** A delivery, open when something in it is unexpected, collapsed when every difference was expected. */
function deliveryBlock(delivery: DivergentDelivery): SafeHtml {
  const unexpected = delivery.differences.filter((d) => d.expected_by === null).length;
  const badge = unexpected
    ? html`<span class="badge fail">${unexpected} unexpected</span>`
    : html`<span class="badge expected">all expected</span>`;
  return html`<details class="delivery"${delivery.unexpected ? raw(' open') : ''}><summary><code>${delivery.delivery_id}</code> ${eventLabel(delivery.event, delivery.action)} · ${delivery.received_at}${delivery.source ? ` · ${delivery.source}` : ''} ${badge}</summary>${delivery.differences.map(differenceBlock)}</details>`;
}

/** The one-line head of a difference: class, kind, target, path, origin, rule. */
function differenceHead(d: Divergence): SafeHtml {
  const origin = differenceOrigin(d);
  return html`<span class="cls ${d.expected_by ? 'expected' : 'unexpected'}">${d.class}</span>${[d.kind, d.target, d.path]
    .filter((p): p is string => !!p)
    .map((p) => html` <code>${p}</code>`)}${origin ? html` <span class="origin">${origin}</span>` : null}${
    d.expected_by ? html` <span class="rule">expected by <code>${d.expected_by}</code></span>` : null
  }`;
}

/** The values a difference concerns, one line each side: `: "a" → "b"`. */
function shortValues(d: Divergence): SafeHtml | null {
  const sides = differenceSides(d);
  if (sides.length === 0) return null;
  return html`: ${sides.map((side, i) => html`${i ? ' → ' : ''}<code>${shortValue(side === 'legacy' ? d.legacy_value : d.flow_value)}</code>`)}`;
}

function differenceBlock(d: Divergence): SafeHtml {
  // An unattributed row's head already names its effect.
  const effect = d.effect_id && d.class !== 'unattributed' ? `effect ${d.effect_id}` : null;
  const meta = [d.route ? `route ${d.route}` : null, effect, d.run_id ? `run ${d.run_id}` : null].filter(
    (m): m is string => m !== null,
  );
  const columns = differenceSides(d).length ? sideBySide(d) : null;
  return html`<div class="difference${d.expected_by ? ' is-expected' : ''}"><div class="head">${differenceHead(d)}</div>${
    meta.length ? html`<div class="meta">${meta.join(' · ')}</div>` : null
  }${columns}</div>`;
}

/**
 * Legacy value left, flow value right. Two strings are compared as text, anything else
 * as pretty canonical JSON; removed words are highlighted on the left, added on the right.
 */
function sideBySide(d: Divergence): SafeHtml {
  // Only the sides the class has get a value: after a Parquet round trip an absent side
  // reads back as JSON null, which must not show as a value `null`.
  const sides = differenceSides(d);
  const bothStrings = typeof d.legacy_value === 'string' && typeof d.flow_value === 'string';
  const text = (side: 'legacy' | 'flow') => {
    if (!sides.includes(side)) return null;
    const v = side === 'legacy' ? d.legacy_value : d.flow_value;
    const t = bothStrings ? (v as string) : valueJson(v, true);
    return t === null ? null : truncate(t, MAX_VALUE_CHARS);
  };
  const legacy = text('legacy');
  const flow = text('flow');
  let left: HtmlValue = legacy;
  let right: HtmlValue = flow;
  if (legacy !== null && flow !== null) [left, right] = wordDiff(legacy, flow);
  const column = (side: string, body: HtmlValue, present: boolean) =>
    html`<div class="col ${side}"><div class="label">${side}</div>${present ? html`<pre>${body}</pre>` : html`<p class="none">no value</p>`}</div>`;
  return html`<div class="cols">${column('legacy', left, legacy !== null)}${column('flow', right, flow !== null)}</div>`;
}

/** Both sides with word-level highlights; plain text when the values are too different to diff cheaply. */
function wordDiff(legacy: string, flow: string): [SafeHtml, SafeHtml] {
  const changes = diffWordsWithSpace(legacy, flow, { maxEditLength: MAX_EDIT_LENGTH });
  if (!changes) return [html`${legacy}`, html`${flow}`];
  const left = changes.filter((c) => !c.added).map((c) => (c.removed ? html`<del>${c.value}</del>` : html`${c.value}`));
  const right = changes.filter((c) => !c.removed).map((c) => (c.added ? html`<ins>${c.value}</ins>` : html`${c.value}`));
  return [html`${left}`, html`${right}`];
}

const STYLE = `
:root { color-scheme: light; --fail: #b42318; --warn: #b54708; --pass: #067647; --muted: #667085; --line: #d0d5dd; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0; color: #101828; background: #f9fafb; }
header { padding: 16px 24px; background: #fff; border-bottom: 1px solid var(--line); }
main { padding: 8px 24px 48px; max-width: 1200px; }
h1 { font-size: 20px; margin: 0 0 8px; }
h2 { font-size: 16px; margin: 24px 0 8px; }
h3 { font-size: 14px; margin: 12px 0 4px; }
code, pre { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12.5px; }
.verdict { font-weight: 600; font-size: 16px; margin: 4px 0; }
.verdict.fail { color: var(--fail); } .verdict.warn { color: var(--warn); } .verdict.pass { color: var(--pass); }
.meta, .origin, .rule, .none, figcaption, .more { color: var(--muted); }
.totals { display: flex; flex-wrap: wrap; gap: 8px; margin: 0; }
.totals div { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: 6px 12px; min-width: 110px; }
.totals dt { color: var(--muted); font-size: 12px; } .totals dd { margin: 0; font-size: 18px; font-weight: 600; }
table { border-collapse: collapse; background: #fff; }
th, td { border: 1px solid var(--line); padding: 4px 8px; text-align: left; vertical-align: top; }
.num { text-align: right; font-variant-numeric: tabular-nums; }
#trend-chart { margin: 0; background: #fff; border: 1px solid var(--line); padding: 8px; display: inline-block; }
.worst { display: flex; gap: 32px; flex-wrap: wrap; }
.bad { color: var(--fail); font-weight: 600; }
details.delivery { background: #fff; border: 1px solid var(--line); border-radius: 6px; margin: 8px 0; padding: 6px 12px; }
details.delivery > summary { cursor: pointer; }
.badge { border-radius: 10px; padding: 0 8px; font-size: 12px; }
.badge.fail { background: #fee4e2; color: var(--fail); } .badge.expected { background: #f2f4f7; color: var(--muted); }
.difference { border-top: 1px solid #eaecf0; padding: 8px 0; overflow-wrap: anywhere; }
.difference.is-expected { opacity: 0.75; }
.cls { font-weight: 600; } .cls.unexpected { color: var(--fail); } .cls.expected { color: var(--muted); }
.cols { display: grid; grid-template-columns: 1fr 1fr; gap: 8px; margin-top: 6px; }
.col { min-width: 0; }
.col .label { font-size: 12px; color: var(--muted); }
.col pre { margin: 0; padding: 6px 8px; background: #f9fafb; border: 1px solid #eaecf0; white-space: pre-wrap; word-break: break-word; max-height: 480px; overflow: auto; }
del { background: #fecdca; text-decoration: line-through; }
ins { background: #abefc6; text-decoration: none; }
ul.diffs { padding-left: 20px; }
`;
