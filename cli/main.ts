#!/usr/bin/env node
import { Command, CommanderError } from 'commander';
import { isHsError } from '../core/errors.js';
import { VERSION } from '../core/version.js';
import { analyzeCommand } from './commands/analyze.js';
import { checkCommand } from './commands/check.js';
import { demoCommand } from './commands/demo.js';
import { flowsCommand } from './commands/flows.js';
import { importCommand } from './commands/import.js';
import { notebookCommand } from './commands/notebook.js';
import { recordCommand } from './commands/record.js';
import { replayCommand } from './commands/replay.js';
import { serveCommand } from './commands/serve.js';
import { sqlCommand } from './commands/sql.js';

const program = new Command('hookshadow')
  .description('Record webhook deliveries and a legacy handler\'s side effects, replay flows over them, and diff the two.')
  .version(VERSION)
  .showHelpAfterError()
  .exitOverride();

program.addCommand(recordCommand());
program.addCommand(importCommand());
program.addCommand(replayCommand());
program.addCommand(analyzeCommand());
program.addCommand(checkCommand());
program.addCommand(serveCommand());
program.addCommand(sqlCommand());
program.addCommand(notebookCommand());
program.addCommand(flowsCommand());
program.addCommand(demoCommand());
// addCommand does not copy these settings to subcommands; usage errors must exit 2 everywhere.
const configure = (command: Command): void => {
  command.exitOverride().showHelpAfterError();
  command.commands.forEach(configure);
};
program.commands.forEach(configure);

// The one top-level catch: user errors print their code and message; anything else is a bug.
try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    // --help and --version exit 0; usage errors (already printed by commander) exit 2.
    process.exit(err.exitCode === 0 ? 0 : 2);
  }
  if (isHsError(err)) {
    process.stderr.write(`hookshadow: ${err.code}: ${err.message}\n`);
    process.exit(err.exitCode);
  }
  process.stderr.write(`hookshadow: internal error (this is a bug; please report it with this output):\n${(err as Error).stack ?? String(err)}\n`);
  process.exit(70);
}
