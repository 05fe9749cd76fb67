/** Time as the store records it: microseconds since the Unix epoch, UTC. */
export interface Clock {
  nowUs(): number;
}

/** Wall-clock time with sub-millisecond precision (performance.timeOrigin + performance.now()). */
export const systemClock: Clock = {
  nowUs: () => Math.round((performance.timeOrigin + performance.now()) * 1000),
};

/** ISO-8601 with microseconds and a Z, e.g. 2026-11-21T19:31:56.123456Z. */
export function formatUs(us: number): string {
  const ms = Math.floor(us / 1000);
  const micro = String(us - ms * 1000).padStart(3, '0');
  return new Date(ms).toISOString().replace('Z', `${micro}Z`);
}

/** Parses an ISO-8601 timestamp into microseconds; null when it is not one. */
export function parseIsoUs(text: string): number | null {
  // RFC 3339 allows a space or lower-case t/z; Date.parse wants the canonical form.
  const m = /^(\d{4}-\d{2}-\d{2})[Tt ](\d{2}:\d{2}:\d{2})(?:\.(\d{1,6})\d*)?([Zz]|[+-]\d{2}:?\d{2})$/.exec(text);
  if (!m) return null;
  const zone = m[4]!.toUpperCase();
  const ms = Date.parse(`${m[1]}T${m[2]}${zone.length === 5 ? `${zone.slice(0, 3)}:${zone.slice(3)}` : zone}`);
  if (Number.isNaN(ms)) return null;
  const frac = Number((m[3] ?? '').padEnd(6, '0'));
  return ms * 1000 + frac;
}
