/**
 * Which (flow, dedup key) pairs have already run: a flow with `dedup:` runs once per
 * key within its window, so a redelivered webhook does not act twice.
 */
export interface DedupMemory {
  /** True the first time `key` is seen for `flow` within `windowUs` before `atUs`; false for a duplicate. Records the claim either way. */
  claim(flow: string, key: string, atUs: number, windowUs: number): boolean;
}

/** In memory, for one replay or one serve process; entries older than every window are swept as time moves on. */
export function createDedupMemory(): DedupMemory {
  const seen = new Map<string, { atUs: number; windowUs: number }>();
  let sweptAtUs = 0;
  let widestUs = 0;
  return {
    claim(flow, key, atUs, windowUs) {
      widestUs = Math.max(widestUs, windowUs);
      if (atUs - sweptAtUs > widestUs) {
        for (const [k, v] of seen) if (atUs - v.atUs > v.windowUs) seen.delete(k);
        sweptAtUs = atUs;
      }
      const id = `${flow}\0${key}`;
      const prior = seen.get(id);
      // A duplicate does not extend the window: it is measured from the run that acted.
      if (prior && atUs - prior.atUs <= prior.windowUs) return false;
      seen.set(id, { atUs, windowUs });
      return true;
    },
  };
}
