import type { ReplayManifest } from '../core/replay-schema.js';
import { readReplayManifest } from '../replayer/replays.js';
import { replay } from '../replayer/replay.js';
import { filterOfManifest } from '../replayer/source.js';

/** The perturbation noise detection applies: another seed, and a clock 1h01m01s later (so minutes and seconds move too). */
export const NOISE_SEED_OFFSET = 1;
export const NOISE_CLOCK_SKEW_US = 3_661_000_000;

/**
 * Replays the same deliveries as `manifest`, with the same flows, a perturbed seed and
 * clock, into `<id>.noise` (reused when it exists). Always dry-run: measuring noise must
 * never act on the world, whatever mode the original replay ran in.
 */
export async function detectNoiseReplay(opts: { store: string; flowsDir: string; opsModules?: string[]; manifest: ReplayManifest }): Promise<string> {
  const id = `${opts.manifest.replay_id}.noise`;
  if (await readReplayManifest(opts.store, id)) return id;
  const filter = filterOfManifest(opts.manifest);
  const flowModes = Object.fromEntries(Object.entries(opts.manifest.flow_modes).map(([flow, mode]) => [flow, mode === 'off' ? 'off' : 'dry-run'] as const));
  await replay({
    store: opts.store,
    flowsDir: opts.flowsDir,
    opsModules: opts.opsModules ?? [],
    id,
    sinceUs: filter.sinceUs,
    untilUs: filter.untilUs,
    shard: filter.shard ? { k: filter.shard.index + 1, n: filter.shard.of } : null,
    mode: opts.manifest.mode === 'off' ? 'off' : 'dry-run',
    flowModes,
    seed: opts.manifest.seed + NOISE_SEED_OFFSET,
    clockSkewUs: opts.manifest.clock_skew_us + NOISE_CLOCK_SKEW_US,
    timings: false,
  });
  return id;
}
