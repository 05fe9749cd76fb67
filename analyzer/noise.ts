import type { DuckDBConnection } from '@duckdb/node-api';
import { sqlString } from '../core/sql.js';
import { streamVerified } from '../core/store/stream.js';
import { compareValues } from './compare.js';
import { WORK_TABLE } from './divergences.js';
import { formatPath } from './json-path.js';
import type { NoisePath, NoiseReport } from './result.js';
import { normalizeArgs, toleranceFor, withoutCounting, type Rules } from './rules.js';
import type { AnalysisReader } from './views.js';

/**
 * Automatic noise detection (specs/divergence.md § Noise), after Diffy: the same
 * deliveries replayed twice, with a perturbed seed and clock, show which args paths
 * the flows themselves cannot reproduce. A path is noise when it differs against the
 * legacy side no more often than against itself.
 */

/** The table of noisy (kind, path) pairs the Parquet writer joins to mark them expected. */
export async function measureNoise(
  reader: AnalysisReader,
  opts: { noiseReplay: string; noiseReplayId: string; rules: Rules; exclude: boolean; matchesByKind: Map<string, number> },
): Promise<NoiseReport> {
  // Comparing the flows with themselves must not mark rules as used.
  const self = await withoutCounting(opts.rules, () => selfDifferences(reader, opts.noiseReplay, opts.rules));

  // Legacy side, from the rows just computed: pairs per kind (a match, or one args_differ effect), differing pairs per path.
  const legacyPairs = new Map(opts.matchesByKind);
  for (const r of await reader.query<{ kind: string; n: number }>(`SELECT kind, count(DISTINCT effect_id)::DOUBLE AS n FROM ${WORK_TABLE} WHERE class = 'args_differ' GROUP BY kind`)) {
    legacyPairs.set(r.kind, (legacyPairs.get(r.kind) ?? 0) + r.n);
  }
  const legacyDiffers = new Map(
    (
      await reader.query<{ kind: string; path: string; n: number }>(
        `SELECT kind, path, count(DISTINCT effect_id)::DOUBLE AS n FROM ${WORK_TABLE} WHERE class = 'args_differ' GROUP BY kind, path`,
      )
    ).map((r) => [`${r.kind}\u0000${r.path}`, r.n]),
  );

  const paths: NoisePath[] = [...self.differs]
    .map(([key, differs]) => {
      const [kind, path] = key.split('\u0000') as [string, string];
      const sp = self.pairs.get(kind)!;
      const lp = legacyPairs.get(kind) ?? 0;
      const ld = legacyDiffers.get(key) ?? 0;
      return { kind, path, self_pairs: sp, self_differs: differs, legacy_pairs: lp, legacy_differs: ld, noise: isNoise({ self_pairs: sp, self_differs: differs, legacy_pairs: lp, legacy_differs: ld }) };
    })
    .sort((x, y) => x.kind.localeCompare(y.kind) || x.path.localeCompare(y.path));

  if (opts.exclude) await markNoise(reader.conn, paths.filter((p) => p.noise));
  return { replay_id: opts.noiseReplayId, excluded: opts.exclude, paths };
}

/**
 * Diffy's test: a path that differs against itself is noise unless it differs against
 * the legacy side more often (by rate) than against itself.
 */
export function isNoise(p: Pick<NoisePath, 'self_pairs' | 'self_differs' | 'legacy_pairs' | 'legacy_differs'>): boolean {
  if (p.self_differs === 0) return false;
  if (p.legacy_pairs === 0) return true;
  return p.legacy_differs / p.legacy_pairs <= p.self_differs / p.self_pairs;
}

/** Marks unexpected args differences at noisy paths as expected, `noise:<kind>:<path>`, in the working table. */
export async function markNoise(conn: DuckDBConnection, noisy: Pick<NoisePath, 'kind' | 'path'>[]): Promise<void> {
  for (const p of noisy) {
    await conn.run(
      `UPDATE ${WORK_TABLE} SET expected_by = 'noise:' || kind || ':' || path WHERE class = 'args_differ' AND expected_by IS NULL AND kind = $1 AND path = $2`,
      [p.kind, p.path],
    );
  }
}

/** Each intent against the same node's intent in the perturbed replay (run ids are the same in every replay of a delivery). */
async function selfDifferences(reader: AnalysisReader, noiseReplay: string, rules: Rules): Promise<{ pairs: Map<string, number>; differs: Map<string, number> }> {
  const pairs = new Map<string, number>();
  const differs = new Map<string, number>();
  const rowsOf = streamVerified(
    reader.conn,
    `SELECT a.intent->>'kind', a.intent->>'target', (a.intent->'args')::VARCHAR, (b.intent->'args')::VARCHAR
     FROM node_runs a JOIN read_parquet(${sqlString(noiseReplay)}) b
       ON a.run_id = b.run_id AND a.node_id = b.node_id AND a.iteration IS NOT DISTINCT FROM b.iteration
     WHERE a.intent IS NOT NULL AND b.intent IS NOT NULL AND (a.intent->>'kind') = (b.intent->>'kind')`,
  );
  for await (const rows of rowsOf) {
    for (const [kind, target, a, b] of rows as unknown as [string, string, string, string][]) {
      pairs.set(kind, (pairs.get(kind) ?? 0) + 1);
      if (a === b) continue;
      const diffs = compareValues(normalizeArgs(rules, kind, target, JSON.parse(a)), normalizeArgs(rules, kind, target, JSON.parse(b)), toleranceFor(rules, kind, target));
      for (const d of diffs) {
        const key = `${kind}\u0000${formatPath(d.path)}`;
        differs.set(key, (differs.get(key) ?? 0) + 1);
      }
    }
  }
  return { pairs, differs };
}
