import { formatUs } from '../core/clock.js';
import type { LiveStore } from './live-store.js';

/**
 * The cutover gate (specs/modes.md § Cutover): a flow may go from dry-run to live only
 * after soaking in dry-run long enough, over enough deliveries, with few enough
 * unexpected divergences. Evaluated by SQL over serve's live data.
 */

export interface GateConfig {
  min_days: number;
  min_deliveries: number;
  /** Divergent runs / runs over the soak, at most this (0: none at all). */
  max_divergence_rate: number;
}

export const DEFAULT_GATE: GateConfig = { min_days: 7, min_deliveries: 500, max_divergence_rate: 0 };

export interface GateResult {
  ready: boolean;
  reasons: string[];
  evidence: { soak_since: string | null; days: number; deliveries: number; divergent: number; divergence_rate: number | null; gate: GateConfig };
}

const DAY_US = 86_400_000_000;

/** `soakSinceUs`: when the flow last entered dry-run (null: it is not in dry-run now). */
export async function evaluateGate(live: Pick<LiveStore, 'query'>, flow: string, soakSinceUs: number | null, nowUs: number, gate: GateConfig): Promise<GateResult> {
  const reasons: string[] = [];
  let deliveries = 0;
  let divergent = 0;
  if (soakSinceUs === null) {
    reasons.push(`${flow} is not in dry-run: a flow goes live only after soaking in dry-run`);
  } else {
    const [row] = await live.query<{ runs: number; divergent: number }>(
      `SELECT count(*)::INTEGER AS runs, count(*) FILTER (list_contains(divergent_flows, $1))::INTEGER AS divergent
       FROM live WHERE list_contains(dry_run_flows, $1) AND received_at >= make_timestamp($2::BIGINT) AND received_at <= make_timestamp($3::BIGINT)`,
      [flow, Math.floor(soakSinceUs), Math.floor(nowUs)],
    );
    deliveries = row?.runs ?? 0;
    divergent = row?.divergent ?? 0;
  }
  const days = soakSinceUs === null ? 0 : (nowUs - soakSinceUs) / DAY_US;
  const rate = deliveries > 0 ? divergent / deliveries : null;
  if (soakSinceUs !== null && days < gate.min_days) reasons.push(`soaked ${days.toFixed(1)} of ${gate.min_days} days in dry-run`);
  if (soakSinceUs !== null && deliveries < gate.min_deliveries) reasons.push(`${deliveries} of ${gate.min_deliveries} deliveries run in dry-run`);
  if (rate !== null && rate > gate.max_divergence_rate) {
    reasons.push(`divergence rate ${(rate * 100).toFixed(2)}% (${divergent} of ${deliveries} runs) is above ${(gate.max_divergence_rate * 100).toFixed(2)}%`);
  }
  return {
    ready: reasons.length === 0,
    reasons,
    evidence: { soak_since: soakSinceUs === null ? null : formatUs(soakSinceUs), days: Number(days.toFixed(3)), deliveries, divergent, divergence_rate: rate, gate },
  };
}
