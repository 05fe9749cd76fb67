import { formatUs } from '../../core/clock.js';

/** One delivery as the engine sees it: the capture row with its payload parsed. */
export interface DeliveryInput {
  delivery_id: string;
  source: string;
  event: string | null;
  action: string | null;
  received_at_us: number;
  headers: Record<string, string>;
  /** The payload, parsed as at capture (JSON, or form-encoded `payload=`); null when there is none. */
  payload: unknown;
  repository: string | null;
}

/** The `delivery` variable of expressions. */
export function deliveryScope(d: DeliveryInput): Record<string, unknown> {
  return {
    id: d.delivery_id,
    source: d.source,
    event: d.event,
    action: d.action,
    received_at: formatUs(d.received_at_us),
    headers: d.headers,
    payload: d.payload ?? {},
    repository: d.repository,
  };
}
