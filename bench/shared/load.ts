/**
 * HTTP load for the benchmarks that put deliveries through a server (bench/recorder, bench/serve):
 * autocannon, unthrottled or at autocannon's overallRate, and the evenly paced generator
 * (bench/shared/paced.ts), each feeding every measured response's latency into LatencySamples.
 * Each benchmark turns the runs into its own figures; what is common is how a run is driven and
 * which responses count.
 */
import type { EventEmitter } from 'node:events';
import { createRequire } from 'node:module';
import { runPaced, type PacedRequest, type PacedResult } from './paced.js';

/** One request of the fixed set a load cycles through. */
export type LoadRequest = PacedRequest;

// ---------------------------------------------------------------------------------------------
// Latencies.

/** The value at percentile `p` (0-100) of ascending `sorted` (nearest rank); NaN when empty. */
export function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

/** p50, p90, p99, p99.9 and max of ascending latencies (ms). */
export function latencyPercentiles(sorted: Float64Array) {
  return { p50: percentile(sorted, 50), p90: percentile(sorted, 90), p99: percentile(sorted, 99), p999: percentile(sorted, 99.9), max: sorted.length ? sorted[sorted.length - 1]! : NaN };
}

/** Latencies (ms) of the measured 2xx responses, and when each ended (ms since the run started). */
export class LatencySamples {
  lat = new Float64Array(1 << 16);
  ends = new Float64Array(1 << 16);
  n = 0;

  add(latencyMs: number, endMs: number): void {
    if (this.n === this.lat.length) {
      const grow = (a: Float64Array) => {
        const b = new Float64Array(a.length * 2);
        b.set(a);
        return b;
      };
      this.lat = grow(this.lat);
      this.ends = grow(this.ends);
    }
    this.ends[this.n] = endMs;
    this.lat[this.n++] = latencyMs;
  }

  /** The latencies in the order they were added (a copy). */
  latencies(): Float64Array {
    return this.lat.slice(0, this.n);
  }

  /** The latencies, ascending (a copy). */
  sorted(): Float64Array {
    return this.latencies().sort();
  }

  /**
   * Responses that ended between 1 s and the last whole second of a `seconds`-long run, per second:
   * the start-up second and the tail of the last one are left out. NaN for runs under 2 s.
   */
  achievedPerSec(seconds: number): number {
    const to = Math.floor(seconds);
    if (to < 2) return NaN;
    let inWindow = 0;
    for (let i = 0; i < this.n; i++) if (this.ends[i]! >= 1000 && this.ends[i]! < to * 1000) inWindow += 1;
    return inWindow / (to - 1);
  }
}

const is2xx = (statusCode: number) => statusCode >= 200 && statusCode < 300;

// ---------------------------------------------------------------------------------------------
// autocannon (CommonJS, no bundled types): the small part of its API used here.

/** autocannon's own result; its latency histogram keeps whole milliseconds. */
export interface AutocannonResult {
  duration: number;
  errors: number;
  timeouts: number;
  non2xx: number;
  resets: number;
  statusCodeStats: Record<string, { count: number }>;
  latency: { p50: number; p99: number; average: number; max: number };
  requests: { average: number; total: number; sent: number };
}
type Autocannon = (opts: Record<string, unknown>, cb: (err: Error | null, result: AutocannonResult) => void) => EventEmitter;
const autocannon = createRequire(import.meta.url)('autocannon') as Autocannon;

/** What an autocannon run gives besides its latency samples. */
export interface AutocannonFigures {
  result: AutocannonResult;
  /** Wall seconds from start to autocannon's callback. */
  seconds: number;
  responses: number;
  statusCodes: Record<string, number>;
  /** 2xx responses, each connection's first included. */
  ok: number;
  /** 2xx responses per second from when every connection had had its first answer to the end of the run. */
  steadyOkPerSec: number;
}

/**
 * One autocannon run over the fixed request set, unthrottled (`rate` null) or at autocannon's
 * overallRate: each connection gets rate/connections requests per second, sent back to back from
 * the start of each second (a budget, not pacing). Latencies are every 2xx response's own
 * (sub-millisecond) duration, except each connection's first (see below).
 */
export function autocannonRun(
  o: { url: string; requests: LoadRequest[]; connections: number; seconds: number; rate: number | null },
  samples: LatencySamples,
): Promise<AutocannonFigures> {
  return new Promise((resolve, reject) => {
    const statusCodes: Record<string, number> = {};
    let responses = 0;
    let ok = 0;
    const started = performance.now();
    // autocannon builds every connection's request buffers synchronously after the first connections
    // have already sent; their first responses wait for that (~0.3 s with 32 connections × 512 requests).
    // So each connection's first response counts for throughput but not for latency.
    const seenClients = new Set<unknown>();
    // Throughput counts from when every connection has had its first answer to the end of the run.
    let steadyFrom = started;
    let okAtSteady = 0;
    const instance = autocannon(
      { url: o.url, connections: o.connections, duration: o.seconds, requests: o.requests, timeout: 30, ...(o.rate !== null ? { overallRate: o.rate } : {}) },
      (err, result) => {
        if (err) return reject(err);
        const seconds = (performance.now() - started) / 1000;
        resolve({ result, seconds, responses, statusCodes, ok, steadyOkPerSec: (ok - okAtSteady) / ((performance.now() - steadyFrom) / 1000) });
      },
    );
    instance.on('response', (client: unknown, statusCode: number, _bytes: number, responseTime: number) => {
      responses += 1;
      statusCodes[statusCode] = (statusCodes[statusCode] ?? 0) + 1;
      if (!is2xx(statusCode)) return;
      ok += 1;
      if (!seenClients.has(client)) {
        seenClients.add(client);
        if (seenClients.size === o.connections) {
          steadyFrom = performance.now();
          okAtSteady = ok;
        }
        return;
      }
      samples.add(responseTime, performance.now() - started);
    });
  });
}

// ---------------------------------------------------------------------------------------------
// The paced generator.

/** Requests handed over in the first 0.5 s of a paced run count for status codes, not for latency. */
const PACED_WARMUP_MS = 500;

/**
 * The request set at an evenly paced overall rate (bench/shared/paced.ts): request i leaves at
 * i / rate seconds over a pool of `connections` keep-alive connections, and its latency runs from
 * when it was handed to the pool (so waiting for a free connection counts). runPaced's own figures,
 * and the 2xx responses among them.
 */
export async function pacedRun(
  o: { url: string; requests: LoadRequest[]; connections: number; seconds: number; rate: number },
  samples: LatencySamples,
): Promise<{ run: PacedResult; ok: number }> {
  const run = await runPaced({ ...o, warmupMs: PACED_WARMUP_MS, onSample: (latencyMs, endMs) => samples.add(latencyMs, endMs) });
  const ok = Object.entries(run.statusCodes).reduce((s, [code, n]) => (is2xx(Number(code)) ? s + n : s), 0);
  return { run, ok };
}
