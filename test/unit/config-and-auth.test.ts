import assert from 'node:assert/strict';
import { test } from 'node:test';
import { keysMatch } from '../../src/api/auth';
import { toChatRequest } from '../../src/activities/inference';
import { loadConfig } from '../../src/config';
import { poolConfigSchema, validatePoolConfig } from '../../src/domain/pool-config';
import { poolConfig } from '../helpers/stack';

test('config: defaults, coercion, and one error naming every bad variable', () => {
  const config = loadConfig({});
  assert.equal(config.PORT, 8080);
  assert.equal(config.MOCK_COLD_START_SECONDS, 3);
  assert.equal(loadConfig({ PORT: '9000' }).PORT, 9000);
  assert.throws(() => loadConfig({ PORT: 'x', ZEROPOOL_API_KEY: 'short' }), /PORT[\s\S]*ZEROPOOL_API_KEY/);
});

test('pool config: defaults and validation', () => {
  const parsed = poolConfigSchema.parse({ model: 'm', maxNodes: 2, lanes: [{ provider: 'mock', market: 'spot', gpu: 'g', pricePerHour: 1 }] });
  assert.equal(parsed.minNodes, 0);
  assert.equal(parsed.idleTimeoutSeconds, 60);
  assert.equal(parsed.laneCooldownSeconds, 180);
  assert.throws(() => validatePoolConfig({ ...poolConfig(), minNodes: 9, maxNodes: 2 }), /minNodes/);
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
