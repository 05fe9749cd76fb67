import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { PACKAGE_ROOT } from '../../core/version.js';

/**
 * The dashboard at `/`: one page and its script (serve/dashboard/), with Preact and
 * htm served from the package's own node_modules, so it works without a network.
 * The page holds no data: it calls the admin API with the token the operator gives it.
 */

const require = createRequire(import.meta.url);
const DASHBOARD = join(PACKAGE_ROOT, 'serve', 'dashboard');

const ASSETS: Record<string, { file: () => string; type: string }> = {
  '/': { file: () => join(DASHBOARD, 'index.html'), type: 'text/html; charset=utf-8' },
  '/assets/app.js': { file: () => join(DASHBOARD, 'app.js'), type: 'text/javascript; charset=utf-8' },
  '/assets/style.css': { file: () => join(DASHBOARD, 'style.css'), type: 'text/css; charset=utf-8' },
  '/assets/preact.mjs': { file: () => require.resolve('preact'), type: 'text/javascript; charset=utf-8' },
  '/assets/preact-hooks.mjs': { file: () => require.resolve('preact/hooks'), type: 'text/javascript; charset=utf-8' },
  '/assets/htm.mjs': { file: () => require.resolve('htm').replace(/htm\.js$/, 'htm.module.js'), type: 'text/javascript; charset=utf-8' },
};

/** The CSP allows the page's one inline script, its import map, by hash: nothing else inline runs. */
async function contentSecurityPolicy(): Promise<string> {
  const page = await readFile(join(DASHBOARD, 'index.html'), 'utf8');
  const importMap = /<script type="importmap">([\s\S]*?)<\/script>/.exec(page)?.[1] ?? '';
  const hash = createHash('sha256').update(importMap).digest('base64');
  return `default-src 'self'; script-src 'self' 'sha256-${hash}'; img-src 'self' data:; style-src 'self'; connect-src 'self'; base-uri 'none'; frame-ancestors 'none'`;
}

export async function dashboardRoutes(app: FastifyInstance): Promise<void> {
  const csp = await contentSecurityPolicy();
  // Read once: the files are small and never change while serve runs.
  const cache = new Map<string, Buffer>();
  for (const [path, asset] of Object.entries(ASSETS)) {
    app.get(path, async (_req, reply) => {
      let body = cache.get(path);
      if (!body) cache.set(path, (body = await readFile(asset.file())));
      return reply
        .type(asset.type)
        .header('cache-control', 'no-cache')
        .header('content-security-policy', csp)
        .header('x-content-type-options', 'nosniff')
        .send(body);
    });
  }
}
