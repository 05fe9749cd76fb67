import { DuckDBInstance } from '@duckdb/node-api';
const db = await DuckDBInstance.create(':memory:');
const c = await db.connect();
const dir = '/tmp/hookshadow-bench-analyze/store';
for (const q of process.argv.slice(2)) {
  const t = performance.now();
  const r = await c.runAndReadAll(q.replaceAll('$S', dir));
  console.log(JSON.stringify(r.getRowObjectsJson(), null, 0).slice(0, 3000));
  console.log('ms', (performance.now() - t).toFixed(0));
}
