/** Command-line flags of the benchmarks: `--name value`, `--name=value`, and switches. */

/**
 * Every `--name value` / `--name=value` in argv; a switch (a name in `switches`) takes no value and
 * is 'true', or, named `no-x`, sets `x` to 'false'. `--help` / `-h` prints `help` and exits.
 */
export function parseFlags(argv: string[], help: string, switches: readonly string[]): Map<string, string> {
  const flags = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--help' || a === '-h') {
      console.log(help);
      process.exit(0);
    }
    if (!a.startsWith('--')) throw new Error(`unexpected argument ${a}\n${help}`);
    const [k, inline] = a.slice(2).split('=', 2) as [string, string | undefined];
    if (!switches.includes(k)) flags.set(k, inline ?? argv[++i] ?? '');
    else if (k.startsWith('no-')) flags.set(k.slice(3), 'false');
    else flags.set(k, 'true');
  }
  return flags;
}

/** The value after `--name` in argv, if any. */
export function flag(argv: string[], name: string): string | undefined {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : undefined;
}

/**
 * A non-negative number option: `--flag`, else the environment variable `envName`, else `dflt`
 * (an empty value counts as absent). Anything else is an error naming the flag.
 */
export function numberOption(flags: Map<string, string>, flag: string, envName: string, dflt: number): number {
  const raw = flags.get(flag) ?? process.env[envName];
  if (raw === undefined || raw === '') return dflt;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < 0) throw new Error(`--${flag} expects a non-negative number, got ${JSON.stringify(raw)}`);
  return n;
}
