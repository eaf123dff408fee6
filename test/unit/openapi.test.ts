import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { Validator } from '@seriousme/openapi-schema-validator';
import { API_PATHS, openApiDocument } from '../../src/api/openapi';

test('the OpenAPI document is valid OpenAPI 3.1', async () => {
  const validator = new Validator();
  const result = await validator.validate(JSON.parse(JSON.stringify(openApiDocument())));
  assert.equal(result.valid, true, JSON.stringify(result.errors, null, 2));
  assert.equal(validator.version, '3.1');
});

test('every route the API registers is in the document, with its errors', () => {
  // Where each router is mounted (src/api/app.ts) and the routes its file registers.
  const mounts: Record<string, string> = {
    'workspaces.ts': '/v1/workspaces',
    'pools.ts': '/v1/pools',
    'jobs.ts': '/v1/jobs',
    'progress.ts': '',
    'callbacks.ts': '/v1/callback-secret',
    'ledger.ts': '/v1',
    'compat.ts': '/v1',
    'openai.ts': '/v1',
    'services.ts': '/v1/services',
    'gpu.ts': '/v1',
  };
  const routeFiles = readdirSync(path.join(__dirname, '..', '..', 'src', 'api', 'routes'));
  assert.deepEqual(
    routeFiles.filter((f) => !(f in mounts)),
    [],
    'every route file has its mount point listed here',
  );
  const documented = new Set(API_PATHS.map((p) => `${p.method.toUpperCase()} ${p.path}`));
  const registered: string[] = [];
  for (const [file, prefix] of Object.entries(mounts)) {
    const source = readFileSync(path.join(__dirname, '..', '..', 'src', 'api', 'routes', file), 'utf8');
    for (const [, method, route] of source.matchAll(/router\.(get|post|patch|put|delete)\(\s*'([^']*)'/g)) {
      registered.push(`${method.toUpperCase()} ${(prefix + (route === '/' ? '' : route)).replace(/:(\w+)/g, '{$1}')}`);
    }
    // Operator actions are registered through a helper: POST /:id/<action>.
    for (const [, action] of source.matchAll(/operatorAction\('([a-z-]+)'/g)) registered.push(`POST ${prefix}/{id}/${action}`);
    for (const [, action] of source.matchAll(/stopAction\('([a-z-]+)'/g)) registered.push(`POST ${prefix}/{name}/${action}`);
  }
  assert.ok(registered.length >= 20, `found ${registered.length} routes`);
  for (const route of registered) assert.ok(documented.has(route), `${route} is not in the OpenAPI document`);
  const doc = openApiDocument() as unknown as { paths: Record<string, Record<string, { responses: Record<string, unknown> }>> };
  assert.ok(doc.paths['/v1/jobs'].post.responses['429'], 'the in-flight limit is documented');
  assert.ok(doc.paths['/v1/pools/{id}'].get.responses['404']);
  // Bodies the server needs are marked required (schemathesis sent none and got a 400 the document did not announce).
  const bodies = doc as unknown as { paths: Record<string, Record<string, { requestBody?: { required?: boolean } }>> };
  assert.equal(bodies.paths['/v1/jobs'].post.requestBody?.required, true);
  assert.equal(bodies.paths['/v1/pools'].post.requestBody?.required, true);
  assert.equal(bodies.paths['/v1/services/{name}/stop'].post.requestBody?.required, false, 'stop takes an optional body');
  // The OpenAI routes answer in OpenAI's error shape, stream as SSE, and may answer 502 when every node failed.
  const chat = (
    doc.paths['/v1/chat/completions'].post as unknown as {
      responses: Record<string, { content: Record<string, { schema: { $ref?: string } }> }>;
    }
  ).responses;
  assert.ok(chat['200'].content['text/event-stream'], 'a streamed answer is documented');
  assert.equal(chat['400'].content['application/json'].schema.$ref, '#/components/schemas/OpenAIError');
  assert.ok(chat['502']);
  // OpenAPI 3.1 has no array-form `items` (a tuple): schemathesis refused the timeline's.
  const timeline = JSON.stringify(doc.paths['/v1/pools/{id}/timeline'].get.responses['200']);
  assert.doesNotMatch(timeline, /"items":\[/);
});
