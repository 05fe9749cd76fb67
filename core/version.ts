import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** The package's root directory and manifest, found from both the sources and dist/. */
const pkg: { root: string; version: string } = (() => {
  for (const rel of ['../', '../../']) {
    try {
      const root = new URL(rel, import.meta.url);
      const json = JSON.parse(readFileSync(new URL('package.json', root), 'utf8')) as { name?: string; version?: string };
      if (json.name === 'hookshadow' && json.version) return { root: fileURLToPath(root), version: json.version };
    } catch {
      // try the next location
    }
  }
  return { root: process.cwd(), version: '0.0.0' };
})();

/** hookshadow's version, from package.json. */
export const VERSION: string = pkg.version;

/** The installed package's directory: where the bundled fixtures (demo flows) live. */
export const PACKAGE_ROOT: string = pkg.root;
