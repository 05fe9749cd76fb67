/**
 * Plain-text wording shared by every report format (text, Markdown, JUnit, HTML):
 * one line per difference, the verdict, values as short JSON. Output is unescaped
 * text; each format escapes it for its own markup.
 */
import { canonicalJson } from '../../core/effects.js';
import type { Divergence } from '../../core/divergence-schema.js';
import type { AnalysisResult } from '../result.js';

/** How long a value may get inside a one-line description before it is cut with `…`. */
export const SHORT_VALUE_CHARS = 80;

/** Canonical JSON of a value (keys sorted), or null when there is none (`undefined`). */
export function valueJson(value: unknown, pretty = false): string | null {
  if (value === undefined) return null;
  const compact = canonicalJson(value);
  // canonicalJson drops what JSON cannot hold (a function, a symbol); treat that as no value.
  if (compact === undefined) return null;
  return pretty ? JSON.stringify(JSON.parse(compact), null, 2) : compact;
}

/** A value as one line of JSON, cut to `max` characters; `∅` when there is none. */
export function shortValue(value: unknown, max = SHORT_VALUE_CHARS): string {
  const json = valueJson(value);
  return json === null ? '∅' : truncate(json, max);
}

/** Cuts text to at most `max` code points, marking the cut with `…` (never splits a surrogate pair). */
export function truncate(text: string, max: number): string {
  if (text.length <= max) return text;
  const points = Array.from(text);
  return points.length <= max ? text : `${points.slice(0, Math.max(0, max - 1)).join('')}…`;
}

/** Control characters and line separators as visible escapes, so a label stays on one line. */
export function oneLine(text: string): string {
  return text.replace(/[\u0000-\u001f\u007f\u2028\u2029]/g, (c) => {
    if (c === '\n') return '\\n';
    if (c === '\r') return '\\r';
    if (c === '\t') return '\\t';
    return `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`;
  });
}

/** Where a difference comes from: `flow/node[iteration]`, or the effect for an unattributed one. */
export function differenceOrigin(d: Divergence): string | null {
  if (d.class === 'unattributed') return d.effect_id ? `effect ${d.effect_id}` : null;
  if (!d.flow) return d.node_id ? d.node_id : null;
  const node = d.node_id ? `/${d.node_id}` : '';
  // Iteration 0 is also what a node outside any foreach gets, so only later ones are shown.
  const iteration = d.iteration ? `[${d.iteration}]` : '';
  return `${d.flow}${node}${iteration}`;
}

/**
 * Which sides' values describe a difference of this class: both for a changed value,
 * the legacy side for what only the legacy handler did, the flow side for what only
 * the flow did (or its error). A side with no value is left out.
 */
export function differenceSides(d: Divergence): ('legacy' | 'flow')[] {
  switch (d.class) {
    case 'args_differ':
    case 'order_differs':
      return ['legacy', 'flow'];
    // For one-sided classes, null is also "no value": it is what an absent side reads
    // back as from divergences.parquet.
    case 'missing_in_flow':
    case 'unattributed':
      return d.legacy_value === undefined || d.legacy_value === null ? [] : ['legacy'];
    case 'extra_in_flow':
    case 'flow_error':
      return d.flow_value === undefined || d.flow_value === null ? [] : ['flow'];
    case 'match':
      return [];
  }
}

/** The values part of a description: `legacy → flow`, or the one side the class has. */
function differenceValues(d: Divergence): string | null {
  const sides = differenceSides(d);
  if (sides.length === 0) return null;
  return sides.map((side) => shortValue(side === 'legacy' ? d.legacy_value : d.flow_value)).join(' → ');
}

/**
 * One line describing a difference, e.g.
 * `args_differ issue.comment octo/repo#12 $.body: "On it — queued as job-1" → "On it — queued as job-9" (assign-agent/ack)`.
 * Expected rows end with `[expected by <rule>]`.
 */
export function describeDifference(d: Divergence): string {
  const head = [d.class, d.kind, d.target, d.path]
    .filter((part): part is string => part !== null && part !== '')
    .map(oneLine)
    .join(' ');
  const values = differenceValues(d);
  const origin = differenceOrigin(d);
  return (
    head +
    (values === null ? '' : `: ${values}`) +
    (origin === null ? '' : ` (${oneLine(origin)})`) +
    (d.expected_by ? ` [expected by ${oneLine(d.expected_by)}]` : '')
  );
}

/** `issue_comment.created`, `push`, or `(unknown event)`. */
export function eventLabel(event: string | null, action: string | null): string {
  if (!event) return '(unknown event)';
  return oneLine(action ? `${event}.${action}` : event);
}

export type VerdictStatus = 'pass' | 'warn' | 'fail';

/** The report's headline: `fail` on unexpected divergences, `warn` on stale rules only, else `pass`. */
export interface Verdict {
  status: VerdictStatus;
  headline: string;
}

/**
 * The verdict every format leads with. Stale rules only warn here: whether they fail
 * the build is the CLI's `--fail-on` decision, which a rendered report does not know.
 */
export function verdictOf(result: AnalysisResult): Verdict {
  const t = result.totals;
  if (t.unexpected > 0) {
    return {
      status: 'fail',
      // Unattributed effects count as divergences but belong to no delivery or run, so the
      // delivery and run figures are given beside the total, not as its breakdown.
      headline:
        `${plural(t.unexpected, 'unexpected divergence')}: ${plural(t.divergent_deliveries, 'delivery', 'deliveries')}` +
        ` and ${t.divergent_runs} of ${plural(t.flow_runs, 'flow run')} divergent`,
    };
  }
  const stale = [
    result.rules.expired.length ? `${plural(result.rules.expired.length, 'rule')} expired` : null,
    result.rules.unused.length ? `${plural(result.rules.unused.length, 'rule')} unused` : null,
  ].filter((s): s is string => s !== null);
  if (stale.length) return { status: 'warn', headline: `No unexpected divergences, but ${stale.join(' and ')}` };
  return { status: 'pass', headline: `No unexpected divergences in ${plural(t.flow_runs, 'flow run')}` };
}

/** `1 rule`, `3 rules`. */
export function plural(n: number, singular: string, pluralForm = `${singular}s`): string {
  return `${n} ${n === 1 ? singular : pluralForm}`;
}

/** A rate in [0, 1] as a percentage with one decimal: `12.5%`. */
export function percent(rate: number): string {
  return `${(Number.isFinite(rate) ? rate * 100 : 0).toFixed(1)}%`;
}

/** The sum of a flow's unexpected rows over all classes. */
export function sumCounts(counts: Partial<Record<string, number>>): number {
  return Object.values(counts).reduce<number>((sum, n) => sum + (n ?? 0), 0);
}
