/**
 * A replay's output: the contract between the replayer (which writes it) and the
 * analyzer (which reads it). `specs/replay-format.md` explains each column.
 */

/** Bumped on any incompatible change to the files below. */
export const REPLAY_FORMAT_VERSION = 1;

export interface ReplayColumn {
  name: string;
  type: string;
}

/** `replays/<id>/flow_runs.parquet`: one row per flow run (a flow whose trigger matched a delivery). */
export const FLOW_RUN_COLUMNS: ReplayColumn[] = [
  { name: 'run_id', type: 'VARCHAR' },
  { name: 'delivery_id', type: 'VARCHAR' },
  { name: 'flow', type: 'VARCHAR' },
  { name: 'flow_version', type: 'VARCHAR' },
  { name: 'mode', type: 'VARCHAR' },
  { name: 'status', type: 'VARCHAR' },
  { name: 'error', type: 'VARCHAR' },
  { name: 'started_at', type: 'TIMESTAMP' },
  { name: 'duration_us', type: 'BIGINT' },
  { name: 'source', type: 'VARCHAR' },
  { name: 'event', type: 'VARCHAR' },
  { name: 'action', type: 'VARCHAR' },
  { name: 'received_at', type: 'TIMESTAMP' },
  { name: 'node_count', type: 'INTEGER' },
  { name: 'intent_count', type: 'INTEGER' },
];

/** `replays/<id>/node_runs.parquet`: one row per node run (per iteration under foreach). */
export const NODE_RUN_COLUMNS: ReplayColumn[] = [
  { name: 'run_id', type: 'VARCHAR' },
  { name: 'delivery_id', type: 'VARCHAR' },
  { name: 'flow', type: 'VARCHAR' },
  { name: 'node_id', type: 'VARCHAR' },
  { name: 'seq', type: 'INTEGER' },
  { name: 'iteration', type: 'INTEGER' },
  { name: 'op', type: 'VARCHAR' },
  { name: 'effect_class', type: 'VARCHAR' },
  { name: 'status', type: 'VARCHAR' },
  { name: 'output', type: 'JSON' },
  { name: 'intent', type: 'JSON' },
  { name: 'error', type: 'VARCHAR' },
  { name: 'duration_us', type: 'BIGINT' },
];

/** `replays/<id>/redeliveries.parquet` (only with --redeliver-to): one row per delivery re-sent to a webhook URL. */
export const REDELIVERY_COLUMNS: ReplayColumn[] = [
  { name: 'delivery_id', type: 'VARCHAR' },
  { name: 'url', type: 'VARCHAR' },
  { name: 'status', type: 'INTEGER' },
  { name: 'error', type: 'VARCHAR' },
  { name: 'latency_us', type: 'BIGINT' },
];

/** What a replay did, in numbers: the manifest's `counts` and the CLI's summary. */
export interface ReplayCounts {
  deliveries: number;
  runs: number;
  node_runs: number;
  intents: number;
  /** Failed flow runs. */
  errors: number;
  runs_by_status: Record<string, number>;
  redelivered: number;
  redelivery_failures: number;
}

/** `replays/<id>/manifest.json`. */
export interface ReplayManifest {
  format: 'hookshadow-replay';
  version: number;
  replay_id: string;
  hookshadow_version: string;
  flows_digest: string;
  flows: { name: string; version: string; file: string }[];
  /** The global mode, and each flow's mode where it differs. */
  mode: 'off' | 'dry-run' | 'live';
  flow_modes: Record<string, 'off' | 'dry-run' | 'live'>;
  /** Dry-run reads came from live upstreams, not the recordings: such a replay is not reproducible. */
  live_reads: boolean;
  seed: number;
  /** Runs' clock minus received_at, in microseconds (0 unless perturbed for noise detection). */
  clock_skew_us: number;
  filters: { since: string | null; until: string | null; shard: string | null };
  counts: ReplayCounts;
  started_at: string;
  finished_at: string;
  workers: number;
}
