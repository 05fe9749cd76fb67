/**
 * The serve benchmark's deliveries: bench/recorder's selection (bench/shared/deliveries.ts: the
 * generator, slim, unsigned, bodies of 1-8 KiB), sent to `/hooks/<source>` without their delivery-id headers.
 *
 * Why no delivery ids: the load cycles through a few hundred distinct deliveries, so with their
 * own ids each id would come back every half second at 1,000/s. The recorder would record them as
 * redeliveries, and serve's dispatcher, which keys its queue and the legacy calls by delivery id,
 * would hold two deliveries with one id inside the settle window. Without the header the recorder
 * gives each request its own UUIDv7, so every request is a distinct delivery for both servers.
 */
import type { GeneratedDelivery } from '../../fixtures/generator/deliveries.js';
import { bodyFigures, selectDeliveries, tally } from '../shared/deliveries.js';

/** Headers naming the delivery (recorder/sources.ts reads them in this order). */
const DELIVERY_ID_HEADERS = ['x-github-delivery', 'x-gitea-delivery', 'x-forgejo-delivery'];

export interface HookRequest {
  method: 'POST';
  path: string;
  headers: Record<string, string>;
  body: string;
}

export interface BenchDeliveries {
  deliveries: GeneratedDelivery[];
  requests: HookRequest[];
  bodies: { count: number; droppedOutside1to8KiB: number; minBytes: number; medianBytes: number; maxBytes: number; bySource: Record<string, number>; byEvent: Record<string, number> };
}

/** `count` deliveries from the generator (seed `seed`), as HTTP requests to the recorder or serve. */
export function benchDeliveries(count: number, seed: number): BenchDeliveries {
  const selected = selectDeliveries(count, seed);
  const { deliveries } = selected;
  const requests = deliveries.map((d): HookRequest => {
    const headers = { ...d.headers };
    for (const h of DELIVERY_ID_HEADERS) delete headers[h];
    return { method: 'POST', path: `/hooks/${d.source}`, headers, body: d.body };
  });
  return {
    deliveries,
    requests,
    bodies: {
      ...bodyFigures(selected),
      bySource: tally(deliveries, (d) => d.source),
      byEvent: tally(deliveries, (d) => (['issues', 'issue_comment', 'pull_request'].includes(d.event) ? `${d.event}.${d.action}` : 'other')),
    },
  };
}
