import { randomBytes } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ReplayManifest } from '../core/replay-schema.js';
import { HsError } from '../core/errors.js';
import { storePaths } from '../core/store/layout.js';

/** Replay ids name a directory: letters, digits, `.`, `_`, `-`; `latest` is reserved. */
export const REPLAY_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/** A generated id sorts by start time: `20261121T210329Z-3f9a1c`. */
export function newReplayId(nowMs: number = Date.now()): string {
  const stamp = new Date(nowMs).toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
  return `${stamp}-${randomBytes(3).toString('hex')}`;
}

export function assertReplayId(id: string): void {
  if (!REPLAY_ID_PATTERN.test(id) || id === 'latest') {
    throw new HsError('HS_ERR_USAGE', `Replay id ${JSON.stringify(id)} is not allowed: use 1-128 letters, digits, ".", "_" or "-", not "latest".`);
  }
}

export async function readReplayManifest(store: string, id: string): Promise<ReplayManifest | null> {
  try {
    return JSON.parse(await readFile(join(storePaths.replay(store, id), 'manifest.json'), 'utf8')) as ReplayManifest;
  } catch {
    return null;
  }
}

/** Every complete replay in the store (a replay directory appears only once its manifest is written), newest first. */
export async function listReplays(store: string): Promise<ReplayManifest[]> {
  const entries = await readdir(storePaths.replays(store), { withFileTypes: true }).catch(() => []);
  const manifests = await Promise.all(entries.filter((e) => e.isDirectory()).map((e) => readReplayManifest(store, e.name)));
  return manifests.filter((m): m is ReplayManifest => m !== null).sort((a, b) => b.finished_at.localeCompare(a.finished_at) || b.replay_id.localeCompare(a.replay_id));
}

/** Resolves `latest` (the replay that finished last) or checks that a named replay exists. */
export async function resolveReplayId(store: string, id: string): Promise<string> {
  if (id === 'latest') {
    const [newest] = await listReplays(store);
    if (!newest) throw new HsError('HS_ERR_REPLAY_NOT_FOUND', `${store} has no replays yet; run \`hookshadow replay --store ${store} --flows DIR\` first.`);
    return newest.replay_id;
  }
  if (!(await readReplayManifest(store, id))) throw new HsError('HS_ERR_REPLAY_NOT_FOUND', `No replay "${id}" in ${store}; \`ls ${storePaths.replays(store)}\` lists them.`);
  return id;
}
