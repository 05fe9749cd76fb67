import type { FastifyBaseLogger } from 'fastify';
import type { ServeSettings } from './config.js';

/**
 * The automatic fallback (specs/modes.md § Cutover): each live flow's last
 * `window_runs` live runs; once there are `min_runs`, a divergence rate above the
 * threshold puts the flow back to dry-run through `demote` (a history entry by
 * `hookshadow`, with these figures as evidence).
 */
export function createFallback(
  cfg: NonNullable<ServeSettings['fallback']>,
  demote: (flow: string, evidence: Record<string, unknown>) => Promise<unknown>,
  log: FastifyBaseLogger,
): { record(flow: string, divergent: boolean): void } {
  const windows = new Map<string, boolean[]>();
  return {
    record(flow, divergent) {
      const window = windows.get(flow) ?? [];
      window.push(divergent);
      if (window.length > cfg.window_runs) window.shift();
      windows.set(flow, window);
      const bad = window.filter(Boolean).length;
      const rate = bad / window.length;
      if (window.length < cfg.min_runs || rate <= cfg.max_divergence_rate) return;
      // Judged once: the flow starts a fresh window if it ever goes live again.
      windows.delete(flow);
      const evidence = { reason: 'automatic fallback', runs: window.length, divergent: bad, divergence_rate: rate, threshold: cfg.max_divergence_rate };
      demote(flow, evidence).then(
        () => log.warn({ flow, ...evidence }, `flow ${flow} diverged too often in live mode and was put back to dry-run`),
        (err: unknown) => log.error({ err, flow }, 'automatic fallback to dry-run failed'),
      );
    },
  };
}
