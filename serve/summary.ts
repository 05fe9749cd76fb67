import type { FastifyBaseLogger } from 'fastify';
import type { DailySummaryRow } from '../analyzer/result.js';
import type { ServeContext } from './server.js';

/**
 * The daily summary over serve's live data (specs/modes.md § Daily summary): per UTC
 * day, the deliveries settled, those with at least one flow run, the runs, the
 * divergent runs and the rate; per flow, and per event and action.
 */

/** The same row as an offline analysis's daily summary. */
export type DailyRow = DailySummaryRow;

export interface DailySummary {
  days: DailyRow[];
  by_flow: (Omit<DailyRow, 'deliveries' | 'deliveries_with_flow'> & { flow: string; mode: string })[];
  by_event: (Omit<DailyRow, 'deliveries_with_flow'> & { event: string | null; action: string | null })[];
}

export async function dailySummary(ctx: Pick<ServeContext, 'live' | 'clock'>, days: number): Promise<DailySummary> {
  const since = Math.floor((ctx.clock.nowUs() / 86_400_000_000 - days + 1)) * 86_400_000_000;
  const p = [since];
  const w = 'received_at >= make_timestamp($1::BIGINT)';
  const rate = (runs: string, bad: string) => `coalesce(${bad} / nullif(${runs}, 0), 0)::DOUBLE AS divergence_rate`;
  const day = `strftime(received_at::DATE, '%Y-%m-%d') AS day`;
  // One connection: the queries run one after another.
  const rows = await ctx.live.query<DailyRow>(
      `SELECT ${day}, count(*)::INTEGER AS deliveries, count(*) FILTER (len(flows) > 0)::INTEGER AS deliveries_with_flow,
              sum(len(flows))::INTEGER AS flow_runs, sum(len(divergent_flows))::INTEGER AS divergent_runs, ${rate('sum(len(flows))', 'sum(len(divergent_flows))')}
       FROM live WHERE ${w} GROUP BY 1 ORDER BY 1`,
      p,
    );
  const byFlow = await ctx.live.query<DailySummary['by_flow'][number]>(
      `SELECT day, flow, mode, count(*)::INTEGER AS flow_runs, count(*) FILTER (divergent)::INTEGER AS divergent_runs, ${rate('count(*)', 'count(*) FILTER (divergent)')}
       FROM (SELECT ${day}, r->>'flow' AS flow, r->>'mode' AS mode, list_contains(divergent_flows, r->>'flow') AS divergent
             FROM live, unnest(CAST(runs AS JSON[])) AS t(r) WHERE ${w})
       GROUP BY ALL ORDER BY day, flow, mode`,
      p,
    );
  const byEvent = await ctx.live.query<DailySummary['by_event'][number]>(
      `SELECT ${day}, event, action, count(*)::INTEGER AS deliveries, sum(len(flows))::INTEGER AS flow_runs, sum(len(divergent_flows))::INTEGER AS divergent_runs,
              ${rate('sum(len(flows))', 'sum(len(divergent_flows))')}
       FROM live WHERE ${w} GROUP BY ALL ORDER BY day, event, action`,
      p,
    );
  return { days: rows, by_flow: byFlow, by_event: byEvent };
}

/** Logs the last day's summary and announces it (SSE `daily-summary`): at start-up and at each UTC midnight. */
export async function logDailySummary(ctx: ServeContext, log: FastifyBaseLogger): Promise<void> {
  try {
    const summary = await dailySummary(ctx, 2);
    log.info({ daily_summary: summary.days }, 'daily summary');
    ctx.events.publish('daily-summary', summary);
  } catch (err) {
    log.error({ err }, 'computing the daily summary failed');
  }
}
