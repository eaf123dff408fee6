import assert from 'node:assert/strict';
import { test } from 'node:test';
import { keysMatch } from '../../src/api/auth';
import { toChatRequest } from '../../src/domain/inference-request';
import { loadConfig } from '../../src/config';
import { poolConfigSchema } from '../../src/domain/pool-config';
import { validatePoolConfig } from '../../src/domain/pool-config-check';
import { poolConfig } from '../helpers/stack';

test('config: defaults, coercion, and one error naming every bad variable', () => {
  const config = loadConfig({});
  assert.equal(config.PORT, 8080);
  assert.equal(config.MOCK_COLD_START_SECONDS, 3);
  assert.equal(loadConfig({ PORT: '9000' }).PORT, 9000);
  assert.throws(() => loadConfig({ PORT: 'x', ZEROPOOL_API_KEY: 'short' }), /PORT[\s\S]*ZEROPOOL_API_KEY/);
});

test('pool config: defaults and validation', () => {
  const parsed = poolConfigSchema.parse({
    model: 'm',
    maxNodes: 2,
    lanes: [{ provider: 'mock', market: 'spot', gpu: 'g', pricePerHour: 1 }],
  });
  assert.equal(parsed.minNodes, 0);
  assert.equal(parsed.idleTimeoutSeconds, 60);
  assert.equal(parsed.laneCooldownSeconds, 180);
  assert.throws(() => validatePoolConfig({ ...poolConfig(), minNodes: 9, maxNodes: 2 }), /minNodes/);
  assert.throws(
    () => validatePoolConfig({ ...poolConfig(), maxNodes: 1000, slotsPerNode: 1024 }),
    /maxNodes × slotsPerNode must not exceed 10000/,
  );
  assert.doesNotThrow(() => validatePoolConfig({ ...poolConfig(), maxNodes: 100, slotsPerNode: 100 }));
  assert.throws(() => validatePoolConfig({ ...poolConfig(), model: 'other' }, poolConfig()), /model cannot change/);
  assert.doesNotThrow(() => validatePoolConfig({ ...poolConfig(), maxNodes: 9 }, poolConfig()));
});

test('API keys compare by digest in constant time', () => {
  assert.equal(keysMatch('a-key-of-some-length', 'a-key-of-some-length'), true);
  assert.equal(keysMatch('a-key-of-some-length', 'a-key-of-some-lengtH'), false);
  assert.equal(keysMatch('short', 'a-key-of-some-length'), false);
});

test('job payloads become chat completion requests', () => {
  assert.deepEqual(toChatRequest('m', { prompt: 'hi', max_tokens: 3 }).messages, [{ role: 'user', content: 'hi' }]);
  const messages = [{ role: 'system', content: 's' }];
  const req = toChatRequest('m', { messages });
  assert.equal(req.messages, messages);
  assert.equal(req.stream, true);
  assert.equal(req.model, 'm');
});

test('auth is on by default: no key and no ZEROPOOL_INSECURE refuses to serve; the embedded stack generates and keeps a key', async () => {
  const { apiOptions, embeddedAdminKey } = await import('../../src/runtime');
  const { mkdtempSync, statSync } = await import('node:fs');
  const os = await import('node:os');
  const path = await import('node:path');
  const noop = async () => ({});
  assert.throws(() => apiOptions(loadConfig({}), undefined, ['mock'], noop), /ZEROPOOL_INSECURE=1/);
  assert.equal(apiOptions(loadConfig({ ZEROPOOL_INSECURE: '1' }), undefined, ['mock'], noop).insecure, true);
  assert.equal(apiOptions(loadConfig({}), 'an-admin-key-0123456789', ['mock'], noop).apiKey, 'an-admin-key-0123456789');

  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'zeropool-key-'));
  const first = embeddedAdminKey(loadConfig({ ZEROPOOL_DATA_DIR: dataDir }));
  assert.equal(first?.generated, true);
  assert.ok((first?.key.length ?? 0) >= 32);
  assert.equal(statSync(first!.file!).mode & 0o777, 0o600);
  const second = embeddedAdminKey(loadConfig({ ZEROPOOL_DATA_DIR: dataDir }));
  assert.deepEqual([second?.key, second?.generated], [first?.key, false], 'kept across restarts');
  assert.equal(
    embeddedAdminKey(loadConfig({ ZEROPOOL_DATA_DIR: dataDir, ZEROPOOL_API_KEY: 'from-the-environment-123' }))?.key,
    'from-the-environment-123',
  );
  assert.equal(embeddedAdminKey(loadConfig({ ZEROPOOL_DATA_DIR: dataDir, ZEROPOOL_INSECURE: '1' })), undefined);
});

test('keys are read from Authorization: Bearer or X-ZeroGate-Key', async () => {
  const { presentedKey } = await import('../../src/api/auth');
  const headers = (h: Record<string, string>) => (name: string) => h[name];
  assert.equal(presentedKey(headers({ authorization: 'Bearer abc' })), 'abc');
  assert.equal(presentedKey(headers({ authorization: 'bearer  abc ' })), 'abc');
  assert.equal(presentedKey(headers({ 'x-zerogate-key': 'xyz' })), 'xyz');
  assert.equal(presentedKey(headers({ authorization: 'Basic abc' })), undefined);
  assert.equal(presentedKey(headers({})), undefined);
});

test('an aws lane needs its aws fields, checked like the rest (instance type, AMI id); defaults fill port and health path', () => {
  const base = { model: 'm', maxNodes: 1 };
  const awsLane = { provider: 'aws', market: 'spot', gpu: 'A10G', pricePerHour: 1.006 };
  assert.equal(poolConfigSchema.safeParse({ ...base, lanes: [awsLane] }).success, false, 'no aws fields');
  assert.equal(
    poolConfigSchema.safeParse({ ...base, lanes: [{ ...awsLane, aws: { instanceType: 'g5.xlarge', imageId: 'not-an-ami' } }] }).success,
    false,
  );
  assert.equal(
    poolConfigSchema.safeParse({
      ...base,
      lanes: [{ ...awsLane, aws: { instanceType: 'g5.xlarge', imageId: 'ami-0123456789abcdef0', extra: 1 } }],
    }).success,
    false,
    'unknown aws fields are refused',
  );
  const ok = poolConfigSchema.parse({
    ...base,
    lanes: [{ ...awsLane, aws: { instanceType: 'g5.xlarge', imageId: 'ami-0123456789abcdef0' } }],
  });
  assert.deepEqual(ok.lanes[0]!.aws, { instanceType: 'g5.xlarge', imageId: 'ami-0123456789abcdef0', port: 8000, healthPath: '/health' });
});

test('a runpod lane needs its runpod fields and is on-demand (REST v2 has no interruptible pods); defaults fill count, cloud, port, health path', () => {
  const base = { model: 'm', maxNodes: 1 };
  const runpod = { gpuTypes: ['NVIDIA A40'], image: 'vllm/vllm-openai:v0.11.0' };
  const lane = { provider: 'runpod', market: 'on-demand', gpu: 'A40', pricePerHour: 0.4 };
  assert.equal(poolConfigSchema.safeParse({ ...base, lanes: [lane] }).success, false, 'no runpod fields');
  const spot = poolConfigSchema.safeParse({ ...base, lanes: [{ ...lane, market: 'spot', runpod }] });
  assert.equal(spot.success, false);
  assert.match(JSON.stringify(spot.error?.issues), /on-demand pods only/);
  assert.equal(
    poolConfigSchema.safeParse({ ...base, lanes: [{ ...lane, runpod: { ...runpod, env: { ZEROPOOL_NODE: 'x' } } }] }).success,
    false,
    'zeropool’s own variables are not the lane’s to set',
  );
  assert.equal(poolConfigSchema.safeParse({ ...base, lanes: [{ ...lane, runpod: { ...runpod, gpuTypes: [] } }] }).success, false);
  const ok = poolConfigSchema.parse({ ...base, lanes: [{ ...lane, runpod }] });
  assert.deepEqual(ok.lanes[0]!.runpod, {
    ...runpod,
    gpuCount: 1,
    cloud: 'SECURE',
    volumePath: '/workspace',
    port: 8000,
    healthPath: '/health',
  });
});
