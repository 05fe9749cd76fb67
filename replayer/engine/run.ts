import { createHash } from 'node:crypto';
import type { EffectClass, Intent } from '../../core/effects.js';
import { HsError, isHsError, type ErrorCode } from '../../core/errors.js';
import type { ExpressionScope } from '../flows/expressions.js';
import type { CompiledFlow, CompiledNode, CompiledTrigger, Mode } from '../flows/model.js';
import { describeArgErrors } from '../ops/registry.js';
import { effectClassOf, type OpContext, type OpLogger } from '../ops/types.js';
import { resolveValue } from '../flows/values.js';
import type { Capabilities, UpstreamResponse } from './capabilities.js';
import { deliveryScope, type DeliveryInput } from './delivery.js';
import type { DedupMemory } from './dedup.js';
import type { ReadSource } from './recordings.js';

/** How a node run ended. `planned`: a mutation in dry-run, its intent recorded instead of sent. */
export const NODE_STATUSES = ['ok', 'planned', 'skipped', 'blocked', 'no_recording', 'failed', 'cancelled'] as const;
export type NodeStatus = (typeof NODE_STATUSES)[number];

/** `duplicate`: a flow with `dedup:` already ran for this key within its window; no node ran. */
export const FLOW_STATUSES = ['ok', 'incomplete', 'failed', 'duplicate'] as const;
export type FlowStatus = (typeof FLOW_STATUSES)[number];

export type RunMode = 'dry-run' | 'live';

export interface NodeRun {
  node_id: string;
  /** Position in execution order, from 0. */
  seq: number;
  /** The foreach index, or null outside foreach. */
  iteration: number | null;
  op: string;
  effect_class: EffectClass;
  status: NodeStatus;
  output: unknown;
  /** Non-null exactly for mutations that would have acted (dry-run) or acted (live). */
  intent: Intent | null;
  error: string | null;
  duration_us: number;
}

export interface FlowRun {
  run_id: string;
  delivery_id: string;
  flow: string;
  flow_version: string;
  mode: RunMode;
  status: FlowStatus;
  error: string | null;
  started_at_us: number;
  duration_us: number;
  nodes: NodeRun[];
}

export interface EngineOptions {
  /** The mode of every flow without an override; `off` runs only the overridden ones. */
  mode: Mode;
  /** Per-flow modes, by flow name. */
  flowModes?: Readonly<Record<string, Mode>>;
  /** Perturbs synthetic ids (noise detection replays with a second seed). */
  seed: number;
  /** Reads in dry-run come from here; live reads too, unless `liveReads` is set. */
  reads: ReadSource;
  /**
   * Dry-run: the legacy handler's responses to its own mutating calls for this delivery.
   * A mutation that makes the same call (method and path) gets that response as its
   * synthetic output, so downstream text (a job id in a comment) matches what really happened.
   */
  echoes?: ReadSource;
  /** Required in live mode; never given in dry-run. */
  capabilities?: Capabilities;
  /** Serve reads from live upstreams even in dry-run (configured explicitly). */
  liveReads?: Capabilities;
  logger: OpLogger;
  /** Microseconds now; replay passes the delivery's received_at so runs are deterministic. */
  nowUs?: (delivery: DeliveryInput) => number;
  /** Extra headers on live calls (serve passes the delivery id for attribution). */
  liveHeaders?: (delivery: DeliveryInput) => Record<string, string>;
  /** Remembers dedup keys across deliveries; without it, `dedup:` has nothing to compare with and every run acts. */
  dedup?: DedupMemory;
}

const hex = (text: string, n: number) => createHash('sha256').update(text).digest('hex').slice(0, n);

/**
 * The run id: the same delivery and flow give the same id in every replay, so replays
 * join on it. The receive time is part of it: a redelivery reuses its delivery id.
 */
export function runId(deliveryId: string, receivedAtUs: number, flow: string): string {
  const h = hex(`${deliveryId}\0${receivedAtUs}\0${flow}`, 32);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

function matchesList(list: string[] | null, value: string | null): boolean {
  return list === null || (value !== null && list.includes(value));
}

/** Does a trigger match? Its condition is only evaluated once source, event and action agree. */
function triggerMatches(t: CompiledTrigger, d: DeliveryInput, scope: () => ExpressionScope): boolean {
  if (!matchesList(t.sources, d.source) || !matchesList(t.events, d.event) || !matchesList(t.actions, d.action)) return false;
  return t.if === null || t.if.evaluate(scope()) === true;
}

function errorText(err: unknown, fallback: ErrorCode): string {
  if (isHsError(err)) return `${err.code}: ${err.message}`;
  return `${fallback}: ${(err as Error).message?.split('\n')[0] ?? String(err)}`;
}

/**
 * Runs every flow whose trigger matches the delivery. A trigger condition that fails to
 * evaluate is not a silent non-match: it yields a failed run naming the error.
 */
export async function runDelivery(flows: readonly CompiledFlow[], d: DeliveryInput, opts: EngineOptions): Promise<FlowRun[]> {
  const delivery = deliveryScope(d);
  const nowUs = opts.nowUs?.(d) ?? d.received_at_us;
  const now = new Date(Math.floor(nowUs / 1000));
  const runs: FlowRun[] = [];
  for (const flow of flows) {
    const mode = opts.flowModes?.[flow.name] ?? opts.mode;
    if (mode === 'off') continue;
    const flowVar = { name: flow.name, version: flow.version };
    const scope = (): ExpressionScope => ({ delivery, nodes: {}, flow: flowVar, now });
    let matched: boolean;
    try {
      matched = flow.triggers.some((t) => triggerMatches(t, d, scope));
    } catch (err) {
      runs.push(nodelessRun(flow, d, mode, nowUs, 'failed', `HS_ERR_EXPRESSION: trigger condition failed: ${(err as Error).message.split('\n')[0]}`));
      continue;
    }
    if (!matched) continue;
    if (flow.dedup && opts.dedup) {
      let key: string;
      try {
        key = String(resolveValue(flow.dedup.key, scope()));
      } catch (err) {
        runs.push(nodelessRun(flow, d, mode, nowUs, 'failed', `HS_ERR_EXPRESSION: dedup key failed: ${(err as Error).message.split('\n')[0]}`));
        continue;
      }
      if (!opts.dedup.claim(flow.name, key, nowUs, flow.dedup.windowUs)) {
        runs.push(nodelessRun(flow, d, mode, nowUs, 'duplicate', null));
        continue;
      }
    }
    // Each flow consumes the recordings afresh: one flow's reads must not shift what the next one sees.
    const perFlow = { ...opts, reads: opts.reads.fresh(), ...(opts.echoes ? { echoes: opts.echoes.fresh() } : {}), nowUs: () => nowUs };
    runs.push(await runFlow(flow, d, mode, perFlow, { delivery, flow: flowVar, now }));
  }
  return runs;
}

/** A run that ended before any node: a trigger or dedup key that failed, or a duplicate. */
function nodelessRun(flow: CompiledFlow, d: DeliveryInput, mode: RunMode, nowUs: number, status: FlowStatus, error: string | null): FlowRun {
  return { run_id: runId(d.delivery_id, d.received_at_us, flow.name), delivery_id: d.delivery_id, flow: flow.name, flow_version: flow.version, mode, status, error, started_at_us: nowUs, duration_us: 0, nodes: [] };
}

interface NodeState {
  status: NodeStatus;
  output: unknown;
}

async function runFlow(
  flow: CompiledFlow,
  d: DeliveryInput,
  mode: RunMode,
  opts: EngineOptions,
  base: { delivery: Record<string, unknown>; flow: Record<string, unknown>; now: Date },
): Promise<FlowRun> {
  const started = performance.now();
  const startedAtUs = opts.nowUs!(d);
  const nodes: Record<string, NodeState> = {};
  const rows: NodeRun[] = [];
  let stopped: string | null = null;
  let incomplete = false;

  for (const [seq, node] of flow.nodes.entries()) {
    const t0 = performance.now();
    const row = (status: NodeStatus, extra: Partial<NodeRun> = {}): NodeRun => ({
      node_id: node.id,
      seq,
      iteration: null,
      op: node.op.def.name,
      effect_class: node.effectClass,
      status,
      output: null,
      intent: null,
      error: null,
      duration_us: Math.round((performance.now() - t0) * 1000),
      ...extra,
    });
    const settle = (status: NodeStatus, output: unknown = null) => (nodes[node.id] = { status, output });

    if (stopped) {
      rows.push(row('cancelled'));
      settle('cancelled');
      continue;
    }
    const unmet = node.needs.map((n) => nodes[n]!).filter((s) => s.status !== 'ok' && s.status !== 'planned');
    if (unmet.length > 0) {
      const status = unmet.every((s) => s.status === 'skipped') ? 'skipped' : 'blocked';
      if (status === 'blocked') incomplete = true;
      rows.push(row(status));
      settle(status);
      continue;
    }
    const scope: ExpressionScope = { ...base, nodes };
    let items: unknown[] | null = null;
    try {
      if (node.if && node.if.evaluate(scope) !== true) {
        rows.push(row('skipped'));
        settle('skipped');
        continue;
      }
      if (node.foreach) {
        const list = node.foreach.evaluate(scope);
        if (!Array.isArray(list)) throw new HsError('HS_ERR_EXPRESSION', `foreach \`${node.foreach.source}\` gave ${typeof list}, not a list`);
        items = list;
      }
    } catch (err) {
      const error = errorText(err, 'HS_ERR_EXPRESSION');
      rows.push(row('failed', { error }));
      settle('failed');
      if (node.onError === 'stop') stopped = `node ${node.id}: ${error}`;
      else incomplete = true;
      continue;
    }

    const iterations: (number | null)[] = items === null ? [null] : items.map((_, i) => i);
    if (iterations.length === 0) {
      rows.push(row('skipped', { output: [] }));
      settle('skipped', []);
      continue;
    }
    const outputs: unknown[] = [];
    let worst: NodeStatus = 'ok';
    for (const iteration of iterations) {
      const iterScope: ExpressionScope = iteration === null ? scope : { ...scope, item: items![iteration], index: BigInt(iteration) };
      const result = await runNode(flow, node, d, iteration, iterScope, mode, opts);
      rows.push({ ...result, seq, iteration, duration_us: Math.round((performance.now() - t0) * 1000) });
      outputs.push(result.output);
      worst = severity(result.status) > severity(worst) ? result.status : worst;
      if (result.status === 'failed' && node.onError === 'stop') break;
    }
    settle(worst, items === null ? outputs[0] : outputs);
    if (worst === 'failed') {
      if (node.onError === 'stop') stopped = `node ${node.id}: ${rows[rows.length - 1]!.error}`;
      else incomplete = true;
    } else if (worst === 'no_recording') incomplete = true;
  }

  return {
    run_id: runId(d.delivery_id, d.received_at_us, flow.name),
    delivery_id: d.delivery_id,
    flow: flow.name,
    flow_version: flow.version,
    mode,
    status: stopped ? 'failed' : incomplete ? 'incomplete' : 'ok',
    error: stopped,
    started_at_us: startedAtUs,
    duration_us: Math.round((performance.now() - started) * 1000),
    nodes: rows,
  };
}

const SEVERITY: Record<NodeStatus, number> = { ok: 0, skipped: 0, planned: 1, no_recording: 2, blocked: 2, cancelled: 2, failed: 3 };
const severity = (s: NodeStatus) => SEVERITY[s];

type NodeResult = Omit<NodeRun, 'seq' | 'iteration' | 'duration_us'>;

async function runNode(flow: CompiledFlow, node: CompiledNode, d: DeliveryInput, iteration: number | null, scope: ExpressionScope, mode: RunMode, opts: EngineOptions): Promise<NodeResult> {
  const def = node.op.def;
  let effectClass: EffectClass = node.effectClass;
  const result = (status: NodeStatus, extra: Partial<NodeResult> = {}): NodeResult => ({
    node_id: node.id,
    op: def.name,
    effect_class: effectClass,
    status,
    output: null,
    intent: null,
    error: null,
    ...extra,
  });
  let counter = 0;
  const ctx: OpContext = {
    source: d.source,
    flow: flow.name,
    nodeId: node.id,
    nowUs: opts.nowUs!(d),
    syntheticId: (prefix) => `${prefix}-${hex(`${opts.seed}\0${d.delivery_id}\0${flow.name}\0${node.id}\0${iteration ?? ''}\0${counter++}`, 16)}`,
  };
  try {
    let args: unknown;
    try {
      args = resolveValue(node.with, scope);
    } catch (err) {
      throw new HsError('HS_ERR_EXPRESSION', (err as Error).message.split('\n')[0]!);
    }
    if (!node.op.validate(args)) throw new HsError('HS_ERR_OP_ARGS', `bad arguments for ${def.name}: ${describeArgErrors(node.op.validate.errors)}`);
    effectClass = effectClassOf(def, args);
    if (effectClass === 'pure') return result('ok', { output: await def.run!(args, { ...ctx, logger: opts.logger }) });

    const request = def.request!(args, ctx);
    if (effectClass === 'read') {
      const live = mode === 'live' ? opts.capabilities : opts.liveReads;
      const response = live ? await live.send(request, opts.liveHeaders?.(d)) : opts.reads.lookup(request);
      if (!response) return result('no_recording', { error: `HS_ERR_NO_RECORDING: the legacy handler never made ${request.method} ${request.path} for this delivery; nothing to replay it from` });
      return responseResult(response, request.method, request.path, result);
    }
    const intent: Intent = { ...def.intent!(args, ctx), request };
    if (mode === 'dry-run') {
      const echo = opts.echoes?.lookup(request);
      const output = echo && echo.status > 0 && echo.status < 400 ? echo.body : def.synthetic ? def.synthetic(args, ctx) : null;
      return result('planned', { intent, output });
    }
    const response = await opts.capabilities!.send(request, opts.liveHeaders?.(d));
    return { ...responseResult(response, request.method, request.path, result), intent };
  } catch (err) {
    return result('failed', { error: errorText(err, 'HS_ERR_NODE_FAILED') });
  }
}

function responseResult(response: UpstreamResponse, method: string, path: string, result: (s: NodeStatus, extra?: Partial<NodeResult>) => NodeResult): NodeResult {
  if (response.status === 0) return result('failed', { error: `HS_ERR_UPSTREAM_ERROR: ${method} ${path} got no answer` });
  if (response.status >= 400) return result('failed', { output: response.body, error: `HS_ERR_UPSTREAM_ERROR: ${method} ${path} answered ${response.status}` });
  return result('ok', { output: response.body });
}
