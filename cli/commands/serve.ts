import { Command, Option } from 'commander';
import { pino } from 'pino';
import { MODES } from '../../replayer/flows/model.js';
import { resolveServeConfig } from '../../serve/config.js';
import { startServe } from '../../serve/server.js';
import { onShutdownSignal } from '../signals.js';

interface ServeFlags {
  config?: string;
  store?: string;
  host?: string;
  port?: string;
  flows?: string;
  mode?: (typeof MODES)[number];
  logLevel?: string;
}

export function serveCommand(): Command {
  return new Command('serve')
    .description('Live mode: record every delivery, forward it to the legacy handler, run the flows (off, dry-run or live, flipped at runtime), diff, and serve the API and dashboard.')
    .option('--config <file>', 'hookshadow.yaml: the recorder keys plus flows, cutover, fallback and serve (specs/modes.md)')
    .option('--store <dir>', 'capture store directory (default ./.hookshadow/store)')
    .option('--host <host>', 'address to listen on (default 127.0.0.1)')
    .option('--port <n>', 'port to listen on; 0 picks a free one (default 8080)')
    .option('--flows <dir>', 'flow directory (default: the fixture flows, for the demo)')
    .addOption(new Option('--mode <mode>', 'every flow\'s mode at first start (later flips are persisted in the store)').choices([...MODES]))
    .addOption(new Option('--log-level <level>', 'log level').choices(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']))
    .addHelpText(
      'after',
      `
With no config, serve runs the demo: the fixture flows in dry-run in front of the demo legacy bot and
forge stub, and prints the dashboard's address with a generated admin token. Give the token with
HOOKSHADOW_ADMIN_TOKEN (or serve.admin_token) to keep it across restarts.

Exit codes: 0 after a clean shutdown (SIGTERM/SIGINT: deliveries drained, queued flows settled,
everything flushed); 1 when serve could not start; 2 for usage and configuration errors.

Examples:
  hookshadow serve
  HOOKSHADOW_ADMIN_TOKEN=... hookshadow serve --config hookshadow.yaml`,
    )
    .action(async (flags: ServeFlags) => {
      const recorderFlags: Record<string, unknown> = {};
      if (flags.store) recorderFlags.store = flags.store;
      if (flags.host) recorderFlags.host = flags.host;
      if (flags.port !== undefined) recorderFlags.port = Number(flags.port);
      if (flags.logLevel) recorderFlags.log_level = flags.logLevel;
      const config = await resolveServeConfig({
        ...(flags.config ? { file: flags.config } : {}),
        env: process.env,
        flags: { ...recorderFlags, flows: { ...(flags.flows ? { dir: flags.flows } : {}), ...(flags.mode ? { mode: flags.mode } : {}) } },
      });
      const logger = pino({ level: config.recorder.log_level });
      const serve = await startServe(config, { logger });
      const token = config.serve.serve.admin_token;
      logger.info(
        { url: serve.url, store: config.recorder.store, flows: serve.context.flows.map((f) => f.name), modes: serve.context.modes.effective(), demo: config.demo },
        'serve listening',
      );
      const dashboard = config.generatedToken ? `${serve.url}/#token=${token}` : `${serve.url}/ (admin token from HOOKSHADOW_ADMIN_TOKEN or serve.admin_token)`;
      process.stderr.write(`\nhookshadow serve on ${serve.url}\n  webhooks:  POST ${serve.url}/hooks/<source>\n  dashboard: ${dashboard}\n${config.generatedToken ? '  (a generated admin token: set HOOKSHADOW_ADMIN_TOKEN to keep one)\n' : ''}\n`);
      onShutdownSignal(async () => {
        await serve.stop();
        logger.info('serve stopped; every acknowledged delivery is in the store and every settled one in a live segment');
      }, (msg) => logger.info(msg));
    });
}
