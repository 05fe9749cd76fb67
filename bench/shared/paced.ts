/**
 * An evenly paced (open-loop) load generator for the recorder benchmark's fixed-rate runs.
 *
 * autocannon's overallRate is a per-second budget: every connection sends its share back to
 * back from the start of each second, then waits for the next second, so at 1000/s over 32
 * connections the server still sees 32 requests at once, in a burst each second. This sends
 * request i at t0 + i / rate instead (in 1 ms timer ticks), over an undici Pool of the same
 * number of keep-alive connections. A request's latency runs from when it is handed to the pool
 * to the end of its response body, so waiting for a free connection counts; how late the timer
 * handed it over against its schedule is reported separately (`maxLagMs`, `p99LagMs`).
 */
import { Pool } from 'undici';

export interface PacedRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
  body: string;
}

export interface PacedOptions {
  url: string;
  requests: PacedRequest[];
  connections: number;
  seconds: number;
  rate: number;
  /** Requests handed over in the first `warmupMs` count for status codes but not for latency. */
  warmupMs: number;
  /** Each measured 2xx response: latency (ms) and when it ended (ms since the schedule's start). */
  onSample: (latencyMs: number, endMs: number) => void;
}

export interface PacedResult {
  seconds: number;
  sent: number;
  responses: number;
  statusCodes: Record<string, number>;
  errors: number;
  maxLagMs: number;
  p99LagMs: number;
}

export async function runPaced(o: PacedOptions): Promise<PacedResult> {
  const pool = new Pool(new URL(o.url).origin, { connections: o.connections, pipelining: 1, keepAliveTimeout: 60_000 });
  const send = async (i: number) => {
    const r = o.requests[i % o.requests.length]!;
    const res = await pool.request({ method: r.method as 'POST', path: r.path, headers: r.headers, body: r.body });
    await res.body.dump();
    return res.statusCode;
  };
  // Open the pool's connections before the schedule starts (two rounds at full width, not counted).
  for (let round = 0; round < 2; round++) await Promise.all(Array.from({ length: o.connections }, (_, i) => send(i).catch(() => 0)));

  const total = Math.max(1, Math.round(o.rate * o.seconds));
  const interval = 1000 / o.rate;
  const lags = new Float64Array(total);
  const statusCodes: Record<string, number> = {};
  let errors = 0;
  let responses = 0;
  let next = 0;
  const t0 = performance.now();
  await new Promise<void>((resolve) => {
    const finishOne = () => {
      responses += 1;
      if (responses === total) resolve();
    };
    const fire = (i: number) => {
      const sentAt = performance.now();
      lags[i] = sentAt - (t0 + i * interval);
      const r = o.requests[i % o.requests.length]!;
      pool
        .request({ method: r.method as 'POST', path: r.path, headers: r.headers, body: r.body })
        .then(async (res) => {
          await res.body.dump();
          const end = performance.now();
          statusCodes[res.statusCode] = (statusCodes[res.statusCode] ?? 0) + 1;
          if (res.statusCode >= 200 && res.statusCode < 300 && sentAt - t0 >= o.warmupMs) o.onSample(end - sentAt, end - t0);
        })
        .catch(() => {
          errors += 1;
        })
        .finally(finishOne);
    };
    const tick = () => {
      const now = performance.now();
      while (next < total && t0 + next * interval <= now) fire(next++);
      if (next < total) setTimeout(tick, Math.max(0, t0 + next * interval - performance.now()));
    };
    tick();
  });
  const seconds = (performance.now() - t0) / 1000;
  await pool.close();
  const sortedLags = lags.sort();
  return {
    seconds,
    sent: total,
    responses,
    statusCodes,
    errors,
    maxLagMs: sortedLags[total - 1]!,
    p99LagMs: sortedLags[Math.min(total - 1, Math.ceil(0.99 * total) - 1)]!,
  };
}
