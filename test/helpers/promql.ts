/**
 * Checks the Grafana dashboard against what the code exports: each query is parsed by Prometheus's own
 * PromQL grammar (@prometheus-io/lezer-promql) and its metric and label names are collected.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { SyntaxNode } from '@lezer/common';
import { parser } from '@prometheus-io/lezer-promql';
import { registry } from '../../src/metrics';

export const DASHBOARD_PATH = path.join(__dirname, '..', '..', 'deploy', 'grafana', 'zeropool-dashboard.json');

interface Panel {
  title?: string;
  type?: string;
  panels?: Panel[];
  targets?: Array<{ expr?: string }>;
}

/** Every query of the dashboard with its panel's title. */
export function dashboardQueries(file = DASHBOARD_PATH): Array<{ panel: string; expr: string }> {
  const dashboard = JSON.parse(readFileSync(file, 'utf8')) as { panels: Panel[] };
  const walk = (panels: Panel[]): Array<{ panel: string; expr: string }> =>
    panels.flatMap((p) => [
      ...(p.targets ?? []).filter((t) => t.expr).map((t) => ({ panel: p.title ?? '(untitled)', expr: t.expr! })),
      ...walk(p.panels ?? []),
    ]);
  return walk(dashboard.panels);
}

/** Grafana's range variables are not PromQL: give them a duration before parsing. */
function withoutGrafanaVariables(expr: string): string {
  return expr.replace(/\$__(rate_interval|interval|range)/g, '5m');
}

/** The metrics a query selects and the label names it relies on for each (matchers and grouping); throws on a syntax error. */
export function selectorsOf(expr: string): Array<{ metric: string; labels: string[] }> {
  const source = withoutGrafanaVariables(expr);
  const tree = parser.parse(source);
  const errors: number[] = [];
  tree.iterate({
    enter: (node) => {
      if (node.type.isError) errors.push(node.from);
    },
  });
  if (errors.length > 0) throw new Error(`PromQL syntax error at ${errors[0]} in: ${expr}`);
  const text = (node: SyntaxNode) => source.slice(node.from, node.to);
  const found: Array<{ metric: string; labels: string[] }> = [];
  const visit = (node: SyntaxNode, grouping: string[]) => {
    if (node.name === 'VectorSelector') {
      const metric = node.getChild('Identifier');
      const matchers = node.getChild('LabelMatchers');
      const matched = matchers ? matchers.getChildren('UnquotedLabelMatcher').map((m) => text(m.getChild('LabelName')!)) : [];
      if (metric) found.push({ metric: text(metric), labels: [...new Set([...matched, ...grouping])] });
      return;
    }
    let inner = grouping;
    if (node.name === 'AggregateExpr') {
      const modifier = node.getChild('AggregateModifier')?.getChild('GroupingLabels');
      if (modifier) inner = [...grouping, ...modifier.getChildren('LabelName').map(text)];
    }
    for (let child = node.firstChild; child; child = child.nextSibling) visit(child, inner);
  };
  visit(tree.topNode, []);
  // `le` groups histogram buckets: it is on _bucket series only, where the query must use it.
  return found.map((s) => ({ metric: s.metric, labels: s.metric.endsWith('_bucket') ? s.labels : s.labels.filter((l) => l !== 'le') }));
}

/**
 * Metric names in Prometheus text with the label names seen on their series. A metric declared (# TYPE) but
 * without series yet (GPU gauges on a machine without a GPU) takes the label names our registry declares.
 */
export function parseExposition(text: string): Map<string, Set<string>> {
  const series = new Map<string, Set<string>>();
  const add = (name: string, labels: string[]) => {
    const set = series.get(name) ?? new Set<string>();
    for (const l of labels) set.add(l);
    series.set(name, set);
  };
  for (const line of text.split('\n')) {
    const declared = /^# TYPE (\S+) (\w+)/.exec(line);
    if (declared) {
      const [, name, type] = declared;
      const own = registry.getSingleMetric(name) as { labelNames?: string[] } | undefined;
      const labels = own?.labelNames ?? [];
      if (type === 'histogram') {
        add(`${name}_bucket`, [...labels, 'le']);
        add(`${name}_sum`, labels);
        add(`${name}_count`, labels);
      } else add(name, labels);
      continue;
    }
    const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})?\s/.exec(line);
    if (!sample) continue;
    add(
      sample[1],
      [...(sample[3] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="/g)].map((m) => m[1]),
    );
  }
  return series;
}
