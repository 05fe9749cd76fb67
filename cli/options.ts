/** commander's argParser for a repeatable option: `--ops a --ops b` gives `['a', 'b']` (undefined when never given and no default). */
export const collect = (value: string, previous: string[] = []): string[] => [...previous, value];
