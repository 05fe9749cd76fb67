import type { FastifyInstance } from 'fastify';

/** `GET /healthz` and `GET /metrics` (Prometheus text format). */
export async function opsRoutes(app: FastifyInstance): Promise<void> {
  app.get(
    '/healthz',
    {
      schema: {
        response: {
          200: {
            type: 'object',
            properties: {
              status: { type: 'string' },
              mode: { type: 'string' },
              instance: { type: 'string' },
              wal_bytes: { type: 'integer' },
              segments_pending: { type: 'integer' },
            },
          },
        },
      },
    },
    async () => {
      const ctx = app.recorder;
      return {
        status: 'ok',
        mode: ctx.mode,
        instance: ctx.capture.instance,
        wal_bytes: ctx.capture.walBytes(),
        segments_pending: ctx.capture.pendingSegments(),
      };
    },
  );

  app.get('/metrics', async (_request, reply) => {
    const { metrics, capture } = app.recorder;
    metrics.walBytes.set(capture.walBytes());
    metrics.walSegments.set(capture.pendingSegments());
    void reply.type(metrics.registry.contentType);
    return metrics.registry.metrics();
  });
}
