import { HsError } from '../../core/errors.js';
import type { CompiledFlow, Mode } from '../flows/model.js';

/** The flows that will run live under a global mode and per-flow overrides. */
export function liveFlows(flows: readonly CompiledFlow[], mode: Mode, overrides: Readonly<Record<string, Mode>>): CompiledFlow[] {
  return flows.filter((f) => (overrides[f.name] ?? mode) === 'live');
}

/** Overrides must name loaded flows: a typo would otherwise silently leave a flow in the global mode. */
export function assertKnownFlows(flows: readonly CompiledFlow[], overrides: Readonly<Record<string, Mode>>): void {
  const names = new Set(flows.map((f) => f.name));
  const unknown = Object.keys(overrides).filter((n) => !names.has(n));
  if (unknown.length > 0) {
    throw new HsError('HS_ERR_USAGE', `Mode override for unknown flow(s) ${unknown.map((n) => JSON.stringify(n)).join(', ')}; the flows are ${[...names].join(', ')}.`);
  }
}
