import type { FastifyBaseLogger } from 'fastify';
import type { Clock } from '../core/clock.js';
import { formatUs, parseIsoUs } from '../core/clock.js';
import { HsError } from '../core/errors.js';
import type { CompiledFlow, Mode } from '../replayer/flows/model.js';
import { evaluateGate, type GateConfig, type GateResult } from './gate.js';
import type { LiveStore } from './live-store.js';
import { effectiveModes, readSettings, writeSettings, type HistoryEntry, type ModeSettings, type SettingsFile } from './settings.js';

/**
 * The mode state machine (specs/modes.md § Modes). Every flip is serialized, checked
 * (the cutover gate for anything going live), written, and only then applied to the
 * dispatcher; if applying fails (a capability missing) the write is rolled back, so
 * the persisted modes, the history and what actually runs never disagree.
 */

/** What the dispatcher must do to match the modes: build itself on the first flow not `off`, tear down when all are. */
export interface Lifecycle {
  /** Throws HS_ERR_CAPABILITIES_MISSING (nothing changed) when a live flow lacks an upstream. */
  reconcile(modes: Readonly<Record<string, Mode>>): Promise<void>;
}

export interface ModeControllerDeps {
  store: string;
  flows: readonly CompiledFlow[];
  /** The modes from the config, used when serve first runs on a store. */
  defaults: ModeSettings;
  clock: Clock;
  gate: GateConfig;
  live: Pick<LiveStore, 'query'>;
  lifecycle: Lifecycle;
  /** Told after every applied change (SSE `mode-change`). */
  changed?: (entry: HistoryEntry, modes: Record<string, Mode>) => void;
  logger: FastifyBaseLogger;
}

export type FlipResult = { changed: false; from: Mode; to: Mode } | { changed: true; entry: HistoryEntry; modes: Record<string, Mode> };

export interface FlipRequest {
  to: Mode;
  who: string;
  force: boolean;
  /** Set by the automatic fallback: its figures go into the history instead of the gate's. */
  evidence?: Record<string, unknown>;
}

export interface ModeController {
  settings(): ModeSettings;
  effective(): Record<string, Mode>;
  history(): HistoryEntry[];
  setGlobal(req: FlipRequest): Promise<FlipResult>;
  setFlow(flow: string, req: FlipRequest): Promise<FlipResult>;
  gate(flow: string): Promise<GateResult>;
}

/** Loads (or creates) the settings and applies them; a persisted live flow whose capability is gone is demoted to dry-run, in the history. */
export async function startModeController(deps: ModeControllerDeps): Promise<ModeController> {
  const names = deps.flows.map((f) => f.name);
  const now = () => formatUs(deps.clock.nowUs());
  let file: SettingsFile =
    (await readSettings(deps.store)) ??
    ({ format: 'hookshadow-serve-settings', version: 1, created_at: now(), initial: structuredClone(deps.defaults), ...structuredClone(deps.defaults), history: [] } as SettingsFile);
  // Overrides for flows no longer loaded stay on file (the flow may come back) but do nothing.
  const modes = () => effectiveModes(file, names);
  let chain: Promise<unknown> = Promise.resolve();
  const serialized = <T>(fn: () => Promise<T>): Promise<T> => {
    const next = chain.then(fn, fn);
    chain = next.catch(() => undefined);
    return next;
  };

  const record = (f: SettingsFile, e: Omit<HistoryEntry, 'seq' | 'at'>): { next: SettingsFile; entry: HistoryEntry } => {
    const entry: HistoryEntry = { seq: (f.history.at(-1)?.seq ?? 0) + 1, at: now(), ...e };
    const next: SettingsFile = { ...f, history: [...f.history, entry] };
    if (e.scope === 'global') next.mode = e.to;
    else next.flows = { ...f.flows, [e.flow!]: e.to };
    return { next, entry };
  };

  /** Writes `next`, applies it, and on failure puts `file` back (on disk and in the dispatcher). */
  const commit = async (next: SettingsFile, entry: HistoryEntry): Promise<FlipResult> => {
    const before = file;
    await writeSettings(deps.store, next);
    file = next;
    try {
      await deps.lifecycle.reconcile(modes());
    } catch (err) {
      await writeSettings(deps.store, before);
      file = before;
      await deps.lifecycle.reconcile(modes()).catch((e: unknown) => deps.logger.error({ err: e }, 'restoring the dispatcher after a refused mode change failed'));
      throw err;
    }
    deps.logger.info({ entry }, `flow mode changed: ${entry.flow ?? 'global'} ${entry.from} → ${entry.to}${entry.forced ? ' (forced)' : ''}`);
    deps.changed?.(entry, modes());
    return { changed: true, entry, modes: modes() };
  };

  const soakSinceUs = (flow: string): number | null => dryRunSince(file, flow);
  const gate = (flow: string) => evaluateGate(deps.live, flow, soakSinceUs(flow), deps.clock.nowUs(), deps.gate);

  /** The gate for every flow the change would take live; HS_ERR_CUTOVER_BLOCKED with every reason unless forced. */
  const checkCutover = async (after: Record<string, Mode>, force: boolean): Promise<Record<string, unknown> | null> => {
    const before = modes();
    const goingLive = names.filter((n) => after[n] === 'live' && before[n] !== 'live');
    if (goingLive.length === 0) return null;
    const results = Object.fromEntries(await Promise.all(goingLive.map(async (n) => [n, await gate(n)] as const)));
    const reasons = goingLive.flatMap((n) => results[n]!.reasons.map((r) => `${n}: ${r}`));
    if (reasons.length > 0 && !force) {
      throw new HsError('HS_ERR_CUTOVER_BLOCKED', `The cutover gate refuses ${goingLive.join(', ')}: ${reasons.join('; ')}. Soak longer, fix the divergences, or force it (recorded).`, {
        details: { reasons, evidence: Object.fromEntries(goingLive.map((n) => [n, results[n]!.evidence])) },
      });
    }
    return Object.fromEntries(goingLive.map((n) => [n, { ...results[n]!.evidence, reasons: results[n]!.reasons }]));
  };

  const flip = (scope: 'global' | 'flow', flow: string | null, req: FlipRequest) =>
    serialized(async (): Promise<FlipResult> => {
      if (flow !== null && !names.includes(flow)) throw new HsError('HS_ERR_NOT_FOUND', `No flow named "${flow}"; the flows are ${names.join(', ')}.`);
      const from = scope === 'global' ? file.mode : modes()[flow!]!;
      const { next, entry } = record(file, { who: req.who, scope, flow, from, to: req.to, forced: req.force, evidence: null });
      const after = effectiveModes(next, names);
      const unchanged = from === req.to && names.every((n) => after[n] === modes()[n]);
      if (unchanged) return { changed: false, from, to: req.to };
      entry.evidence = req.evidence ?? (await checkCutover(after, req.force));
      return commit(next, entry);
    });

  // Start-up: apply the persisted modes. A live flow whose upstream is no longer configured goes
  // back to dry-run, with a history entry, rather than silently not running.
  try {
    await deps.lifecycle.reconcile(modes());
    if (file.history.length === 0 && !(await readSettings(deps.store))) await writeSettings(deps.store, file);
  } catch (err) {
    if (!(err instanceof HsError) || err.code !== 'HS_ERR_CAPABILITIES_MISSING') throw err;
    for (const n of names.filter((x) => modes()[x] === 'live')) {
      const missing = (err.details?.missing as string[] | undefined)?.filter((m) => m.endsWith(`(flow ${n})`)) ?? [];
      if (missing.length === 0) continue;
      const { next, entry } = record(file, { who: 'hookshadow', scope: 'flow', flow: n, from: 'live', to: 'dry-run', forced: false, evidence: { reason: 'capabilities missing at start-up', missing } });
      file = next;
      deps.logger.warn({ entry }, `flow ${n} was live but its capabilities are missing (${missing.join(', ')}): it runs in dry-run until they are configured`);
    }
    await writeSettings(deps.store, file);
    await deps.lifecycle.reconcile(modes());
  }

  return {
    settings: () => ({ mode: file.mode, flows: { ...file.flows } }),
    effective: modes,
    history: () => [...file.history],
    setGlobal: (req) => flip('global', null, req),
    setFlow: (flow, req) => flip('flow', flow, req),
    gate,
  };
}

/** When the flow last entered dry-run, replaying the history from the initial modes; null when it is not in dry-run. */
export function dryRunSince(file: SettingsFile, flow: string): number | null {
  let global = file.initial.mode;
  const overrides: Record<string, Mode> = { ...file.initial.flows };
  const effective = () => overrides[flow] ?? global;
  let since = effective() === 'dry-run' ? parseIsoUs(file.created_at) : null;
  for (const e of file.history) {
    const was = effective();
    if (e.scope === 'global') global = e.to;
    else if (e.flow) overrides[e.flow] = e.to;
    const is = effective();
    if (is === 'dry-run' && was !== 'dry-run') since = parseIsoUs(e.at);
    else if (is !== 'dry-run') since = null;
  }
  return since;
}
