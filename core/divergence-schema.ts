/**
 * The analyzer's output: the contract between the analyzer (which writes
 * `replays/<id>/divergences.parquet` and `analysis.json`), its reports, the notebooks
 * and `serve`. `specs/divergence.md` explains each class and column.
 */
import type { ReplayColumn } from './replay-schema.js';

/** Bumped on any incompatible change to divergences.parquet or analysis.json. */
export const DIVERGENCE_FORMAT_VERSION = 1;

export const DIVERGENCE_CLASSES = [
  /** A legacy effect and a flow intent agree on kind, target and (normalized) args. */
  'match',
  /** The legacy handler did it; no flow intended it. */
  'missing_in_flow',
  /** A flow intended it; the legacy handler did not do it. */
  'extra_in_flow',
  /** Same kind and target, different args: one row per differing JSON path. */
  'args_differ',
  /** A flow would do its effects (those paired with legacy ones, matching or not) in another order than the legacy handler did. */
  'order_differs',
  /** A flow whose trigger matched failed or could not finish, so its intents are incomplete. */
  'flow_error',
  /** A legacy effect the recorder could not tie to any delivery. */
  'unattributed',
] as const;
export type DivergenceClass = (typeof DIVERGENCE_CLASSES)[number];

/** Classes that count as a divergence (everything but `match`). */
export const DIVERGENT_CLASSES: readonly DivergenceClass[] = DIVERGENCE_CLASSES.filter((c) => c !== 'match');

/** One difference (one row of `divergences.parquet`), or a match as the matcher reports it (matches are counted, not written). */
export interface Divergence {
  /** NULL only for `unattributed`. */
  delivery_id: string | null;
  /** The delivery's receive time (for `unattributed`: the effect's observe time), microseconds since the epoch. */
  received_at_us: number;
  source: string | null;
  event: string | null;
  action: string | null;
  class: DivergenceClass;
  /** The flow whose intent (or failed run) this concerns; for `missing_in_flow`, the delivery's only flow run when there is exactly one. */
  flow: string | null;
  /** The node whose intent this concerns. */
  node_id: string | null;
  /** The foreach iteration of that node; null when it does not iterate. */
  iteration: number | null;
  run_id: string | null;
  kind: string | null;
  target: string | null;
  /** `args_differ`: the JSON path of the difference within args, e.g. `$.labels[0]`; NULL otherwise. */
  path: string | null;
  /** The legacy side's value (the effect's args, or the value at `path`); undefined when there is none. */
  legacy_value: unknown;
  flow_value: unknown;
  /** A unified diff (`diff` package) when both values are long or multi-line strings. */
  text_diff: string | null;
  /** The legacy effect's `effect_id`, when one is concerned. */
  effect_id: string | null;
  /** The route-map route the legacy call matched (`POST /repos/{owner}/{repo}/issues/{number}/comments`), NULL if unmapped. */
  route: string | null;
  /** The rule that marks this row as expected (`expect:<id>` or `noise:<kind>:<path>`), or NULL when unexpected. */
  expected_by: string | null;
}

/** `replays/<id>/divergences.parquet`, in this column order. JSON values are canonical JSON text. */
export const DIVERGENCE_COLUMNS: ReplayColumn[] = [
  { name: 'delivery_id', type: 'VARCHAR' },
  { name: 'received_at', type: 'TIMESTAMP' },
  { name: 'source', type: 'VARCHAR' },
  { name: 'event', type: 'VARCHAR' },
  { name: 'action', type: 'VARCHAR' },
  { name: 'class', type: 'VARCHAR' },
  { name: 'flow', type: 'VARCHAR' },
  { name: 'node_id', type: 'VARCHAR' },
  { name: 'iteration', type: 'INTEGER' },
  { name: 'run_id', type: 'VARCHAR' },
  { name: 'kind', type: 'VARCHAR' },
  { name: 'target', type: 'VARCHAR' },
  { name: 'path', type: 'VARCHAR' },
  { name: 'legacy_value', type: 'JSON' },
  { name: 'flow_value', type: 'JSON' },
  { name: 'text_diff', type: 'VARCHAR' },
  { name: 'effect_id', type: 'VARCHAR' },
  { name: 'route', type: 'VARCHAR' },
  { name: 'expected_by', type: 'VARCHAR' },
];
