import { Worker, type WorkerOptions } from 'node:worker_threads';

/**
 * Starts a worker thread whose entry module sits next to the module starting it:
 * compiled JavaScript from the CLI; from sources (the tests), the TypeScript module,
 * through tsx registered inside the new thread first (a worker does not inherit the
 * parent's loaders, and Node 20 ignores `--import` in a worker's execArgv).
 */
export function startWorker(from: string, name: string, opts: WorkerOptions): Worker {
  if (!from.endsWith('.ts')) return new Worker(new URL(`./${name}.js`, from), opts);
  const entry = new URL(`./${name}.ts`, from).href;
  const boot = `import('tsx/esm/api').then((tsx) => { tsx.register(); return import(${JSON.stringify(entry)}); })`;
  return new Worker(boot, { ...opts, eval: true });
}
