import { Command, Option } from 'commander';
import { pino } from 'pino';
import { configFromEnv, loadConfigFile, parsePairs, resolveConfig, type ConfigLayer } from '../../recorder/config.js';
import { startRecorder } from '../../recorder/server.js';
import { onShutdownSignal } from '../signals.js';
import { collect } from '../options.js';


interface RecordFlags {
  config?: string;
  store?: string;
  host?: string;
  port?: string;
  instance?: string;
  legacy?: string;
  upstream?: string[];
  secret?: string[];
  signaturePolicy?: string;
  logLevel?: string;
}

/** Builds the config layer the flags give (only flags actually passed override the file). */
export function flagsLayer(flags: RecordFlags): ConfigLayer {
  const layer: ConfigLayer = {};
  if (flags.store) layer.store = flags.store;
  if (flags.host) layer.host = flags.host;
  if (flags.port !== undefined) layer.port = Number(flags.port);
  if (flags.instance) layer.instance = flags.instance;
  if (flags.legacy) layer.legacy = { url: flags.legacy };
  if (flags.upstream) {
    // An upstream has one base URL: the last one given wins.
    layer.upstreams = Object.fromEntries(Object.entries(parsePairs(flags.upstream, '--upstream')).map(([name, urls]) => [name, urls.at(-1)]));
  }
  // Several secrets for one source are all accepted (rotation).
  if (flags.secret) layer.secrets = parsePairs(flags.secret, '--secret');
  if (flags.signaturePolicy) layer.signature_policy = flags.signaturePolicy;
  if (flags.logLevel) layer.log_level = flags.logLevel;
  return layer;
}

export function recordCommand(): Command {
  return new Command('record')
    .description('Run the recorder: capture webhook deliveries (passive, or tee in front of --legacy) and the legacy handler\'s API calls through /egress/:upstream.')
    .option('--config <file>', 'YAML config file (same keys as specs/capture-format.md § Recorder config)')
    .option('--store <dir>', 'capture store directory (default ./.hookshadow/store)')
    .option('--host <host>', 'address to listen on (default 127.0.0.1)')
    .option('--port <n>', 'port to listen on; 0 picks a free one (default 8080)')
    .option('--instance <id>', 'recorder instance id, unique per recorder sharing a store (default: host name)')
    .option('--legacy <url>', 'tee mode: forward every delivery to this legacy handler URL and answer with its response')
    .option('--upstream <name=url>', 'an API the legacy handler calls through /egress/<name>/ (repeatable)', collect)
    .option('--secret <source=value>', 'webhook secret for a source (repeatable; also HOOKSHADOW_SECRET_<SOURCE>)', collect)
    .addOption(new Option('--signature-policy <policy>', 'what to do with a bad signature').choices(['reject', 'flag']))
    .addOption(new Option('--log-level <level>', 'log level').choices(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']))
    .action(async (flags: RecordFlags) => {
      const layers: ConfigLayer[] = [];
      if (flags.config) layers.push(await loadConfigFile(flags.config));
      layers.push(configFromEnv(process.env), flagsLayer(flags));
      const config = resolveConfig(layers, flags.config ? `configuration (${flags.config} and flags)` : 'configuration');
      const logger = pino({ level: config.log_level });
      const recorder = await startRecorder(config, { logger });
      logger.info(
        { url: recorder.url, mode: recorder.app.recorder.mode, store: config.store, instance: config.instance, upstreams: Object.keys(config.upstreams) },
        'recorder listening',
      );
      onShutdownSignal(async () => {
        await recorder.stop();
        logger.info('recorder stopped; every acknowledged record is in the store');
      }, (msg) => logger.info(msg));
    });
}
