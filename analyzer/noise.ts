import { sqlIdent, sqlString } from '../core/sql.js';
import { compareValues } from './compare.js';
import { WORK_TABLE } from './divergences.js';
import { formatPath } from './json-path.js';
import type { NoisePath, NoiseReport } from './result.js';
import { normalizeArgs, toleranceFor, type Rules } from './rules.js';
import type { AnalysisReader } from './views.js';

/**
 * Automatic noise detection (specs/divergence.md § Noise), after Diffy: the same
 * deliveries replayed twice, with a perturbed seed and clock, show which args paths
 * the flows themselves cannot reproduce. A path is noise when it differs against the
 * legacy side no more often than against itself.
 */

/** The table of noisy (kind, path) pairs the Parquet writer joins to mark them expected. */
export const NOISE_TABLE = 'noise_paths';

export async function measureNoise(
  reader: AnalysisReader,
  opts: { noiseReplay: string; noiseReplayId: string; rules: Rules; exclude: boolean },
): Promise<NoiseReport> {
  // Self side: each intent against the same node's intent in the perturbed replay.
  const selfPairs = new Map<string, number>();
  const selfDiffers = new Map<string, number>();
  const result = await reader.conn.stream(
    `SELECT a.intent->>'kind', a.intent->>'target', (a.intent->'args')::VARCHAR, (b.intent->'args')::VARCHAR
     FROM node_runs a JOIN read_parquet(${sqlString(opts.noiseReplay)}) b
       ON a.delivery_id = b.delivery_id AND a.flow = b.flow AND a.node_id = b.node_id AND a.iteration IS NOT DISTINCT FROM b.iteration
     WHERE a.intent IS NOT NULL AND b.intent IS NOT NULL AND (a.intent->>'kind') = (b.intent->>'kind')`,
  );
  for await (const rows of result.yieldRowsJs()) {
    for (const [kind, target, a, b] of rows as unknown as [string, string, string, string][]) {
      selfPairs.set(kind, (selfPairs.get(kind) ?? 0) + 1);
      if (a === b) continue;
      const diffs = compareValues(normalizeArgs(opts.rules, kind, target, JSON.parse(a)), normalizeArgs(opts.rules, kind, target, JSON.parse(b)), toleranceFor(opts.rules, kind, target));
      for (const d of diffs) {
        const key = `${kind}\u0000${formatPath(d.path)}`;
        selfDiffers.set(key, (selfDiffers.get(key) ?? 0) + 1);
      }
    }
  }

  // Legacy side, from the rows just computed: pairs per kind (a match, or one args_differ effect), differing pairs per path.
  const legacyPairs = new Map(
    (
      await reader.query<{ kind: string; n: number }>(
        `SELECT kind, (count(*) FILTER (WHERE class = 'match') + count(DISTINCT effect_id) FILTER (WHERE class = 'args_differ'))::DOUBLE AS n
         FROM ${WORK_TABLE} WHERE class IN ('match', 'args_differ') GROUP BY kind`,
      )
    ).map((r) => [r.kind, r.n]),
  );
  const legacyDiffers = new Map(
    (
      await reader.query<{ kind: string; path: string; n: number }>(
        `SELECT kind, path, count(DISTINCT effect_id)::DOUBLE AS n FROM ${WORK_TABLE} WHERE class = 'args_differ' GROUP BY kind, path`,
      )
    ).map((r) => [`${r.kind}\u0000${r.path}`, r.n]),
  );

  const paths: NoisePath[] = [...selfDiffers]
    .map(([key, self]) => {
      const [kind, path] = key.split('\u0000') as [string, string];
      const sp = selfPairs.get(kind)!;
      const lp = legacyPairs.get(kind) ?? 0;
      const ld = legacyDiffers.get(key) ?? 0;
      return { kind, path, self_pairs: sp, self_differs: self, legacy_pairs: lp, legacy_differs: ld, noise: lp === 0 || ld / lp <= self / sp };
    })
    .sort((x, y) => x.kind.localeCompare(y.kind) || x.path.localeCompare(y.path));

  await reader.conn.run(`CREATE OR REPLACE TEMP TABLE ${sqlIdent(NOISE_TABLE)} (kind VARCHAR, path VARCHAR)`);
  for (const p of paths.filter((x) => x.noise)) await reader.conn.run(`INSERT INTO ${sqlIdent(NOISE_TABLE)} VALUES ($1, $2)`, [p.kind, p.path]);
  return { replay_id: opts.noiseReplayId, excluded: opts.exclude, paths };
}
