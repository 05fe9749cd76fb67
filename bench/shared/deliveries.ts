/** The deliveries the HTTP benchmarks (bench/recorder, bench/serve) send: one selection, so their figures compare. */
import { generateDeliveries, type GeneratedDelivery } from '../../fixtures/generator/deliveries.js';

/** The selected deliveries, and their body sizes. */
export interface SelectedDeliveries {
  deliveries: GeneratedDelivery[];
  /** Generated deliveries skipped because their body was outside 1-8 KiB. */
  droppedOutside1to8KiB: number;
  /** Body sizes in bytes, ascending. */
  sizes: number[];
}

/**
 * `count` of the generator's slim deliveries (seed `seed`) with realistic bodies: those of 1-8 KiB,
 * in the generator's order. Fewer when 4 × `count` generated ones do not hold that many.
 */
export function selectDeliveries(count: number, seed: number): SelectedDeliveries {
  const deliveries: GeneratedDelivery[] = [];
  let dropped = 0;
  for (const d of generateDeliveries({ count: count * 4, seed, slim: true })) {
    const size = Buffer.byteLength(d.body);
    if (size < 1024 || size > 8192) dropped += 1;
    else deliveries.push(d);
    if (deliveries.length === count) break;
  }
  const sizes = deliveries.map((d) => Buffer.byteLength(d.body)).sort((a, b) => a - b);
  return { deliveries, droppedOutside1to8KiB: dropped, sizes };
}

/** How many deliveries were selected, how many skipped, and their body sizes (bytes): what both benchmarks report first. */
export function bodyFigures(selected: SelectedDeliveries) {
  const { sizes } = selected;
  return {
    count: selected.deliveries.length,
    droppedOutside1to8KiB: selected.droppedOutside1to8KiB,
    minBytes: sizes[0]!,
    medianBytes: sizes[Math.floor(sizes.length / 2)]!,
    maxBytes: sizes[sizes.length - 1]!,
  };
}

/** How many deliveries fall under each `key`. */
export function tally(deliveries: readonly GeneratedDelivery[], key: (d: GeneratedDelivery) => string): Record<string, number> {
  return deliveries.reduce<Record<string, number>>((acc, d) => ((acc[key(d)] = (acc[key(d)] ?? 0) + 1), acc), {});
}
