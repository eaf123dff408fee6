/**
 * OpenTelemetry: one job's trace, exported in-process (the SDK's in-memory exporter behind the same batch
 * processor an OTLP endpoint gets), runs from the HTTP request through the Temporal client, the job
 * workflow and the pool's placement to the inference activity, all under one trace id.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { InMemorySpanExporter, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { startTracing, type Tracing } from '../../src/tracing';
import { ApiStack, poolBody } from '../helpers/api-stack';

const exporter = new InMemorySpanExporter();
let tracing: Tracing;
let stack: ApiStack;
before(async () => {
  tracing = startTracing({}, 'zeropool-test', exporter)!;
  stack = await new ApiStack({ coldStartSeconds: 0.5, tracing }).start();
});
after(async () => {
  await stack?.stop();
  await tracing?.shutdown();
});

test("one job's trace: API request → start → job workflow → pool placement → inference, one trace id", async () => {
  assert.equal((await stack.request('POST', '/v1/pools', poolBody('traced'))).status, 201);
  const submitted = await stack.request('POST', '/v1/jobs', { pool: 'traced', payload: { prompt: 'trace me' } });
  assert.equal(submitted.status, 202);
  const jobId: string = submitted.body.id;
  await stack.until('job completed', async () => (await stack.request('GET', submitted.body.status_url)).body.status === 'completed');

  const spansOfJob = await stack.until('the job trace exported', async () => {
    await tracing.processor.forceFlush();
    const spans = exporter.getFinishedSpans();
    const request = spans.find((s) => s.name === 'POST /v1/jobs');
    if (!request) return undefined;
    const inTrace = spans.filter((s) => s.spanContext().traceId === request.spanContext().traceId);
    // The workflow's span ends when the workflow does, a moment after the job reads as completed.
    const wanted = ['RunActivity:runInference', 'PlaceJob', 'RunWorkflow:jobWorkflow'];
    return wanted.every((name) => inTrace.some((s) => s.name === name)) ? inTrace : undefined;
  });
  const byName = (name: string): ReadableSpan => {
    const span = spansOfJob.find((s) => s.name === name);
    assert.ok(span, `span ${name} in the job's trace; have ${[...new Set(spansOfJob.map((s) => s.name))].join(', ')}`);
    return span;
  };
  const parentOf = (span: ReadableSpan) => spansOfJob.find((s) => s.spanContext().spanId === span.parentSpanId);
  const ancestors = (span: ReadableSpan): string[] => {
    const names: string[] = [];
    for (let p = parentOf(span); p; p = parentOf(p)) names.push(p.name);
    return names;
  };

  const request = byName('POST /v1/jobs');
  assert.equal(request.parentSpanId, undefined, 'the HTTP request is the root');
  assert.equal(request.attributes['http.response.status_code'], 202);
  const start = byName('StartWorkflow:jobWorkflow');
  assert.equal(parentOf(start)?.name, 'POST /v1/jobs');
  const run = byName('RunWorkflow:jobWorkflow');
  assert.ok(ancestors(run).includes('StartWorkflow:jobWorkflow'), `RunWorkflow under StartWorkflow: ${ancestors(run)}`);

  const placement = byName('PlaceJob');
  assert.equal(placement.attributes['zeropool.job'], jobId);
  assert.match(String(placement.attributes['zeropool.node']), /traced/);
  assert.ok(Number(placement.attributes['zeropool.cold_start_ms']) > 0, 'the job waited for a cold start');
  assert.ok(ancestors(placement).includes('POST /v1/jobs'), `placement is in the request's tree: ${ancestors(placement)}`);

  const inference = byName('RunActivity:runInference');
  assert.ok(ancestors(inference).includes('RunWorkflow:jobWorkflow'), `inference under the job workflow: ${ancestors(inference)}`);
  // Order in time: the request starts first; placement ends before the inference starts.
  const ms = (t: [number, number]) => t[0] * 1000 + t[1] / 1e6;
  assert.ok(ms(request.startTime) <= ms(placement.startTime));
  assert.ok(ms(placement.endTime) <= ms(inference.startTime) + 5);
  // The service name travels with every span, workflow spans included.
  assert.equal(run.resource.attributes['service.name'], 'zeropool-test');
});
