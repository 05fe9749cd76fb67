import { Agent, request, type Dispatcher } from 'undici';
import { isSource } from '../recorder/sources.js';
import { SIGNATURE_HEADERS, signatureHeaders } from '../recorder/sources.js';

/** A captured delivery as it was received: what re-delivery sends again. */
export interface RawDelivery {
  delivery_id: string;
  source: string;
  headers: Record<string, string>;
  body: string | null;
  body_encoding: 'utf8' | 'base64';
}

export interface RedeliveryResult {
  delivery_id: string;
  url: string;
  status: number | null;
  error: string | null;
  latency_us: number;
}

// Hop-by-hop and length headers belong to the original connection, not to the delivery.
const DROP = new Set(['host', 'connection', 'content-length', 'transfer-encoding', 'keep-alive', 'expect', 'upgrade', ...SIGNATURE_HEADERS]);

/**
 * Re-sends captured deliveries to a webhook URL (a staging legacy handler), re-signed
 * with the secret configured for their source. Stored headers are post-redaction, so
 * the old signature could not be valid anyway; without a secret none is sent.
 */
export function createRedeliverer(opts: { url: string; secrets: Record<string, string>; timeoutMs?: number; dispatcher?: Dispatcher }) {
  const dispatcher = opts.dispatcher ?? new Agent({ connections: 8 });
  return {
    async send(d: RawDelivery): Promise<RedeliveryResult> {
      const raw = d.body === null ? Buffer.alloc(0) : Buffer.from(d.body, d.body_encoding === 'base64' ? 'base64' : 'utf8');
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(d.headers)) if (!DROP.has(k.toLowerCase())) headers[k] = v;
      const secret = opts.secrets[d.source];
      if (secret && isSource(d.source)) Object.assign(headers, signatureHeaders(d.source, raw, secret));
      // `{source}` in the URL becomes the delivery's source, so one URL serves /hooks/github and /hooks/gitea.
      const url = opts.url.replaceAll('{source}', encodeURIComponent(d.source));
      const started = performance.now();
      try {
        const res = await request(url, { method: 'POST', headers, body: raw, dispatcher, headersTimeout: opts.timeoutMs ?? 10_000, bodyTimeout: opts.timeoutMs ?? 10_000 });
        await res.body.dump();
        return { delivery_id: d.delivery_id, url, status: res.statusCode, error: null, latency_us: Math.round((performance.now() - started) * 1000) };
      } catch (err) {
        return { delivery_id: d.delivery_id, url, status: null, error: (err as Error).message, latency_us: Math.round((performance.now() - started) * 1000) };
      }
    },
    close: () => dispatcher.close(),
  };
}
