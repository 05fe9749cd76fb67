/** Number formatting and markdown tables for the benchmarks' printed reports. */

/** `x` rounded to `digits` decimals, or null when it is not a finite number (JSON has no NaN). */
export const round = (x: number, digits = 2) => (Number.isFinite(x) ? Number(x.toFixed(digits)) : null);

/** `x` with thousands separators and exactly `digits` decimals, or null (printed as —) when there is no figure. */
export const num = (x: number | null | undefined, digits = 0) =>
  x === null || x === undefined || !Number.isFinite(x) ? null : x.toLocaleString('en', { minimumFractionDigits: digits, maximumFractionDigits: digits });

/** A markdown table: the first column left-aligned, the others right-aligned; null cells print as —. */
export function mdTable(header: string[], rows: (string | number | null)[][]): string {
  const cells = [header, ...rows.map((r) => r.map((c) => (c === null ? '—' : String(c))))];
  const widths = header.map((_, i) => Math.max(3, ...cells.map((r) => r[i]!.length)));
  const line = (r: string[]) => `| ${r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(' | ')} |`;
  const rule = `|${widths.map((w, i) => (i === 0 ? '-'.repeat(w + 2) : `${'-'.repeat(w + 1)}:`)).join('|')}|`;
  return [line(cells[0]!), rule, ...cells.slice(1).map(line)].join('\n');
}

/**
 * The fields an `npm run bench:<benchmark>` JSON report starts with: which benchmark, when it started,
 * how long it took (from `t0`, a performance.now() reading) and the command that runs it again.
 */
export function reportHeader(benchmark: string, startedAt: string, t0: number) {
  const args = process.argv.slice(2);
  return {
    benchmark,
    startedAt,
    totalSeconds: round((performance.now() - t0) / 1000, 1),
    command: `npm run bench:${benchmark}${args.length > 0 ? ` -- ${args.join(' ')}` : ''}`,
  };
}
