import { Command, Option } from 'commander';
import { HsError } from '../../core/errors.js';
import { loadFlowsDir } from '../../replayer/flows/load.js';
import { formatProblem } from '../../replayer/flows/model.js';
import { BUILTIN_OPS, createOpRegistry, loadUserOps } from '../../replayer/ops/registry.js';
import { effectClassOf } from '../../replayer/ops/types.js';
import { collect } from '../options.js';

function validateCommand(): Command {
  return new Command('validate')
    .description('Load every flow in DIR and report every problem at once, as FILE:LINE:COL: CODE: message. Exits 1 when there is any.')
    .argument('<dir>', 'directory of flow YAML files')
    .option('--ops <module>', 'a module exporting extra ops (repeatable)', collect, [])
    .addOption(new Option('--format <format>', 'output format').choices(['text', 'json']).default('text'))
    .action(async (dir: string, flags: { ops: string[]; format: 'text' | 'json' }) => {
      const ops = createOpRegistry([...BUILTIN_OPS, ...(await loadUserOps(flags.ops, process.cwd()))]);
      const { flows, problems, digest } = await loadFlowsDir(dir, ops);
      if (flags.format === 'json') {
        process.stdout.write(JSON.stringify({ valid: problems.length === 0, digest, flows: flows.map((f) => ({ name: f.name, file: f.file, version: f.version, nodes: f.nodes.length })), problems }) + '\n');
      } else {
        for (const p of problems) process.stderr.write(formatProblem(p) + '\n');
        for (const f of flows) process.stdout.write(`ok  ${f.name}  (${f.file}, ${f.nodes.length} node${f.nodes.length === 1 ? '' : 's'}, version ${f.version})\n`);
      }
      if (problems.length > 0) {
        if (flags.format === 'text') throw new HsError('HS_ERR_FLOWS_INVALID', `${problems.length} problem(s) in ${dir}.`);
        process.exitCode = 1;
      }
    });
}

function opsCommand(): Command {
  return new Command('ops')
    .description('List the ops flows can use: name, effect class, capability, arguments.')
    .option('--ops <module>', 'a module exporting extra ops (repeatable)', collect, [])
    .addOption(new Option('--format <format>', 'output format').choices(['text', 'json']).default('text'))
    .action(async (flags: { ops: string[]; format: 'text' | 'json' }) => {
      const defs = [...BUILTIN_OPS, ...(await loadUserOps(flags.ops, process.cwd()))];
      if (flags.format === 'json') {
        process.stdout.write(JSON.stringify(defs.map((d) => ({ name: d.name, description: d.description, effect_class: typeof d.effectClass === 'string' ? d.effectClass : 'by method', capability: d.capability, args: d.args }))) + '\n');
        return;
      }
      for (const d of defs) {
        const props = Object.keys((d.args.properties as Record<string, unknown> | undefined) ?? {});
        const required = new Set((d.args.required as string[] | undefined) ?? []);
        const cls = typeof d.effectClass === 'string' ? d.effectClass : `${effectClassOf(d, { method: 'GET' })}/${effectClassOf(d, { method: 'POST' })} by method`;
        process.stdout.write(`${d.name.padEnd(26)} ${cls.padEnd(10)} ${(d.capability ?? '-').padEnd(12)} ${props.map((p) => (required.has(p) ? p : `[${p}]`)).join(' ')}\n    ${d.description}\n`);
      }
    });
}

export function flowsCommand(): Command {
  return new Command('flows').description('Work with flow files: validate them, list the ops they can use.').addCommand(validateCommand()).addCommand(opsCommand());
}
