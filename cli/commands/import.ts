import { Command, Option } from 'commander';
import cliProgress from 'cli-progress';
import { HsError } from '../../core/errors.js';
import { importNdjson } from '../../recorder/import.js';
import { DEFAULT_CONFIG, configFromEnv, loadConfigFile, resolveConfig, type ConfigLayer } from '../../recorder/config.js';

interface ImportFlags {
  store?: string;
  config?: string;
  skipInvalid?: boolean;
  format: 'text' | 'json';
}

export function importCommand(): Command {
  return new Command('import')
    .description('Load past deliveries, effects and exchanges from NDJSON files into the store (format: specs/capture-format.md § Import).')
    .argument('<files...>', 'NDJSON files, one delivery / effect / exchange per line')
    .option('--store <dir>', `capture store directory (default ${DEFAULT_CONFIG.store})`)
    .option('--config <file>', 'recorder config file, for its redaction and attribution settings')
    .option('--skip-invalid', 'import the valid lines even when some are invalid (they are still reported)')
    .addOption(new Option('--format <format>', 'output format').choices(['text', 'json']).default('text'))
    .action(async (files: string[], flags: ImportFlags) => {
      const layers: ConfigLayer[] = [];
      if (flags.config) layers.push(await loadConfigFile(flags.config));
      layers.push(configFromEnv(process.env));
      if (flags.store) layers.push({ store: flags.store });
      const config = resolveConfig(layers);
      const bar =
        process.stderr.isTTY && flags.format === 'text'
          ? new cliProgress.SingleBar({ format: 'importing {value} lines | {duration_formatted}', stream: process.stderr }, cliProgress.Presets.shades_classic)
          : null;
      bar?.start(0, 0);
      const result = await importNdjson({
        store: config.store,
        files,
        skipInvalid: flags.skipInvalid ?? false,
        redaction: config.redaction,
        attributionWindowMs: config.attribution.window_ms,
        wal: config.wal,
        onProgress: (n) => bar?.update(n),
      }).finally(() => bar?.stop());

      if (flags.format === 'json') {
        process.stdout.write(JSON.stringify({ store: config.store, ...result }) + '\n');
      } else {
        for (const p of result.invalid) process.stderr.write(`${p.file}:${p.line}: HS_ERR_IMPORT_INVALID: ${p.message}\n`);
        if (result.written) {
          process.stdout.write(`imported ${result.deliveries} deliveries, ${result.effects} effects, ${result.exchanges} exchanges into ${config.store}\n`);
        }
      }
      if (result.invalid.length > 0 && !result.written) {
        throw new HsError('HS_ERR_IMPORT_INVALID', `${result.invalid.length} invalid line(s); nothing was imported. Fix them, or pass --skip-invalid to import the rest.`);
      }
      if (result.invalid.length > 0) process.exitCode = 1;
    });
}
