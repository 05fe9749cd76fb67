import type { AnalysisResult } from '../result.js';
import { describeDifference, eventLabel, verdictOf } from './describe.js';

/**
 * `hookshadow analyze`'s default output: one screen of summary (verdict, counts by
 * class and flow, worst offenders, rules, noise, baseline), then each divergent
 * delivery with its differences, long text as a unified diff.
 */
export function renderText(r: AnalysisResult): string {
  const t = r.totals;
  const verdict = verdictOf(r);
  const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
  const out: string[] = [
    `analysis of replay ${r.replay_id}: ${verdict.status.toUpperCase()} — ${verdict.headline}`,
    `  deliveries ${t.deliveries}   with a flow ${t.deliveries_with_flow}   flow runs ${t.flow_runs}   divergent runs ${t.divergent_runs}   legacy effects ${t.legacy_effects}   intents ${t.intents}`,
    `  matches ${t.matches}   unexpected ${t.unexpected}   expected ${t.expected}${r.rules_file ? ` (rules ${r.rules_file})` : ''}`,
    '',
    `  ${'class'.padEnd(16)} ${'unexpected'.padStart(10)} ${'expected'.padStart(9)}`,
    ...Object.entries(r.counts_by_class)
      .filter(([cls, c]) => cls !== 'match' && c.unexpected + c.expected > 0)
      .map(([cls, c]) => `  ${cls.padEnd(16)} ${String(c.unexpected).padStart(10)} ${String(c.expected).padStart(9)}`),
    '',
    `  ${'flow'.padEnd(24)} ${'runs'.padStart(6)} ${'divergent'.padStart(9)} ${'rate'.padStart(7)}  unexpected by class`,
    ...r.by_flow.map(
      (f) =>
        `  ${f.flow.padEnd(24)} ${String(f.runs).padStart(6)} ${String(f.divergent_runs).padStart(9)} ${pct(f.divergence_rate).padStart(7)}  ${
          Object.entries(f.unexpected).map(([c, n]) => `${c} ${n}`).join(', ') || '-'
        }${f.expected ? ` (+${f.expected} expected)` : ''}`,
    ),
  ];
  const worst = (label: string, items: { key: string; count: number }[]) =>
    items.length ? [`  worst ${label}: ${items.slice(0, 5).map((i) => `${i.key} (${i.count})`).join(', ')}`] : [];
  out.push('', ...worst('kinds', r.worst.kinds), ...worst('targets', r.worst.targets), ...worst('flows', r.worst.flows));
  if (r.rules.expired.length) out.push(`  expired rules (suppress nothing; fail under --fail-on): ${r.rules.expired.join(', ')}`);
  if (r.rules.unused.length) out.push(`  unused rules (matched nothing; fail under --fail-on): ${r.rules.unused.join(', ')}`);
  for (const e of r.rules.expect.filter((x) => x.suppressed > 0)) out.push(`  rule ${e.id} suppressed ${e.suppressed} (${e.reason}; owner ${e.owner})`);
  if (r.noise) {
    const noisy = r.noise.paths.filter((p) => p.noise);
    out.push(
      `  noise (vs replay ${r.noise.replay_id}): ${r.noise.paths.length} nondeterministic path(s), ${noisy.length} noise${r.noise.excluded ? ', excluded' : ' (not excluded; --exclude-noise)'}`,
      ...r.noise.paths.map(
        (p) => `    ${p.noise ? 'noise    ' : 'divergent'} ${p.kind} ${p.path}: differs ${p.self_differs}/${p.self_pairs} against itself, ${p.legacy_differs}/${p.legacy_pairs} against legacy`,
      ),
    );
  }
  if (r.baseline) {
    out.push(`  against baseline ${r.baseline.replay_id}: ${r.baseline.introduced_total} introduced, ${r.baseline.resolved_total} resolved`);
    for (const d of r.baseline.introduced.slice(0, 20)) out.push(`    + ${d.delivery_id} ${describeDifference(d)}`);
    for (const d of r.baseline.resolved.slice(0, 20)) out.push(`    - ${d.delivery_id} ${describeDifference(d)}`);
  }
  if (r.unattributed_total) {
    out.push('', `unattributed legacy effects (tied to no delivery): ${r.unattributed_total}`);
    for (const d of r.unattributed.slice(0, 20)) out.push(`  ${d.effect_id} ${describeDifference(d)}`);
  }
  if (r.deliveries.length) {
    out.push('', `divergent deliveries: ${r.deliveries_total}${r.deliveries.length < r.deliveries_total ? ` (first ${r.deliveries.length} shown; --limit)` : ''}`);
    for (const d of r.deliveries) {
      out.push(`  ${d.received_at} ${d.delivery_id} ${d.source ?? '?'} ${eventLabel(d.event, d.action)}${d.unexpected ? '' : ' (all expected)'}`);
      for (const diff of d.differences) {
        out.push(`    ${describeDifference(diff)}`);
        if (diff.text_diff) out.push(...diff.text_diff.trimEnd().split('\n').map((l) => `      ${l}`));
      }
    }
  }
  return out.join('\n') + '\n';
}
