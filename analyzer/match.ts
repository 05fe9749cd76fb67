import type { Divergence, DivergenceClass } from '../core/divergence-schema.js';
import { canonicalJson, type Effect } from '../core/effects.js';
import type { FlowRun } from '../replayer/engine/run.js';
import { compareValues, textDiff } from './compare.js';
import { formatPath } from './json-path.js';
import { expectedBy, normalizeArgs, toleranceFor, type Rules } from './rules.js';

/**
 * The matcher: one delivery's legacy effects against its flows' intents
 * (specs/divergence.md § Matching). Pure: the pipeline feeds it, rules decide what is
 * normalized and what is expected.
 */

export type DeliveryMeta = Pick<Divergence, 'received_at_us' | 'source' | 'event' | 'action'> & { delivery_id: string };

/** A divergence row with every field empty but those given. */
export function divergenceRow(cls: DivergenceClass, fields: Partial<Divergence> & Pick<Divergence, 'received_at_us'>): Divergence {
  return {
    delivery_id: null,
    source: null,
    event: null,
    action: null,
    class: cls,
    flow: null,
    node_id: null,
    iteration: null,
    run_id: null,
    kind: null,
    target: null,
    path: null,
    legacy_value: undefined,
    flow_value: undefined,
    text_diff: null,
    effect_id: null,
    route: null,
    expected_by: null,
    ...fields,
  };
}

/** A legacy call mapped to the effect model, in the order the legacy handler made them. */
export interface LegacyEffect extends Effect {
  effect_id: string;
  route: string | null;
}

/** A flow's intent, in run order then node order. */
export interface FlowIntent extends Effect {
  run_id: string;
  flow: string;
  node_id: string;
  /** The foreach iteration, or null for a node that does not iterate. */
  iteration: number | null;
}

/** A flow run of the delivery; `node_id` is the first node that failed or could not finish, if any. */
export interface FlowRunInfo {
  run_id: string;
  flow: string;
  status: string;
  error: string | null;
  node_id: string | null;
}

/**
 * In-memory flow runs (a check, serve) as the matcher takes them: intents in run then
 * node order, and each run with the first node that kept it from finishing, as the
 * analyzer's SQL finds it for a replay.
 */
export function matcherInputs(runs: readonly FlowRun[]): { intents: FlowIntent[]; runs: FlowRunInfo[] } {
  return {
    intents: runs.flatMap((r) => r.nodes.filter((n) => n.intent).map((n) => ({ run_id: r.run_id, flow: r.flow, node_id: n.node_id, iteration: n.iteration, kind: n.intent!.kind, target: n.intent!.target, args: n.intent!.args }))),
    runs: runs.map((r) => ({ run_id: r.run_id, flow: r.flow, status: r.status, error: r.error, node_id: r.nodes.find((n) => n.status === 'failed' || n.status === 'no_recording' || n.status === 'blocked')?.node_id ?? null })),
  };
}

// A run that did not finish cleanly may be missing intents: say so rather than report its gaps as missing_in_flow alone.
const UNFINISHED = new Set(['failed', 'incomplete']);

interface Side<T> {
  item: T;
  index: number;
  norm: Record<string, unknown>;
}

/**
 * One delivery's rows. With `onMatch`, matches are reported to it (by kind) instead of
 * returned as rows: the analyzer counts them, and at a million deliveries the row
 * objects alone would cost more than the matching.
 */
export function compareDelivery(
  meta: DeliveryMeta,
  legacy: LegacyEffect[],
  intents: FlowIntent[],
  runs: FlowRunInfo[],
  rules: Rules,
  onMatch?: (kind: string) => void,
): Divergence[] {
  const out: Divergence[] = [];
  const row = (cls: DivergenceClass, fields: Partial<Divergence>): Divergence => divergenceRow(cls, { ...meta, ...fields });
  const fromLegacy = (l: LegacyEffect) => ({ kind: l.kind, target: l.target, effect_id: l.effect_id, route: l.route });
  const fromIntent = (i: FlowIntent) => ({ kind: i.kind, target: i.target, flow: i.flow, node_id: i.node_id, iteration: i.iteration, run_id: i.run_id });
  const match = (l: LegacyEffect, i: FlowIntent) => (onMatch ? onMatch(l.kind) : out.push(row('match', { ...fromIntent(i), ...fromLegacy(l) })));
  // With one flow run, whatever the legacy handler did that no flow intended is that flow's gap.
  const soleRun = runs.length === 1 ? { flow: runs[0]!.flow, run_id: runs[0]!.run_id } : {};

  const groups = new Map<string, { legacy: Side<LegacyEffect>[]; intents: Side<FlowIntent>[] }>();
  const group = (e: Effect) => {
    const key = `${e.kind}\u0000${e.target}`;
    let g = groups.get(key);
    if (!g) groups.set(key, (g = { legacy: [], intents: [] }));
    return g;
  };
  legacy.forEach((l, index) => group(l).legacy.push({ item: l, index, norm: normalizeArgs(rules, l.kind, l.target, l.args) }));
  intents.forEach((i, index) => group(i).intents.push({ item: i, index, norm: normalizeArgs(rules, i.kind, i.target, i.args) }));

  const pairs: { legacy: Side<LegacyEffect>; intent: Side<FlowIntent> }[] = [];
  for (const g of groups.values()) {
    const first = g.legacy[0]?.item ?? g.intents[0]!.item;
    const tolerance = toleranceFor(rules, first.kind, first.target);
    const diff = (l: Side<LegacyEffect>, i: Side<FlowIntent>) => compareValues(l.norm, i.norm, tolerance);
    // The common case, one effect and one intent, needs no buckets.
    if (g.legacy.length === 1 && g.intents.length === 1 && diff(g.legacy[0]!, g.intents[0]!).length === 0) {
      pairs.push({ legacy: g.legacy[0]!, intent: g.intents[0]! });
      match(g.legacy[0]!.item, g.intents[0]!.item);
      continue;
    }
    const free = new Set(g.intents);
    const unpaired: Side<LegacyEffect>[] = [];
    // Equal args pair first, so a multiset {A, B} vs {B, A} is two matches; bucketed by canonical form, so linear.
    const equal = new Map<string, Side<FlowIntent>[]>();
    for (const i of g.intents) {
      const key = canonicalJson(i.norm);
      equal.set(key, [...(equal.get(key) ?? []), i]);
    }
    for (const l of g.legacy) {
      const same = equal.get(canonicalJson(l.norm))?.shift();
      if (!same) {
        unpaired.push(l);
        continue;
      }
      free.delete(same);
      pairs.push({ legacy: l, intent: same });
      match(l.item, same.item);
    }
    // Then each remaining legacy effect pairs with the closest remaining intent: fewest differing paths
    // (none, within a numeric tolerance, is a match), earliest on ties.
    for (const l of unpaired) {
      let best: { intent: Side<FlowIntent>; diffs: ReturnType<typeof diff> } | null = null;
      for (const i of free) {
        const diffs = diff(l, i);
        if (!best || diffs.length < best.diffs.length) best = { intent: i, diffs };
        if (diffs.length === 0) break;
      }
      if (!best) {
        out.push(row('missing_in_flow', { ...fromLegacy(l.item), ...soleRun, legacy_value: l.item.args }));
        continue;
      }
      free.delete(best.intent);
      pairs.push({ legacy: l, intent: best.intent });
      if (best.diffs.length === 0) match(l.item, best.intent.item);
      for (const d of best.diffs) {
        out.push(
          row('args_differ', {
            ...fromIntent(best.intent.item),
            ...fromLegacy(l.item),
            path: formatPath(d.path),
            legacy_value: d.legacy,
            flow_value: d.flow,
            text_diff: textDiff(d.legacy, d.flow),
          }),
        );
      }
    }
    for (const i of free) out.push(row('extra_in_flow', { ...fromIntent(i.item), flow_value: i.item.args }));
  }

  // Order: within each flow, the paired effects in the legacy handler's order must be the flow's node order.
  const byFlow = new Map<string, typeof pairs>();
  for (const p of pairs) byFlow.set(p.intent.item.flow, [...(byFlow.get(p.intent.item.flow) ?? []), p]);
  for (const [flow, ps] of byFlow) {
    const legacyOrder = [...ps].sort((a, b) => a.legacy.index - b.legacy.index);
    const misplaced = legacyOrder.find((p, k) => k > 0 && p.intent.index < legacyOrder[k - 1]!.intent.index);
    if (!misplaced) continue;
    const label = (p: (typeof ps)[number]) => `${p.intent.item.kind} ${p.intent.item.target}`;
    out.push(
      row('order_differs', {
        ...fromIntent(misplaced.intent.item),
        flow,
        legacy_value: legacyOrder.map(label),
        flow_value: [...ps].sort((a, b) => a.intent.index - b.intent.index).map(label),
      }),
    );
  }

  for (const run of runs) {
    if (!UNFINISHED.has(run.status)) continue;
    out.push(row('flow_error', { flow: run.flow, run_id: run.run_id, node_id: run.node_id, flow_value: { status: run.status, error: run.error } }));
  }

  for (const d of out) d.expected_by = expectedBy(rules, d);
  return out;
}
