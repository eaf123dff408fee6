/**
 * TEMPORAL_PAYLOAD_KEYS against the real dev server: the API and a worker process (src/worker-main.ts, as
 * deployed) share the key; a job's prompt and result are ciphertext in Temporal's history, yet the API answers
 * them in clear.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, test } from 'node:test';
import { ApiStack, poolBody } from '../helpers/api-stack';

const SECRET_PROMPT = 'the prompt nobody with Temporal access may read';
let stack: ApiStack;

before(async () => {
  stack = await new ApiStack({ coldStartSeconds: 0.2, workerProcess: true, payloadKeys: randomBytes(32).toString('base64') }).start();
});
after(async () => {
  await stack?.stop();
});

test('with TEMPORAL_PAYLOAD_KEYS a job runs as ever, and its history in Temporal holds only ciphertext', async () => {
  assert.equal((await stack.request('POST', '/v1/pools', poolBody('sealed'))).status, 201);
  const submitted = await stack.request('POST', '/v1/jobs', { pool: 'sealed', payload: { prompt: SECRET_PROMPT } });
  assert.equal(submitted.status, 202);
  const done = await stack.until('job completed', async () => {
    const r = await stack.request('GET', `/v1/jobs/${submitted.body.id}`);
    return r.body.status === 'completed' ? r.body : undefined;
  });
  assert.ok(done.result.text.length > 0, 'the worker decrypted the input and the API the result');
  // A reader of Temporal without the key: the SDK's own client, no codec.
  const history = await stack.env.client.workflow.getHandle(`job:${submitted.body.id}`).fetchHistory();
  const raw = historyText(history);
  assert.ok(raw.length > 1000 && raw.includes('jobWorkflow'), 'the history was read (bytes as text)');
  assert.doesNotMatch(raw, /prompt nobody with Temporal/);
  assert.doesNotMatch(raw, new RegExp(done.result.text.slice(0, 20).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));
  assert.match(raw, /binary\/encrypted/);
  // The pool's workflow too: its input (the config) is sealed.
  const pool = await stack.env.client.workflow.getHandle('pool:sealed').fetchHistory();
  const poolText = historyText(pool);
  assert.match(poolText, /binary\/encrypted/);
  assert.doesNotMatch(poolText, /llama-3-8b/);
});

/** Every string and byte field of a history as text (bytes as UTF-8, as a reader of the database sees them). */
function historyText(value: unknown): string {
  const parts: string[] = [];
  const walk = (v: unknown) => {
    if (v instanceof Uint8Array) parts.push(Buffer.from(v).toString('utf8'));
    else if (typeof v === 'string') parts.push(v);
    else if (Array.isArray(v)) v.forEach(walk);
    else if (v && typeof v === 'object') Object.values(v).forEach(walk);
  };
  walk(value);
  return parts.join('\n');
}
