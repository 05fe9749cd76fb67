import { Pool, type Dispatcher } from 'undici';
import type { HttpRequestIntent } from '../../core/effects.js';
import { HsError } from '../../core/errors.js';
import { FORGES } from '../ops/forge.js';
import type { CompiledFlow } from '../flows/model.js';

/** An upstream's answer, body parsed as JSON when it is JSON. */
export interface UpstreamResponse {
  status: number;
  body: unknown;
}

/**
 * What live mode may touch: one undici dispatcher per configured upstream. Dry-run
 * never receives this object, which is what makes it unable to reach the network.
 */
export interface Capabilities {
  upstreams: ReadonlySet<string>;
  send(req: HttpRequestIntent, extraHeaders?: Record<string, string>): Promise<UpstreamResponse>;
  close(): Promise<void>;
}

export interface UpstreamConfig {
  url: string;
  token?: string;
}

export function createCapabilities(upstreams: Record<string, UpstreamConfig>, opts: { timeoutMs?: number; dispatcherFor?: (origin: string) => Dispatcher } = {}): Capabilities {
  const pools = new Map<string, { base: URL; token?: string; dispatcher: Dispatcher }>();
  for (const [name, cfg] of Object.entries(upstreams)) {
    const base = new URL(cfg.url);
    pools.set(name, { base, token: cfg.token, dispatcher: opts.dispatcherFor?.(base.origin) ?? new Pool(base.origin, { connections: 8 }) });
  }
  return {
    upstreams: new Set(pools.keys()),
    async send(req, extraHeaders = {}) {
      const up = pools.get(req.upstream);
      if (!up) throw new HsError('HS_ERR_CAPABILITIES_MISSING', `No upstream "${req.upstream}" is configured for live mode.`, { details: { missing: [req.upstream] } });
      const body = req.body === null || req.body === undefined ? undefined : JSON.stringify(req.body);
      const res = await up.dispatcher.request({
        origin: up.base.origin,
        path: `${up.base.pathname.replace(/\/$/, '')}${req.path}`,
        method: req.method as Dispatcher.HttpMethod,
        headers: {
          accept: 'application/json',
          'user-agent': 'hookshadow',
          ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
          ...(up.token ? { authorization: `token ${up.token}` } : {}),
          ...extraHeaders,
        },
        body,
        headersTimeout: opts.timeoutMs ?? 10_000,
        bodyTimeout: opts.timeoutMs ?? 10_000,
      });
      const text = await res.body.text();
      let parsed: unknown = text;
      try {
        parsed = text ? JSON.parse(text) : null;
      } catch {
        // Not JSON: keep the text.
      }
      return { status: res.statusCode, body: parsed };
    },
    async close() {
      await Promise.all([...pools.values()].map((p) => p.dispatcher.close()));
    },
  };
}

/** The upstreams a flow needs to run live, as `capability:upstream` (`forge:*` when any forge will do). */
export function requiredUpstreams(flow: CompiledFlow): { capability: string; upstream: string }[] {
  const sources = flow.triggers.some((t) => t.sources === null) ? null : [...new Set(flow.triggers.flatMap((t) => t.sources ?? []))];
  const out = new Map<string, { capability: string; upstream: string }>();
  const add = (capability: string, upstream: string) => out.set(`${capability}:${upstream}`, { capability, upstream });
  for (const node of flow.nodes) {
    const cap = node.op.def.capability;
    if (!cap) continue;
    const literal = (key: string): string | undefined => {
      if (node.with.kind !== 'object') return undefined;
      const v = node.with.entries.find(([k]) => k === key)?.[1];
      return v?.kind === 'literal' && typeof v.value === 'string' ? v.value : undefined;
    };
    if (cap === 'forge') {
      const fixed = literal('forge');
      if (fixed) add(cap, fixed);
      else if (sources === null) add(cap, '*');
      else for (const s of sources.filter((s) => (FORGES as readonly string[]).includes(s))) add(cap, s);
    } else if (cap === 'agent-queue') add(cap, literal('upstream') ?? 'agents');
    else if (cap === 'http') {
      const fixed = literal('upstream');
      if (fixed) add(cap, fixed);
    } else add(cap, literal('upstream') ?? cap);
  }
  return [...out.values()];
}

/** Throws HS_ERR_CAPABILITIES_MISSING, listing every `capability:upstream` not configured, before anything runs live. */
export function assertCapabilities(flows: CompiledFlow[], configured: ReadonlySet<string>): void {
  const missing = new Set<string>();
  for (const flow of flows) {
    for (const { capability, upstream } of requiredUpstreams(flow)) {
      const ok = upstream === '*' ? FORGES.some((f) => configured.has(f)) : configured.has(upstream);
      if (!ok) missing.add(`${capability}:${upstream} (flow ${flow.name})`);
    }
  }
  if (missing.size > 0) {
    throw new HsError('HS_ERR_CAPABILITIES_MISSING', `Live mode needs upstreams that are not configured: ${[...missing].join(', ')}. Add them with --upstream NAME=URL.`, {
      details: { missing: [...missing] },
    });
  }
}
