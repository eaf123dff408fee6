import assert from 'node:assert/strict';
import { accessSync, constants, existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { parse } from 'yaml';
import { configSchema } from '../../src/config';
import devServerConfig from '../../temporal/dev-server.json';
import { registry } from '../../src/metrics';
import { DASHBOARD_PATH, dashboardQueries, selectorsOf } from '../helpers/promql';

const root = path.join(__dirname, '..', '..');
const compose = parse(readFileSync(path.join(root, 'docker-compose.yml'), 'utf8'));

test('docker-compose.yml parses and has the production shape', () => {
  for (const service of ['postgresql', 'temporal', 'temporal-setup', 'temporal-ui', 'api', 'worker']) {
    assert.ok(compose.services[service], `service ${service}`);
  }
});

test('compose publishes Temporal and its Web UI on loopback only, the UI read-only (Temporal has no auth)', () => {
  assert.deepEqual(compose.services.temporal.ports, ['127.0.0.1:7233:7233']);
  assert.deepEqual(compose.services['temporal-ui'].ports, ['127.0.0.1:8233:8080']);
  assert.equal(compose.services['temporal-ui'].environment.TEMPORAL_DISABLE_WRITE_ACTIONS, 'true');
  for (const [name, service] of Object.entries<any>(compose.services)) {
    if (name === 'api') continue;
    for (const port of service.ports ?? []) assert.match(String(port), /^127\.0\.0\.1:/, `${name} publishes ${port} beyond loopback`);
  }
});

test('every command docker-compose runs from our image or our files exists', () => {
  for (const [name, service] of Object.entries<any>(compose.services)) {
    if (service.build) {
      const command: string[] = service.command;
      const script = command.find((part) => part.endsWith('.ts'));
      assert.ok(script && existsSync(path.join(root, script)), `${name} runs ${script}`);
      assert.ok(existsSync(path.join(root, service.build === '.' ? 'Dockerfile' : `${service.build}/Dockerfile`)));
    }
    for (const volume of service.volumes ?? []) {
      const source = String(volume).split(':')[0];
      if (source.startsWith('./')) assert.ok(existsSync(path.join(root, source)), `${name} mounts ${source}`);
    }
  }
  accessSync(path.join(root, 'temporal', 'setup.sh'), constants.X_OK);
  const dockerfile = readFileSync(path.join(root, 'Dockerfile'), 'utf8');
  const cmd = /^CMD \[(.*)\]/m.exec(dockerfile)![1];
  const script = JSON.parse(`[${cmd}]`).find((p: string) => p.endsWith('.ts'));
  assert.ok(existsSync(path.join(root, script)), `Dockerfile CMD runs ${script}`);
});

test('Temporal config: compose and the dev server register the same search attributes and dynamic config', () => {
  const setup = readFileSync(path.join(root, 'temporal', 'setup.sh'), 'utf8');
  for (const name of Object.keys(devServerConfig.searchAttributes)) assert.match(setup, new RegExp(name));
  const production = parse(readFileSync(path.join(root, 'temporal', 'dynamicconfig', 'production.yaml'), 'utf8'));
  for (const [key, value] of Object.entries(devServerConfig.dynamicConfig)) {
    assert.deepEqual(production[key]?.[0]?.value, value, `production.yaml sets ${key} to ${value}`);
  }
});

test('.env.example lists every configuration variable', () => {
  const example = readFileSync(path.join(root, '.env.example'), 'utf8');
  const listed = new Set([...example.matchAll(/^([A-Z0-9_]+)=/gm)].map((m) => m[1]));
  for (const key of Object.keys(configSchema.shape)) assert.ok(listed.has(key), `.env.example lacks ${key}`);
  for (const key of listed) assert.ok(key in configSchema.shape, `.env.example has unknown ${key}`);
});

test('Grafana dashboard: every query is valid PromQL over zeropool metrics and labels the code declares', () => {
  const dashboard = JSON.parse(readFileSync(DASHBOARD_PATH, 'utf8'));
  const ids = new Set<number>();
  const declared = new Map<string, string[]>();
  for (const metric of registry.getMetricsAsArray() as unknown as Array<{
    name: string;
    labelNames: string[];
    constructor: { name: string };
  }>) {
    if (metric.constructor.name === 'Histogram') {
      declared.set(`${metric.name}_bucket`, [...metric.labelNames, 'le']);
      declared.set(`${metric.name}_sum`, metric.labelNames);
      declared.set(`${metric.name}_count`, metric.labelNames);
    } else declared.set(metric.name, metric.labelNames);
  }
  const walk = (panels: Array<{ id: number; panels?: unknown[] }>): void => {
    for (const p of panels) {
      assert.ok(!ids.has(p.id), `panel id ${p.id} is unique`);
      ids.add(p.id);
      walk((p.panels ?? []) as typeof panels);
    }
  };
  walk(dashboard.panels);
  assert.ok(
    dashboard.templating.list.some((v: { type: string }) => v.type === 'datasource'),
    'the data source is a variable',
  );
  const queries = dashboardQueries();
  for (const { panel, expr } of queries) {
    for (const { metric, labels } of selectorsOf(expr)) {
      if (!metric.startsWith('zeropool_')) continue; // the SDK's: checked against a live worker in worker-metrics.test.ts
      const known = declared.get(metric);
      assert.ok(known, `${panel}: ${metric} is declared in src/metrics.ts`);
      for (const label of labels) assert.ok(known.includes(label), `${panel}: ${metric} has no label ${label}`);
    }
  }
  // The panels the deployment issue asks for.
  const all = queries.map((q) => q.expr).join('\n');
  for (const metric of [
    'zeropool_nodes',
    'zeropool_queue_depth',
    'zeropool_node_cold_start_seconds',
    'zeropool_cost_usd_total',
    'zeropool_savings_24h_usd',
    'zeropool_gpu_memory_mib',
  ])
    assert.ok(all.includes(metric), `the dashboard shows ${metric}`);
});
