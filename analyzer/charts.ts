import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import { HsError } from '../core/errors.js';

/**
 * Renders a Vega-Lite spec over rows to a standalone SVG string, headless (no canvas,
 * no browser). The rows replace the spec's data, so a notebook's chart block or a
 * report's trend chart only describes the encoding.
 *
 * Vega's loader is replaced by one that refuses every URL: a spec from a notebook
 * must not make the renderer fetch files or hosts.
 */
export async function renderChart(spec: Record<string, unknown>, rows: Record<string, unknown>[]): Promise<string> {
  let vgSpec: vega.Spec;
  try {
    vgSpec = compile({ ...spec, data: { values: rows } } as TopLevelSpec).spec;
  } catch (err) {
    throw new HsError('HS_ERR_CHART_INVALID', `Vega-Lite spec does not compile: ${(err as Error).message}`, { cause: err });
  }
  const loader = vega.loader();
  const refuse = async (uri: string) => {
    throw new Error(`charts may not load ${uri}: give data through the query`);
  };
  loader.load = refuse;
  loader.sanitize = refuse as never;
  const view = new vega.View(vega.parse(vgSpec), { renderer: 'none', loader });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}
