import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { HsError } from '../core/errors.js';
import { mkdirDurable, syncDir, writeFileAtomic } from '../core/store/layout.js';
import { MODES, type Mode } from '../replayer/flows/model.js';

/**
 * serve's runtime settings: the global flow mode, per-flow overrides, and the history
 * of every change. One JSON file, rewritten atomically, so the modes and their history
 * can never disagree, and a restart comes back exactly as it was left. specs/modes.md.
 */

export interface ModeSettings {
  mode: Mode;
  /** Per-flow overrides of `mode`. */
  flows: Record<string, Mode>;
}

export interface HistoryEntry {
  seq: number;
  at: string;
  /** Who asked: the admin request's actor, or `hookshadow` for automatic changes. */
  who: string;
  scope: 'global' | 'flow';
  /** The flow for a per-flow change; null for the global mode. */
  flow: string | null;
  from: Mode;
  to: Mode;
  forced: boolean;
  /** Why: the cutover gate's figures for a flip to live, the fallback's for an automatic one. */
  evidence: Record<string, unknown> | null;
}

export interface SettingsFile extends ModeSettings {
  format: 'hookshadow-serve-settings';
  version: 1;
  /** When serve first ran on this store, and the modes it started with: the history replays from there. */
  created_at: string;
  initial: ModeSettings;
  history: HistoryEntry[];
}

export const settingsPath = (store: string) => join(store, 'serve', 'settings.json');

export function isMode(v: unknown): v is Mode {
  return typeof v === 'string' && (MODES as readonly string[]).includes(v);
}

/** Reads the settings, or null when serve never ran on this store. A damaged file is an error: guessing modes would be worse. */
export async function readSettings(store: string): Promise<SettingsFile | null> {
  let text: string;
  try {
    text = await readFile(settingsPath(store), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  let value: SettingsFile;
  try {
    value = JSON.parse(text) as SettingsFile;
  } catch (err) {
    throw new HsError('HS_ERR_CONFIG_INVALID', `${settingsPath(store)} is not valid JSON (${(err as Error).message}); restore it from a backup or delete it to start from the config's modes.`);
  }
  if (value.format !== 'hookshadow-serve-settings' || !isMode(value.mode) || !Object.values(value.flows ?? {}).every(isMode) || !Array.isArray(value.history)) {
    throw new HsError('HS_ERR_CONFIG_INVALID', `${settingsPath(store)} is not a hookshadow serve settings file; restore it from a backup or delete it to start from the config's modes.`);
  }
  return value;
}

/** Writes the settings whole (temporary file, fsync, rename, fsync the directory). */
export async function writeSettings(store: string, settings: SettingsFile): Promise<void> {
  const file = settingsPath(store);
  await mkdirDurable(dirname(file));
  await writeFileAtomic(file, `${JSON.stringify(settings, null, 2)}\n`);
  await syncDir(dirname(file));
}

/** The mode each flow runs in under these settings. */
export function effectiveModes(s: ModeSettings, flows: readonly string[]): Record<string, Mode> {
  return Object.fromEntries(flows.map((f) => [f, s.flows[f] ?? s.mode]));
}
