import type { FastifyReply } from 'fastify';

/**
 * Server-Sent Events for the dashboard and scripts: `delivery`, `flow-run`,
 * `divergence`, `mode-change`, `daily-summary`. Every event gets an increasing id and
 * the last `capacity` are kept, so a client reconnecting with `Last-Event-ID` gets
 * what it missed (or is told, with a `reset` event, that it missed too much).
 */

export const EVENT_TYPES = ['delivery', 'flow-run', 'divergence', 'mode-change', 'daily-summary', 'queue-full'] as const;
export type EventType = (typeof EVENT_TYPES)[number];

interface Stored {
  id: number;
  type: EventType;
  data: string;
}

export interface EventHub {
  publish(type: EventType, data: unknown): void;
  /** Streams events to `reply` from after `lastId` until the client goes away or the hub closes. */
  subscribe(reply: FastifyReply, lastId: number | null): void;
  clients(): number;
  close(): void;
}

const frame = (e: Stored) => `id: ${e.id}\nevent: ${e.type}\ndata: ${e.data}\n\n`;

export function createEventHub(opts: { capacity?: number; heartbeatMs?: number } = {}): EventHub {
  const capacity = opts.capacity ?? 2_000;
  const ring: Stored[] = [];
  let nextId = 1;
  const subscribers = new Set<FastifyReply>();
  const heartbeat = setInterval(() => {
    // A comment line keeps proxies from closing an idle stream.
    for (const r of subscribers) r.raw.write(': keep-alive\n\n');
  }, opts.heartbeatMs ?? 15_000);
  heartbeat.unref();
  return {
    publish(type, data) {
      const e: Stored = { id: nextId++, type, data: JSON.stringify(data) };
      ring.push(e);
      if (ring.length > capacity) ring.shift();
      const text = frame(e);
      for (const r of subscribers) r.raw.write(text);
    },
    subscribe(reply, lastId) {
      reply.raw.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', connection: 'keep-alive', 'x-accel-buffering': 'no' });
      reply.raw.write('retry: 2000\n\n');
      if (lastId !== null) {
        const oldest = ring[0]?.id ?? nextId;
        if (lastId < oldest - 1) reply.raw.write(`event: reset\ndata: ${JSON.stringify({ missed_from: lastId + 1, oldest })}\n\n`);
        for (const e of ring) if (e.id > lastId) reply.raw.write(frame(e));
      }
      subscribers.add(reply);
      reply.raw.on('close', () => subscribers.delete(reply));
    },
    clients: () => subscribers.size,
    close() {
      clearInterval(heartbeat);
      for (const r of subscribers) r.raw.end();
      subscribers.clear();
    },
  };
}
