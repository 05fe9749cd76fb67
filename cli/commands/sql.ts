import { appendFile, mkdir, readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline/promises';
import { Command, Option } from 'commander';
import { HsError, isHsError } from '../../core/errors.js';
import { DEFAULT_CONFIG } from '../../recorder/config.js';
import { formatResult, OUTPUT_FORMATS, runQuery, type OutputFormat } from '../../analyzer/query.js';
import { analysisViews, openAnalysisReader, pickReplay, VIEW_NAMES } from '../../analyzer/views.js';
import { collect, queryParams } from '../options.js';

interface SqlFlags {
  store: string;
  replay?: string;
  format: OutputFormat;
  printViews?: boolean;
  param: string[];
}

const historyFile = () => process.env.HOOKSHADOW_SQL_HISTORY ?? join(homedir(), '.hookshadow', 'sql_history');

export function sqlCommand(): Command {
  return new Command('sql')
    .description(`Query the captures and a replay with DuckDB SQL, over the views ${VIEW_NAMES.join(', ')}. Without QUERY: an interactive prompt with history.`)
    .argument('[query]', 'one SQL query; omit it for the interactive prompt')
    .option('--store <dir>', 'capture store directory', DEFAULT_CONFIG.store)
    .option('--replay <id>', 'whose flow_runs, node_runs, intents and divergences to show: an id or "latest" (default: latest, if any)')
    .addOption(new Option('--format <format>', 'output format; json is an array of row objects').choices(OUTPUT_FORMATS).default('table'))
    .option('--param <name=value>', 'a value bound as $name in the query (repeatable)', collect, [])
    .option('--print-views', 'print the CREATE VIEW statements, to use the same views in the DuckDB CLI or any client, and exit')
    .addHelpText(
      'after',
      `
Views: deliveries, effects, exchanges (the store); replay_deliveries, flow_runs, node_runs, intents (the replay);
divergences (after hookshadow analyze); daily_summary, daily_flow_summary, daily_event_summary.
specs/divergence.md describes each.

Examples:
  hookshadow sql "SELECT class, count(*) FROM divergences GROUP BY ALL"
  hookshadow sql --format json "SELECT * FROM daily_summary"
  hookshadow sql --param id=3f2a... "SELECT * FROM effects WHERE delivery_id = \\$id"
  hookshadow sql --print-views > views.sql && duckdb -init views.sql`,
    )
    .action(async (query: string | undefined, flags: SqlFlags) => {
      const params = queryParams(flags.param);
      if (flags.printViews) {
        const id = await pickReplay(flags.store, flags.replay);
        const views = await analysisViews(flags.store, id);
        process.stdout.write(`-- hookshadow views over ${flags.store}${id ? `, replay ${id}` : ' (no replay)'}\n${views.map((v) => `${v.sql};`).join('\n\n')}\n`);
        return;
      }
      const reader = await openAnalysisReader(flags.store, flags.replay);
      try {
        if (query !== undefined) {
          process.stdout.write(formatResult(await runQuery(reader, query, params), flags.format));
          return;
        }
        await repl(async (sql) => process.stdout.write(formatResult(await runQuery(reader, sql, params), flags.format)), reader.replayId);
      } finally {
        reader.close();
      }
    });
}

/** The prompt: statements end with `;`, history persists across sessions, errors print and the prompt goes on. */
async function repl(run: (sql: string) => Promise<unknown>, replayId: string | null): Promise<void> {
  const file = historyFile();
  const history = (await readFile(file, 'utf8').catch(() => ''))
    .split('\n')
    .filter(Boolean)
    .reverse()
    .slice(0, 1000);
  const rl = createInterface({ input: process.stdin, output: process.stdout, history, historySize: 1000, terminal: process.stdin.isTTY });
  process.stdout.write(`hookshadow sql${replayId ? ` (replay ${replayId})` : ''}: end statements with ";", .views lists the views, .quit or Ctrl-D leaves.\n`);
  let buffer = '';
  rl.setPrompt('sql> ');
  rl.prompt();
  for await (const line of rl) {
    const trimmed = line.trim();
    if (!buffer && (trimmed === '.quit' || trimmed === '.exit')) break;
    if (!buffer && trimmed === '.views') {
      process.stdout.write(VIEW_NAMES.join('\n') + '\n');
    } else if (trimmed) {
      buffer += (buffer ? '\n' : '') + line;
      if (trimmed.endsWith(';')) {
        const sql = buffer;
        buffer = '';
        await mkdir(dirname(file), { recursive: true }).catch(() => {});
        await appendFile(file, sql.replace(/\n/g, ' ') + '\n').catch(() => {});
        try {
          await run(sql);
        } catch (err) {
          if (!isHsError(err)) throw err;
          process.stdout.write(`${err.code}: ${err.message}\n`);
        }
      }
    }
    rl.setPrompt(buffer ? '...> ' : 'sql> ');
    rl.prompt();
  }
  rl.close();
}
