import type { Divergence, DivergenceClass } from '../core/divergence-schema.js';

/**
 * What `hookshadow analyze` found: the value every report format renders and
 * `--format json` prints. `specs/divergence.md` § The analysis result documents it.
 */
export interface AnalysisResult {
  format: 'hookshadow-analysis';
  version: number;
  replay_id: string;
  store: string;
  /** ISO-8601; the analysis's clock (rule expiry is judged against it). */
  generated_at: string;
  rules_file: string | null;
  totals: AnalysisTotals;
  /** Rows per class: `unexpected` count toward failure, `expected` were suppressed by a rule (never counted as matches). */
  counts_by_class: Record<DivergenceClass, { unexpected: number; expected: number }>;
  by_flow: FlowSummary[];
  /** The worst offenders among unexpected divergences, most frequent first (at most 10 each). */
  worst: { kinds: Ranked[]; targets: Ranked[]; flows: Ranked[] };
  /** Deliveries with at least one divergence (expected or not), in receive order, `match` rows left out; at most `--limit`. */
  deliveries: DivergentDelivery[];
  /** How many such deliveries there are in all (more than `deliveries.length` when the list was cut). */
  deliveries_total: number;
  /** Legacy effects tied to no delivery, reported apart (at most `--limit`). */
  unattributed: Divergence[];
  unattributed_total: number;
  rules: RuleReport;
  noise: NoiseReport | null;
  baseline: BaselineReport | null;
  daily: DailySummaryRow[];
}

export interface AnalysisTotals {
  deliveries: number;
  deliveries_with_flow: number;
  flow_runs: number;
  /** Flow runs with at least one unexpected divergence. */
  divergent_runs: number;
  /** Deliveries with at least one unexpected divergence. */
  divergent_deliveries: number;
  legacy_effects: number;
  intents: number;
  matches: number;
  unexpected: number;
  expected: number;
}

export interface FlowSummary {
  flow: string;
  runs: number;
  divergent_runs: number;
  divergence_rate: number;
  unexpected: Partial<Record<DivergenceClass, number>>;
  expected: number;
}

export interface Ranked {
  key: string;
  count: number;
}

export interface DivergentDelivery {
  delivery_id: string;
  received_at: string;
  source: string | null;
  event: string | null;
  action: string | null;
  /** True when at least one difference is unexpected. */
  unexpected: boolean;
  differences: Divergence[];
}

export interface RuleReport {
  /** Every `expect` rule and how many rows it suppressed. */
  expect: { id: string; reason: string; owner: string; expires: string | null; suppressed: number; expired: boolean }[];
  /** Rules past their `expires` date: they suppress nothing, and fail CI under --fail-on. */
  expired: string[];
  /** Rules (expect or normalize) that matched nothing in this replay: stale, and fail CI under --fail-on. */
  unused: string[];
}

export interface NoiseReport {
  /** The replay compared against (same deliveries, perturbed seed and clock). */
  replay_id: string;
  excluded: boolean;
  paths: NoisePath[];
}

export interface NoisePath {
  kind: string;
  path: string;
  /** Intent pairs (replay vs perturbed replay) compared at this kind, and how many differed at this path. */
  self_pairs: number;
  self_differs: number;
  /** Legacy-vs-flow pairs compared at this kind, and how many differed at this path. */
  legacy_pairs: number;
  legacy_differs: number;
  /** Diffy's test: true when the path differs against the legacy side no more often than against itself. */
  noise: boolean;
}

export interface BaselineReport {
  replay_id: string;
  /** At most `--limit` each; the totals count them all. */
  introduced: Divergence[];
  resolved: Divergence[];
  introduced_total: number;
  resolved_total: number;
}

export interface DailySummaryRow {
  /** UTC day, YYYY-MM-DD. */
  day: string;
  deliveries: number;
  deliveries_with_flow: number;
  flow_runs: number;
  divergent_runs: number;
  divergence_rate: number;
}
