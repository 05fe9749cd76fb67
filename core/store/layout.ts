import { access, mkdir, readFile, rename, writeFile, open } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { CAPTURE_FORMAT_NAME, CAPTURE_FORMAT_VERSION, type Table } from '../capture-schema.js';
import { HsError } from '../errors.js';

/** Where each part of a capture store lives; see specs/capture-format.md § Layout. */
export const storePaths = {
  manifest: (store: string) => join(store, 'store.json'),
  table: (store: string, table: Table) => join(store, table),
  partition: (store: string, table: Table, date: string) => join(store, table, `date=${date}`),
  glob: (store: string, table: Table) => join(store, table, '*', '*.parquet'),
  wal: (store: string, instance: string) => join(store, '_wal', instance),
  staging: (store: string, instance: string) => join(store, '_staging', instance),
  quarantine: (store: string) => join(store, '_quarantine'),
  replays: (store: string) => join(store, 'replays'),
  replay: (store: string, id: string) => join(store, 'replays', id),
  replayStaging: (store: string, id: string) => join(store, '_staging', 'replays', id),
};

export interface StoreManifest {
  format: string;
  version: number;
  created_at: string;
}

/** DuckDB reads each table with a glob, so the store path itself must not contain glob characters. */
export function assertStorePath(store: string): void {
  if (/[*?[\]{}]/.test(store)) {
    throw new HsError('HS_ERR_CONFIG_INVALID', `Store path ${JSON.stringify(store)} contains a glob character (* ? [ ] { }); choose a directory without them.`);
  }
}

/** Creates the store directory and its manifest if missing; refuses a store written by a newer format. */
export async function ensureStore(store: string): Promise<StoreManifest> {
  assertStorePath(store);
  await mkdir(store, { recursive: true });
  const existing = await readManifest(store);
  if (existing) return existing;
  const manifest: StoreManifest = {
    format: CAPTURE_FORMAT_NAME,
    version: CAPTURE_FORMAT_VERSION,
    created_at: new Date().toISOString(),
  };
  await writeFileAtomic(storePaths.manifest(store), JSON.stringify(manifest, null, 2) + '\n');
  return manifest;
}

/** Reads and checks the manifest; `null` when the directory holds no store yet. */
export async function readManifest(store: string): Promise<StoreManifest | null> {
  let text: string;
  try {
    text = await readFile(storePaths.manifest(store), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new HsError('HS_ERR_STORE_UNREADABLE', `Cannot read ${storePaths.manifest(store)}: ${(err as Error).message}`, { cause: err });
  }
  let manifest: StoreManifest;
  try {
    manifest = JSON.parse(text) as StoreManifest;
  } catch (err) {
    throw new HsError('HS_ERR_STORE_CORRUPT', `${storePaths.manifest(store)} is not valid JSON; restore it or point --store at another directory.`, { cause: err });
  }
  assertReadableVersion(manifest.version, storePaths.manifest(store));
  return manifest;
}

/** Throws HS_ERR_STORE_VERSION for data written by a newer hookshadow. */
export function assertReadableVersion(version: number, where: string): void {
  if (!Number.isInteger(version) || version < 1) {
    throw new HsError('HS_ERR_STORE_CORRUPT', `${where} has no valid capture format version (found ${JSON.stringify(version)}).`);
  }
  if (version > CAPTURE_FORMAT_VERSION) {
    throw new HsError(
      'HS_ERR_STORE_VERSION',
      `${where} uses capture format version ${version}, but this hookshadow reads up to version ${CAPTURE_FORMAT_VERSION}. Upgrade hookshadow to read this store.`,
      { details: { found: version, supported: CAPTURE_FORMAT_VERSION } },
    );
  }
}

/** Writes a file so readers see either the old or the new content, never a torn one. */
export async function writeFileAtomic(path: string, content: string): Promise<void> {
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, content);
  const fh = await open(tmp, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, path);
}

/** mkdir -p, then fsyncs the parent of every directory it created, so the new entries survive a power loss. */
export async function mkdirDurable(dir: string): Promise<void> {
  const first = await mkdir(dir, { recursive: true });
  if (first === undefined) return;
  for (let d = dir; ; d = dirname(d)) {
    await syncDir(dirname(d));
    if (d === first || dirname(d) === d) break;
  }
}

/** fsyncs a file's content, e.g. before renaming the directory it sits in into place. */
/** Whether a file or directory exists (any error reading it counts as no). */
export function pathExists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}

export async function syncFile(path: string): Promise<void> {
  const fh = await open(path, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** fsyncs a directory so a rename or unlink in it survives a power loss. */
export async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}
