import { HsError } from '../core/errors.js';

/** commander's argParser for a repeatable option: `--ops a --ops b` gives `['a', 'b']` (undefined when never given and no default). */
export const collect = (value: string, previous: string[] = []): string[] => [...previous, value];

/** `--param NAME=VALUE` pairs for `sql` and `notebook`: bound as `$NAME`, never spliced into SQL; the last one of a name wins. */
export function queryParams(pairs: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    if (eq < 1 || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(pair.slice(0, eq))) throw new HsError('HS_ERR_USAGE', `--param must be NAME=VALUE with NAME a plain identifier, got ${JSON.stringify(pair)}.`);
    out[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return out;
}
