/**
 * `hookshadow analyze --format md`: the analysis as a pull-request comment. GitHub
 * renders it, so every payload-derived string is escaped (tables, code spans, fences)
 * and the comment stays under GitHub's 65,536-character limit by listing only the
 * first deliveries and saying how many were left out.
 */
import { DIVERGENT_CLASSES, type Divergence } from '../../core/divergence-schema.js';
import type { AnalysisResult, DivergentDelivery, Ranked } from '../result.js';
import { differenceOrigin, differenceSides, eventLabel, percent, plural, shortValue, sumCounts, verdictOf, type VerdictStatus } from './describe.js';
import { escapeHtml, escapeMarkdown, escapeMarkdownCell, markdownCode, markdownFence } from './escape.js';

export interface MarkdownOptions {
  /** Deliveries listed in detail; the rest are counted. */
  maxDeliveries?: number;
  /** Baseline differences listed per side (introduced, resolved). */
  maxBaseline?: number;
  /** Lines of one text diff shown before it is cut. */
  maxDiffLines?: number;
  /** Stop listing deliveries once the comment is this long (GitHub refuses comments over 65,536 characters). */
  maxChars?: number;
}

const DEFAULTS: Required<MarkdownOptions> = {
  maxDeliveries: 50,
  maxBaseline: 20,
  maxDiffLines: 80,
  maxChars: 60_000,
};

const VERDICT_ICON: Record<VerdictStatus, string> = { pass: '✅', warn: '⚠️', fail: '❌' };

/** Renders the analysis as GitHub-flavoured Markdown for a pull-request comment. */
export function renderMarkdown(result: AnalysisResult, options: MarkdownOptions = {}): string {
  const opts = { ...DEFAULTS, ...options };
  const head = [
    heading(result),
    totalsSection(result),
    classSection(result),
    flowSection(result),
    worstSection(result),
    baselineSection(result, opts),
    rulesSection(result),
    noiseSection(result),
    unattributedSection(result, opts),
  ].filter((s): s is string => s !== null);
  const soFar = head.join('\n\n').length;
  return [...head, deliveriesSection(result, opts, opts.maxChars - soFar)].join('\n\n') + '\n';
}

function heading(result: AnalysisResult): string {
  const verdict = verdictOf(result);
  const meta = [
    `replay ${markdownCode(result.replay_id)}`,
    `store ${markdownCode(result.store)}`,
    `rules ${result.rules_file === null ? 'none' : markdownCode(result.rules_file)}`,
    `generated ${escapeMarkdown(result.generated_at)}`,
  ];
  return `## ${VERDICT_ICON[verdict.status]} hookshadow: ${escapeMarkdown(verdict.headline)}\n\n${meta.join(' · ')}`;
}

/** A GFM table; `align` is `l` or `r` per column. Cells must already be escaped. */
export function table(header: string[], align: ('l' | 'r')[], rows: string[][]): string {
  const line = (cells: string[]) => `| ${cells.join(' | ')} |`;
  const rule = align.map((a) => (a === 'r' ? '---:' : '---'));
  return [line(header), line(rule), ...rows.map(line)].join('\n');
}

function totalsSection(result: AnalysisResult): string {
  const t = result.totals;
  return table(
    ['deliveries', 'with a flow', 'flow runs', 'divergent runs', 'divergent deliveries', 'legacy effects', 'intents', 'matches'],
    ['r', 'r', 'r', 'r', 'r', 'r', 'r', 'r'],
    [[t.deliveries, t.deliveries_with_flow, t.flow_runs, t.divergent_runs, t.divergent_deliveries, t.legacy_effects, t.intents, t.matches].map(String)],
  );
}

function classSection(result: AnalysisResult): string {
  const rows = DIVERGENT_CLASSES.map((cls) => {
    const c = result.counts_by_class[cls] ?? { unexpected: 0, expected: 0 };
    return [cls, String(c.unexpected), String(c.expected)];
  });
  rows.push(['**total**', `**${result.totals.unexpected}**`, `**${result.totals.expected}**`]);
  return `### Divergences by class\n\n${table(['class', 'unexpected', 'expected'], ['l', 'r', 'r'], rows)}`;
}

function flowSection(result: AnalysisResult): string {
  if (result.by_flow.length === 0) return '### Flows\n\nNo flow ran.';
  const rows = result.by_flow.map((f) => [
    escapeMarkdownCell(f.flow),
    String(f.runs),
    String(f.divergent_runs),
    percent(f.divergence_rate),
    String(sumCounts(f.unexpected)),
    String(f.expected),
  ]);
  return `### Flows\n\n${table(['flow', 'runs', 'divergent runs', 'rate', 'unexpected', 'expected'], ['l', 'r', 'r', 'r', 'r', 'r'], rows)}`;
}

function worstSection(result: AnalysisResult): string | null {
  const { kinds, targets, flows } = result.worst;
  if (kinds.length + targets.length + flows.length === 0) return null;
  const ranked = (label: string, list: Ranked[]) =>
    list.length ? `- **${label}:** ${list.map((r) => `${markdownCode(r.key)} (${r.count})`).join(', ')}` : null;
  const lines = [ranked('kinds', kinds), ranked('targets', targets), ranked('flows', flows)].filter((l): l is string => l !== null);
  return `### Worst offenders\n\n${lines.join('\n')}`;
}

function baselineSection(result: AnalysisResult, opts: Required<MarkdownOptions>): string | null {
  const b = result.baseline;
  if (!b) return null;
  const list = (label: string, rows: Divergence[]) => {
    if (rows.length === 0) return `**${label}:** none.`;
    const shown = rows.slice(0, opts.maxBaseline).map((d) => `- ${differenceLine(d)}`);
    const more = rows.length > shown.length ? [`- …and ${rows.length - shown.length} more`] : [];
    return `**${label} (${rows.length}):**\n\n${[...shown, ...more].join('\n')}`;
  };
  return [
    `### Against baseline ${markdownCode(b.replay_id)}`,
    `${plural(b.introduced_total, 'divergence')} introduced, ${b.resolved_total} resolved.`,
    list('Introduced', b.introduced),
    list('Resolved', b.resolved),
  ].join('\n\n');
}

function rulesSection(result: AnalysisResult): string {
  const { expect, expired, unused } = result.rules;
  const byId = new Map(expect.map((r) => [r.id, r]));
  const problems = [
    ...expired.map((id) => ({ id, problem: 'expired' })),
    ...unused.map((id) => ({ id, problem: 'unused' })),
  ];
  if (problems.length === 0) {
    return `### Rules\n\n${expect.length ? `All ${plural(expect.length, 'expect rule')} are current and in use.` : 'No expect rules.'}`;
  }
  const rows = problems.map(({ id, problem }) => {
    const rule = byId.get(id);
    return [
      markdownCode(id, true),
      problem,
      escapeMarkdownCell(rule?.owner ?? ''),
      escapeMarkdownCell(rule?.expires ?? ''),
      rule ? String(rule.suppressed) : '',
      escapeMarkdownCell(rule?.reason ?? ''),
    ];
  });
  return `### Rules needing attention\n\n${table(['rule', 'problem', 'owner', 'expires', 'suppressed', 'reason'], ['l', 'l', 'l', 'l', 'r', 'l'], rows)}`;
}

function noiseSection(result: AnalysisResult): string | null {
  const noise = result.noise;
  if (!noise || noise.paths.length === 0) return null;
  const rows = noise.paths.map((p) => [
    markdownCode(p.kind, true),
    markdownCode(p.path, true),
    `${p.self_differs}/${p.self_pairs}`,
    `${p.legacy_differs}/${p.legacy_pairs}`,
    p.noise ? 'noise' : 'signal',
  ]);
  const count = noise.paths.filter((p) => p.noise).length;
  const intro =
    `Compared with perturbed replay ${markdownCode(noise.replay_id)}: ${plural(count, 'path')} judged noise` +
    (noise.excluded ? ', and excluded from the counts above.' : ' (not excluded).');
  return `### Noise\n\n${intro}\n\n${table(['kind', 'path', 'self differs', 'legacy differs', 'verdict'], ['l', 'l', 'r', 'r', 'l'], rows)}`;
}

function unattributedSection(result: AnalysisResult, opts: Required<MarkdownOptions>): string | null {
  const rows = result.unattributed;
  if (rows.length === 0) return null;
  const shown = rows.slice(0, opts.maxDeliveries).map((d) => `- ${differenceLine(d)}`);
  // The analyzer may have cut the list (--limit): the total counts them all.
  const more = result.unattributed_total > shown.length ? [`- …and ${result.unattributed_total - shown.length} more`] : [];
  return `### Unattributed effects (${result.unattributed_total})\n\n${[...shown, ...more].join('\n')}`;
}

/**
 * Deliveries with at least one unexpected difference, each with all its differences.
 * Deliveries whose differences were all expected are only counted: a PR comment is
 * for what needs a decision. Counts come from the totals, because the analyzer may
 * already have cut the list (`--limit`), keeping unexpected deliveries first.
 */
function deliveriesSection(result: AnalysisResult, opts: Required<MarkdownOptions>, budget: number): string {
  const listed = result.deliveries.filter((d) => d.unexpected);
  const divergent = Math.max(result.totals.divergent_deliveries, listed.length);
  const expectedOnly = Math.max(0, Math.max(result.deliveries_total, result.deliveries.length) - divergent);
  const note = expectedOnly ? `\n\n${plural(expectedOnly, 'delivery', 'deliveries')} with only expected differences not listed.` : '';
  if (divergent === 0) return `### Divergent deliveries\n\nNone.${note}`;
  const blocks: string[] = [];
  let used = 0;
  for (const delivery of listed.slice(0, opts.maxDeliveries)) {
    const block = deliveryBlock(delivery, opts);
    // Always show the first delivery, even when it alone is over the budget.
    if (blocks.length > 0 && used + block.length > budget) break;
    blocks.push(block);
    used += block.length + 2;
  }
  const left = divergent - blocks.length;
  const leftNote = left ? `\n\n…and ${plural(left, 'more delivery', 'more deliveries')} with unexpected differences not shown (see \`--format html\` or \`--format json\`).` : '';
  return `### Divergent deliveries (${divergent})${note}\n\n${blocks.join('\n\n')}${leftNote}`;
}

function deliveryBlock(delivery: DivergentDelivery, opts: Required<MarkdownOptions>): string {
  const title = `#### ${markdownCode(delivery.delivery_id)} ${escapeMarkdown(eventLabel(delivery.event, delivery.action))} · ${escapeMarkdown(delivery.received_at)}`;
  const parts = [title, ''];
  for (const d of delivery.differences) {
    parts.push(`- ${differenceLine(d)}`);
    if (d.text_diff) parts.push(textDiffDetails(d, opts.maxDiffLines));
  }
  return parts.join('\n');
}

/** One difference as Markdown: the class in bold, then kind, target, path and values as code spans. */
function differenceLine(d: Divergence): string {
  const label = `**${d.class}**`;
  const code = [d.kind, d.target, d.path].filter((p): p is string => !!p).map((p) => markdownCode(p));
  const values = describeValues(d);
  const origin = differenceOrigin(d);
  return (
    [label, ...code].join(' ') +
    (values ? `: ${values}` : '') +
    (origin ? ` (${escapeMarkdown(origin)})` : '') +
    (d.expected_by ? ` — expected by ${markdownCode(d.expected_by)}` : '')
  );
}

function describeValues(d: Divergence): string | null {
  const sides = differenceSides(d);
  if (sides.length === 0) return null;
  return sides.map((side) => markdownCode(shortValue(side === 'legacy' ? d.legacy_value : d.flow_value))).join(' → ');
}

/** A long text difference, collapsed: GitHub renders the fence inside `<details>` when blank lines surround it. */
function textDiffDetails(d: Divergence, maxLines: number): string {
  const lines = (d.text_diff ?? '').replace(/\n$/, '').split('\n');
  const shown = lines.length > maxLines ? [...lines.slice(0, maxLines), `… ${lines.length - maxLines} more lines`] : lines;
  const summary = `text diff${d.path ? ` at ${d.path}` : ''}`;
  return `\n<details><summary>${escapeHtml(summary)}</summary>\n\n${markdownFence(shown.join('\n'), 'diff')}\n\n</details>\n`;
}
