import dc from 'node:diagnostics_channel';
import fc from 'fast-check';
import { pino } from 'pino';
import { canonicalJson, type Intent } from '../../core/effects.js';
import type { Capabilities } from '../../replayer/engine/capabilities.js';
import { createDedupMemory } from '../../replayer/engine/dedup.js';
import { deliveryScope } from '../../replayer/engine/delivery.js';
import { recordedReads } from '../../replayer/engine/recordings.js';
import { runDelivery, type EngineOptions, type FlowRun } from '../../replayer/engine/run.js';
import type { CompiledFlow } from '../../replayer/flows/model.js';
import { parseStored, type StoredDelivery } from '../../replayer/source.js';
import { compareDelivery, matcherInputs, type LegacyEffect } from '../match.js';
import type { RouteMaps } from '../routes.js';
import type { Rules } from '../rules.js';
import type { CheckCase } from './case.js';
import { shuffledKeys } from './case.js';
import type { LegacyOracle } from './oracle.js';
import { getAt, keyPaths, replaceAt, startsWith, type JsonPath } from './payload-tree.js';

/**
 * The library of properties (specs/checks.md § Properties). Each has a name, a
 * one-line meaning, and a check over one case that returns null when it holds or a
 * failure naming what differed.
 */

export const PROPERTY_NAMES = ['deterministic', 'dry-run-is-inert', 'redelivery-idempotent', 'trigger-consistent', 'irrelevant-fields-inert', 'legacy-parity'] as const;
export type PropertyName = (typeof PROPERTY_NAMES)[number];

/** One side of a failed comparison: what ran and the intents it gave. */
export interface Side {
  label: string;
  value: unknown;
}

export interface Failure {
  message: string;
  /** What was expected and what happened, when the failure is a difference (reports diff them). */
  expected?: Side;
  actual?: Side;
}

/** The engine a property drives: runDelivery, or (to check the checker) a wrapper around it. */
export type Engine = typeof runDelivery;

/** What every check may use; the flows are those the property applies to. */
export interface CheckContext {
  flows: CompiledFlow[];
  engine: Engine;
  /** Seed for synthetic ids (the replay's `--seed`): the same as replay, so a saved case replays to the same intents. */
  seed: number;
  oracle: LegacyOracle | null;
  routes: RouteMaps;
  rules: Rules;
}

export interface Property<E = unknown> {
  name: PropertyName;
  meaning: string;
  /** Extra generated input (the metamorphic transform's parameters). */
  extra?: fc.Arbitrary<E>;
  /** The case as this property runs it (adds what it needs, e.g. a redelivery); checked and saved in this form. */
  prepare?(c: CheckCase): CheckCase;
  /** Null when the property does not apply to this run at all (no oracle for legacy-parity). */
  applies?(ctx: CheckContext): string | null;
  check(c: CheckCase, ctx: CheckContext, extra: E): Promise<Failure | null>;
}

const silent = pino({ level: 'silent' });

/** Runs a case's deliveries in order, in dry-run, with one dedup memory: what `hookshadow replay` would do with them. */
export async function runCase(ctx: CheckContext, deliveries: readonly StoredDelivery[], extra: Partial<EngineOptions> = {}, echoes?: (i: number) => StoredDelivery['writes']): Promise<FlowRun[][]> {
  const dedup = createDedupMemory();
  const out: FlowRun[][] = [];
  for (const [i, stored] of deliveries.entries()) {
    const { delivery } = parseStored(stored);
    out.push(
      await ctx.engine(ctx.flows, delivery, {
        mode: 'dry-run',
        seed: ctx.seed,
        reads: recordedReads(stored.reads),
        echoes: recordedReads(echoes?.(i) ?? stored.writes),
        logger: silent,
        dedup,
        ...extra,
      }),
    );
  }
  return out;
}

/** A case's intents, one entry per planned mutation: which delivery, flow, node and iteration, and the intent. */
export interface IntentLine {
  delivery: number;
  flow: string;
  node: string;
  iteration: number | null;
  intent: Intent;
}

export function intentLines(runs: FlowRun[][]): IntentLine[] {
  return runs.flatMap((perDelivery, delivery) =>
    perDelivery.flatMap((run) => run.nodes.filter((n) => n.intent).map((n) => ({ delivery, flow: run.flow, node: n.node_id, iteration: n.iteration, intent: n.intent! }))),
  );
}

const differs = (label: string, a: Side, b: Side, message: string): Failure => ({ message: `${label}: ${message}`, expected: a, actual: b });

const deterministic: Property = {
  name: 'deterministic',
  meaning: 'the same delivery replayed twice gives byte-identical intents',
  async check(c, ctx) {
    const first = intentLines(await runCase(ctx, c.deliveries));
    const second = intentLines(await runCase(ctx, c.deliveries));
    if (JSON.stringify(first) === JSON.stringify(second)) return null;
    return differs('deterministic', { label: 'first replay', value: first }, { label: 'second replay', value: second }, 'two replays of the same delivery intended different things');
  },
};

/** Fails any send: dry-run must never reach a capability. */
function tripwire(sent: string[]): Capabilities {
  return {
    upstreams: new Set(),
    async send(req) {
      sent.push(`${req.method} ${req.upstream}${req.path}`);
      return { status: 599, body: null };
    },
    async close() {},
  };
}

/** The first stack frame outside Node and node_modules, as ` at file:line`. */
function callerOf(stack: string | undefined): string {
  const frame = stack?.split('\n').slice(1).find((l) => !/\(node:|node_modules|diagnostics_channel|analyzer[/\\]checks[/\\]properties/.test(l) && !/^\s*at (?:async )?node:/.test(l));
  const where = frame?.match(/\(?((?:file:\/\/)?[^()\s]+:\d+:\d+)\)?\s*$/)?.[1];
  return where ? ` at ${where}` : '';
}

const dryRunIsInert: Property = {
  name: 'dry-run-is-inert',
  meaning: 'in dry-run, no capability performs a call and no socket opens, for any delivery',
  async check(c, ctx) {
    const sent: string[] = [];
    const sockets: string[] = [];
    // The channel fires inside net.connect: the stack names the code that opened the socket.
    const onSocket = () => sockets.push(`a socket opened${callerOf(new Error().stack)}`);
    dc.subscribe('net.client.socket', onSocket);
    try {
      await runCase(ctx, c.deliveries, { capabilities: tripwire(sent) });
      // An op may fire and forget: give sockets it started a turn of the event loop to appear.
      await new Promise((r) => setImmediate(r));
      await new Promise((r) => setTimeout(r, 1));
    } finally {
      dc.unsubscribe('net.client.socket', onSocket);
    }
    if (sent.length === 0 && sockets.length === 0) return null;
    return { message: `dry-run-is-inert: the dry-run reached out: ${[...sent.map((s) => `capability call ${s}`), ...sockets].join('; ')}` };
  },
};

const redeliveryIdempotent: Property = {
  name: 'redelivery-idempotent',
  meaning: 'a redelivery (same delivery_id, later) adds no intents for flows with dedup, and repeats the same intents for the others',
  // The case carries its redelivery, so a saved counterexample replays to the same double action.
  prepare: (c) => (c.deliveries.length > 1 ? c : { ...c, deliveries: [c.deliveries[0]!, { ...c.deliveries[0]!, received_at_us: c.deliveries[0]!.received_at_us + 60_000_000 }] }),
  async check(c, ctx) {
    const lines = intentLines(await runCase(ctx, c.deliveries));
    const of = (k: number, flow: string) => lines.filter((l) => l.delivery === k && l.flow === flow);
    const comparable = (xs: IntentLine[]) => JSON.stringify(xs.map(({ delivery: _d, ...rest }) => canonicalJson(rest)));
    const t0 = c.deliveries[0]!.received_at_us;
    for (const flow of ctx.flows) {
      // With dedup, a redelivery within the window of the run that acted must do nothing; one after it acts afresh.
      let actedAt = t0;
      for (let k = 1; k < c.deliveries.length; k++) {
        const again = of(k, flow.name);
        const t = c.deliveries[k]!.received_at_us;
        if (flow.dedup && t - actedAt <= flow.dedup.windowUs) {
          if (again.length > 0) {
            return differs('redelivery-idempotent', { label: `${flow.name} on redelivery ${k} (dedup)`, value: [] }, { label: `${flow.name} on redelivery ${k}`, value: again }, `flow ${flow.name} declares dedup but acted again on a redelivery ${(t - t0) / 1e6} s after the first delivery`);
          }
        } else if (flow.dedup) actedAt = t;
        else if (comparable(again) !== comparable(of(0, flow.name))) {
          return differs('redelivery-idempotent', { label: `${flow.name} on the first delivery`, value: of(0, flow.name) }, { label: `${flow.name} on redelivery ${k}`, value: again }, `flow ${flow.name} has no dedup, so a redelivery must intend exactly what the first delivery did`);
        }
      }
    }
    return null;
  },
};

const triggerConsistent: Property = {
  name: 'trigger-consistent',
  meaning: 'a flow whose trigger does not match produces no run; one whose trigger matches produces exactly one',
  async check(c, ctx) {
    const runs = await runCase(ctx, c.deliveries);
    const problems: string[] = [];
    for (const [i, stored] of c.deliveries.entries()) {
      const { delivery } = parseStored(stored);
      for (const flow of ctx.flows) {
        const expected = triggerDecision(flow, delivery);
        const got = runs[i]!.filter((r) => r.flow === flow.name);
        if (expected === 'error') {
          if (got.length !== 1 || got[0]!.status !== 'failed' || got[0]!.nodes.length > 0) problems.push(`${flow.name}: its trigger condition fails to evaluate, which must give one failed run with no nodes (got ${got.length} run(s))`);
        } else if (!expected && got.length > 0) problems.push(`${flow.name}: trigger does not match delivery ${i + 1}, yet it ran (${got.map((r) => `${r.status}, ${r.nodes.length} node runs`).join('; ')})`);
        else if (expected && got.length !== 1) problems.push(`${flow.name}: trigger matches delivery ${i + 1}, yet it produced ${got.length} runs`);
      }
    }
    return problems.length === 0 ? null : { message: `trigger-consistent: ${problems.join('; ')}` };
  },
};

/** The trigger's verdict, computed apart from the engine (an oracle for its dispatch): true, false, or 'error' when a condition throws. */
function triggerDecision(flow: CompiledFlow, d: ReturnType<typeof parseStored>['delivery']): boolean | 'error' {
  const scope = { delivery: deliveryScope(d), nodes: {}, flow: { name: flow.name, version: flow.version }, now: new Date(Math.floor(d.received_at_us / 1000)) };
  for (const t of flow.triggers) {
    const is = (list: string[] | null, v: string | null) => list === null || (v !== null && list.includes(v));
    if (!is(t.sources, d.source) || !is(t.events, d.event) || !is(t.actions, d.action)) continue;
    if (!t.if) return true;
    try {
      if (t.if.evaluate(scope) === true) return true;
    } catch {
      return 'error';
    }
  }
  return false;
}

/** The parameters of the irrelevant-fields transform: where to add fields, and the seed of the new key order. */
interface Irrelevance {
  additions: { at: number; value: unknown }[];
  order: number;
}

/** Where a flow reads the payload: the ends of the `delivery.payload...` chains its expressions walk. */
function payloadReads(flows: readonly CompiledFlow[]): JsonPath[] | 'whole' {
  const chains: string[][] = [];
  for (const flow of flows) for (const e of expressionsOf(flow)) chains.push(...e.deliveryReads);
  if (chains.some((c) => c.length === 0 || (c.length === 1 && c[0] === 'payload'))) return 'whole';
  return chains.filter((c) => c[0] === 'payload').map((c) => c.slice(1));
}

function expressionsOf(flow: CompiledFlow) {
  const out = flow.triggers.flatMap((t) => (t.if ? [t.if] : []));
  const values = (v: CompiledFlow['nodes'][number]['with']): typeof out =>
    v.kind === 'expr' ? [v.expr] : v.kind === 'template' ? v.parts.filter((p): p is (typeof out)[number] => typeof p !== 'string') : v.kind === 'array' ? v.items.flatMap(values) : v.kind === 'object' ? v.entries.flatMap(([, x]) => values(x)) : [];
  for (const n of flow.nodes) out.push(...(n.if ? [n.if] : []), ...(n.foreach ? [n.foreach] : []), ...values(n.with));
  if (flow.dedup) out.push(...values(flow.dedup.key));
  return out;
}

const irrelevantFieldsInert: Property<Irrelevance> = {
  name: 'irrelevant-fields-inert',
  meaning: 'adding payload fields no flow reads, or reordering object keys, changes no intent',
  extra: fc.record({ additions: fc.array(fc.record({ at: fc.nat(), value: fc.jsonValue({ maxDepth: 2 }) }), { maxLength: 3 }), order: fc.nat() }),
  async check(c, ctx, extra) {
    const reads = payloadReads(ctx.flows);
    const transformed = c.deliveries.map((d) => {
      let payload = JSON.parse(d.body ?? 'null') as unknown;
      if (payload === null || typeof payload !== 'object') return d;
      // Fields go into objects no flow reads whole: not at or under the end of any chain.
      const objects: JsonPath[] = [[], ...keyPaths(payload).filter((p) => { const v = getAt(payload, p); return v !== null && typeof v === 'object' && !Array.isArray(v); })];
      const free = reads === 'whole' ? [] : objects.filter((p) => !reads.some((r) => startsWith(p, r)));
      for (const [k, a] of extra.additions.entries()) {
        if (free.length === 0) break;
        payload = replaceAt(payload, [...free[a.at % free.length]!, `hookshadow_irrelevant_${k}`], () => a.value);
      }
      return { ...d, body: JSON.stringify(shuffledKeys(payload, extra.order)) };
    });
    const before = intentLines(await runCase(ctx, c.deliveries));
    const after = intentLines(await runCase(ctx, transformed));
    // Intents compare as values (specs/effects.md): a key order inside args is not a difference.
    if (canonicalJson(before) === canonicalJson(after)) return null;
    return differs(
      'irrelevant-fields-inert',
      { label: 'as delivered', value: before },
      { label: 'with irrelevant fields added and keys reordered', value: after },
      `adding ${extra.additions.length} field(s) no flow reads and reordering keys (seed ${extra.order}) changed the intents`,
    );
  },
};

const legacyParity: Property = {
  name: 'legacy-parity',
  meaning: "the flows' intents equal the legacy handler's effects, under the analyzer's rules",
  applies: (ctx) => (ctx.oracle ? null : 'no legacy oracle configured (checks file: legacy.module)'),
  async check(c, ctx) {
    const oracle = ctx.oracle!;
    const legacyCalls: Awaited<ReturnType<LegacyOracle['handle']>>[] = [];
    for (const d of c.deliveries) legacyCalls.push(await oracle.handle(d));
    // The flows see the answers the legacy handler got, as in a replay of what it recorded.
    const writes = legacyCalls.map((r) => r.calls.filter((x) => x.method !== 'GET' && x.method !== 'HEAD'));
    const runs = await runCase(ctx, c.deliveries, {}, (i) => writes[i]!);
    const problems: string[] = [];
    let expected: unknown[] = [];
    let actual: unknown[] = [];
    for (const [i, d] of c.deliveries.entries()) {
      if (legacyCalls[i]!.error) throw new Error(`the legacy oracle did not answer delivery ${d.delivery_id}: ${legacyCalls[i]!.error}`);
      const legacy: LegacyEffect[] = writes[i]!.map((call, k) => ({ effect_id: `oracle-${k}`, ...ctx.routes.map({ upstream: call.upstream, method: call.method, path: call.path, body: call.body }) }));
      const { intents, runs: infos } = matcherInputs(runs[i]!);
      const meta = { delivery_id: d.delivery_id, received_at_us: d.received_at_us, source: d.source, event: d.event, action: d.action };
      const rows = compareDelivery(meta, legacy, intents, infos, ctx.rules, () => {}).filter((r) => r.expected_by === null);
      for (const r of rows) problems.push(`${r.class}${r.flow ? ` (${r.flow}${r.node_id ? `.${r.node_id}` : ''})` : ''} ${r.kind ?? ''} ${r.target ?? ''}${r.path ? ` at ${r.path}` : ''}`.trim());
      expected = [...expected, ...legacy.map(({ effect_id: _e, route: _r, ...e }) => e)];
      actual = [...actual, ...intents.map(({ run_id: _r, ...e }) => e)];
    }
    if (problems.length === 0) return null;
    return differs('legacy-parity', { label: 'legacy effects', value: expected }, { label: 'flow intents', value: actual }, problems.join('; '));
  },
};

export const PROPERTIES: readonly Property<any>[] = [deterministic, dryRunIsInert, redeliveryIdempotent, triggerConsistent, irrelevantFieldsInert, legacyParity];

export function propertyNamed(name: string): Property<any> | undefined {
  return PROPERTIES.find((p) => p.name === name);
}
