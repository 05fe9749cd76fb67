import { writeFile } from 'node:fs/promises';
import { extname } from 'node:path';
import { Command, Option } from 'commander';
import { HsError } from '../../core/errors.js';
import { renderNotebookHtml, renderNotebookMarkdown, resolveNotebookFile, runNotebook, type NotebookResult } from '../../analyzer/notebook.js';
import { DEFAULT_CONFIG } from '../../recorder/config.js';
import { collect, queryParams } from '../options.js';

type Format = 'markdown' | 'html' | 'json';

interface NotebookFlags {
  store: string;
  replay?: string;
  param: string[];
  out?: string;
  format?: Format;
}

const BLOCKS_HELP = `
Notebook format (notebooks/README.md has the details):
  \`\`\`sql [name=NAME] [rows=N]   runs against the analysis views (deliveries, effects,
                                intents, divergences, daily_summary, ...); the report
                                shows the last statement's rows (first 50, or N; 0 hides
                                the table). Blocks share one connection: TEMP tables and
                                macros made in one block are there in the next.
  \`\`\`vega-lite [data=NAME]      a Vega-Lite spec (JSON or YAML) drawn as SVG over the rows
                                of the sql block NAME, or of the nearest sql block above.
  \`\`\`params                     YAML: each parameter's default (empty for NULL). Queries
                                use them as $name; --param name=value overrides. Values
                                are bound as text, never spliced into SQL: cast in SQL
                                ($min_runs::INTEGER).
  Other blocks and all prose are kept as written.

Output: Markdown on stdout; --out FILE.html (one self-contained page: inline CSS and
SVG, no script, no external URL) or --out FILE.md.

Shipped notebooks can be named without a path: divergence-triage, daily-trend,
cutover-readiness.

Examples:
  hookshadow notebook daily-trend --store ./store
  hookshadow notebook divergence-triage --param delivery=72d1e0a4-... --out triage.html
  hookshadow notebook cutover-readiness --param min_days=14 --out readiness.md`;

/** The output format: --format when given, else --out's extension, else Markdown. */
function formatFor(flags: NotebookFlags): Format {
  if (flags.format) return flags.format;
  if (!flags.out) return 'markdown';
  const ext = extname(flags.out).toLowerCase();
  if (ext === '.html' || ext === '.htm') return 'html';
  if (ext === '.md' || ext === '.markdown') return 'markdown';
  if (ext === '.json') return 'json';
  throw new HsError('HS_ERR_USAGE', `--out ${flags.out}: name a .html, .md or .json file, or say which with --format.`);
}

function render(result: NotebookResult, format: Format): string {
  if (format === 'html') return renderNotebookHtml(result);
  if (format === 'json') return JSON.stringify(result) + '\n';
  return renderNotebookMarkdown(result);
}

/** `hookshadow notebook FILE.md`: run a notebook's queries and charts into a report. */
export function notebookCommand(): Command {
  return new Command('notebook')
    .description('Run an SQL notebook (Markdown with sql and vega-lite blocks) over the store and a replay, and write the report: prose, result tables, charts.')
    .argument('<file>', 'the notebook: a Markdown file, or the name of a shipped one')
    .option('--store <dir>', 'capture store directory', DEFAULT_CONFIG.store)
    .option('--replay <id>', 'replay whose runs, intents and divergences to show: an id or latest (default: latest, when there is one)')
    .option('--param <name=value>', 'set a parameter the notebook declares (repeatable)', collect, [])
    .option('--out <file>', 'write the report to FILE.html or FILE.md instead of stdout')
    .addOption(new Option('--format <format>', 'report format (default: from --out, else markdown)').choices(['markdown', 'html', 'json']))
    .addHelpText('after', BLOCKS_HELP)
    .action(async (file: string, flags: NotebookFlags) => {
      const format = formatFor(flags);
      // The last --param of a name wins, as with every repeatable NAME=VALUE flag.
      const params = queryParams(flags.param);
      const result = await runNotebook({ file: await resolveNotebookFile(file), store: flags.store, replay: flags.replay, params });
      const text = render(result, format);
      if (!flags.out) {
        process.stdout.write(text);
        return;
      }
      await writeFile(flags.out, text);
      const queries = result.cells.filter((c) => c.type === 'sql').length;
      const charts = result.cells.filter((c) => c.type === 'chart').length;
      process.stderr.write(`wrote ${flags.out} (${queries} quer${queries === 1 ? 'y' : 'ies'}, ${charts} chart${charts === 1 ? '' : 's'}${result.replay_id ? `, replay ${result.replay_id}` : ''})\n`);
    });
}
