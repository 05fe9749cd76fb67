import { request, type Dispatcher } from 'undici';

/** Hop-by-hop headers (RFC 9110 §7.6.1) never cross a proxy; `host` is set from the target URL. */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'te',
  'trailer',
  'upgrade',
  'proxy-authorization',
  'proxy-authenticate',
  'host',
  'content-length',
  // undici refuses Expect: 100-continue; the body is already here, so the expectation is moot.
  'expect',
]);

/** The headers a proxy passes on, minus hop-by-hop ones and any listed in `drop` (lower-case). */
export function forwardableHeaders(
  headers: Record<string, string | string[] | undefined>,
  drop: string[] = [],
): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(headers)) {
    const lower = name.toLowerCase();
    if (value === undefined || HOP_BY_HOP.has(lower) || drop.includes(lower)) continue;
    out[lower] = value;
  }
  return out;
}

/** JSON schema of every error body: `{ code, message }` plus optional details. */
export const errorSchema = {
  type: 'object',
  required: ['code', 'message'],
  properties: { code: { type: 'string' }, message: { type: 'string' } },
  additionalProperties: true,
} as const;

/** A whole answer from the legacy handler or an upstream. */
export interface Forwarded {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

/** Sends one request through the dispatcher and reads the whole answer; rejects on a transport failure or timeout. */
export async function forward(
  dispatcher: Dispatcher,
  url: string,
  opts: { method: string; headers: Record<string, string | string[]>; body: Buffer | null; timeoutMs: number },
): Promise<Forwarded> {
  const res = await request(url, {
    method: opts.method as Dispatcher.HttpMethod,
    headers: opts.headers,
    body: opts.body,
    dispatcher,
    headersTimeout: opts.timeoutMs,
    bodyTimeout: opts.timeoutMs,
  });
  return { status: res.statusCode, headers: res.headers, body: Buffer.from(await res.body.arrayBuffer()) };
}
