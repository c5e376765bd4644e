// The peer benchmark's chart: drain throughput (no-op and tenant-scoped) and
// idle latency per system, as a Vega-Lite spec rendered to SVG by Vega
// headless (no browser, no canvas).
import * as vega from 'vega';
import * as vl from 'vega-lite';

export interface ChartRow {
  system: string;
  /** no-op drain jobs/s: median, min, max */
  drain?: [number, number, number];
  /** (c) tenant-scoped drain jobs/s */
  tenant?: [number, number, number];
  /** latency ms (medians over rounds) */
  p50?: number;
  p95?: number;
  p99?: number;
}

export async function renderChart(rows: ChartRow[], title: string, subtitle: string): Promise<string> {
  const order = rows.map((r) => r.system);
  const throughput = (field: 'drain' | 'tenant', heading: string) => {
    const values = rows.filter((r) => r[field]).map((r) => ({ system: r.system, median: r[field]![0], min: r[field]![1], max: r[field]![2] }));
    return {
      title: heading,
      width: 230,
      height: 220,
      data: { values },
      encoding: { x: { field: 'system', type: 'nominal', sort: order, title: null, axis: { labelAngle: -35, labelLimit: 220 } } },
      layer: [
        { mark: { type: 'bar', color: '#4c78a8' }, encoding: { y: { field: 'median', type: 'quantitative', title: 'jobs/s (median)' } } },
        { mark: { type: 'rule', color: '#333' }, encoding: { y: { field: 'min', type: 'quantitative' }, y2: { field: 'max' } } },
        { mark: { type: 'text', dy: -8, fontSize: 9 }, encoding: { y: { field: 'max', type: 'quantitative' }, text: { field: 'median', type: 'quantitative', format: ',.0f' } } },
      ],
    };
  };
  const latValues = rows.flatMap((r) =>
    r.p50 === undefined ? [] : [
      { system: r.system, percentile: 'p50', ms: r.p50 },
      { system: r.system, percentile: 'p95', ms: r.p95 },
      { system: r.system, percentile: 'p99', ms: r.p99 },
    ]);
  const spec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: { text: title, subtitle },
    config: { font: 'sans-serif', view: { stroke: null } },
    hconcat: [
      throughput('drain', 'no-op burn-down: drain'),
      throughput('tenant', 'tenant-scoped row + completion'),
      {
        title: 'idle latency, enqueue to handler start',
        width: 260,
        height: 220,
        data: { values: latValues },
        mark: 'bar',
        encoding: {
          x: { field: 'system', type: 'nominal', sort: order, title: null, axis: { labelAngle: -35, labelLimit: 220 } },
          xOffset: { field: 'percentile', sort: ['p50', 'p95', 'p99'] },
          y: { field: 'ms', type: 'quantitative', title: 'ms (median of rounds)', scale: { type: 'symlog' } },
          color: { field: 'percentile', type: 'nominal', sort: ['p50', 'p95', 'p99'], scale: { scheme: 'tableau10' } },
        },
      },
    ],
  };
  const compiled = vl.compile(spec as unknown as vl.TopLevelSpec).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: 'none' });
  return view.toSVG();
}
