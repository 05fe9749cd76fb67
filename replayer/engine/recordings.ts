import type { HttpRequestIntent } from '../../core/effects.js';
import type { UpstreamResponse } from './capabilities.js';

/** A read the legacy handler made while handling the delivery (an `exchanges` row). */
export interface RecordedExchange {
  upstream: string;
  method: string;
  path: string;
  response_status: number | null;
  response_body: string | null;
  /** The request's body, where a caller keeps it (saved counterexamples do; replay does not need it). */
  request_body?: string | null;
}

/** Serves a delivery's reads from what the legacy handler read (hermetic replay). */
export interface ReadSource {
  lookup(req: HttpRequestIntent): UpstreamResponse | null;
  /** The same recordings, none consumed yet (each flow run starts from the first). */
  fresh(): ReadSource;
}

const stripQuery = (path: string) => path.split('?')[0]!;

/**
 * Matches by upstream, method and path; then by method and path on any upstream
 * (a forgejo delivery's bot may have called its upstream "gitea"). Repeated reads
 * of one path get the recordings in order, then the last one again.
 */
export function recordedReads(exchanges: readonly RecordedExchange[]): ReadSource {
  if (exchanges.length === 0) return NO_RECORDINGS;
  const exact = new Map<string, RecordedExchange[]>();
  const loose = new Map<string, RecordedExchange[]>();
  for (const x of exchanges) {
    const k = `${x.method} ${stripQuery(x.path)}`;
    (exact.get(`${x.upstream} ${k}`) ?? exact.set(`${x.upstream} ${k}`, []).get(`${x.upstream} ${k}`)!).push(x);
    (loose.get(k) ?? loose.set(k, []).get(k)!).push(x);
  }
  return withCounters(exact, loose);
}

/** A reader over the indexed recordings with its own consumption counters; `fresh()` shares the index. */
function withCounters(exact: Map<string, RecordedExchange[]>, loose: Map<string, RecordedExchange[]>): ReadSource {
  const used = new Map<string, number>();
  return {
    fresh: () => withCounters(exact, loose),
    lookup(req) {
      const k = `${req.method} ${stripQuery(req.path)}`;
      const key = exact.has(`${req.upstream} ${k}`) ? `${req.upstream} ${k}` : k;
      const list = exact.get(key) ?? loose.get(key);
      if (!list || list.length === 0) return null;
      const n = used.get(key) ?? 0;
      used.set(key, n + 1);
      const x = list[Math.min(n, list.length - 1)]!;
      let body: unknown = x.response_body;
      try {
        body = x.response_body ? JSON.parse(x.response_body) : null;
      } catch {
        // A non-JSON response stays text.
      }
      return { status: x.response_status ?? 0, body };
    },
  };
}

export const NO_RECORDINGS: ReadSource = { lookup: () => null, fresh: () => NO_RECORDINGS };
