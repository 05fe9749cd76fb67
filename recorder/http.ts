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
