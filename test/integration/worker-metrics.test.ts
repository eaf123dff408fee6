/**
 * The worker process's Prometheus endpoint (METRICS_PORT) serves zeropool's counters and the Temporal SDK's
 * own metrics; the Grafana dashboard's every query parses as PromQL and names only metrics and labels that
 * the API or the worker actually export.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { freePort } from '../../src/stack/free-port';
import { ApiStack, poolBody } from '../helpers/api-stack';
import { dashboardQueries, parseExposition, selectorsOf } from '../helpers/promql';

let stack: ApiStack;
let metricsPort: number;
before(async () => {
  metricsPort = await freePort();
  stack = await new ApiStack({ coldStartSeconds: 0.5, workerProcess: true, workerEnv: { METRICS_PORT: String(metricsPort) } }).start();
});
after(async () => {
  await stack?.stop();
});

test('worker /metrics: zeropool counters and the Temporal SDK metrics after a job; the dashboard queries match what is exported', async () => {
  assert.equal((await stack.request('POST', '/v1/pools', poolBody('scraped'))).status, 201);
  const job = await stack.request('POST', '/v1/jobs', { pool: 'scraped', payload: { prompt: 'count me' } });
  assert.equal(job.status, 202);
  await stack.until('job completed', async () => (await stack.request('GET', job.body.status_url)).body.status === 'completed');

  const scrapeWorker = async () => (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
  // The job's outcome is counted by an activity, the workflow's completion by the SDK after the workflow's last
  // task, a moment later: wait for both (a scrape in between has the first only).
  const worker = await stack.until('the worker counted the job and the SDK its workflow', async () => {
    const text = await scrapeWorker().catch(() => '');
    return /zeropool_jobs_total\{[^}]*status="completed"[^}]*\} 1/.test(text) && /^temporal_workflow_completed_total\b/m.test(text)
      ? text
      : undefined;
  });
  const workerSeries = parseExposition(worker);
  // The job's cold start in phases, on the worker that ran its provider call and boot wait.
  assert.match(worker, /zeropool_cold_start_phase_seconds_count\{[^}]*rung="cold",phase="provider"\} 1/);
  assert.match(worker, /zeropool_cold_start_phase_seconds_count\{[^}]*rung="cold",phase="boot"\} 1/);
  for (const sdk of [
    'temporal_worker_task_slots_available',
    'temporal_workflow_completed_total',
    'temporal_activity_execution_latency_bucket',
  ])
    assert.ok(
      workerSeries.has(sdk),
      `the SDK's ${sdk} is on the worker's endpoint; have ${[...workerSeries.keys()].filter((n) => n.startsWith('temporal_')).join(' ')}`,
    );

  // The API's endpoint: pool gauges (live pool), HTTP latency, the 24-hour money gauges (the ledger has the job).
  await stack.until('the ledger closed the node', async () => (await stack.closedLedger('scraped')).length > 0);
  const api = await stack.request('GET', '/metrics');
  assert.equal(api.status, 200);
  const exported = parseExposition(`${api.body}\n${worker}`);
  assert.ok(exported.has('zeropool_savings_24h_usd'), 'savings gauge');

  const queries = dashboardQueries();
  assert.ok(queries.length >= 12, `${queries.length} queries in the dashboard`);
  for (const { panel, expr } of queries) {
    const selectors = selectorsOf(expr);
    assert.ok(selectors.length > 0, `${panel}: ${expr} names a metric`);
    for (const { metric, labels } of selectors) {
      const series = exported.get(metric);
      assert.ok(series, `${panel}: ${metric} is exported by the API or the worker`);
      for (const label of labels) assert.ok(series.has(label), `${panel}: ${metric} has no label ${label}`);
    }
  }
});
