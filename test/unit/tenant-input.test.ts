/**
 * What a tenant's input must be before it is parsed deeper or stored (issue 30): nesting counted on the raw
 * bytes, unstorable text found anywhere, IPv4-translated callback addresses refused, GPU runtime variables
 * refused in service definitions.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { jsonNestsDeeperThan, unstorableTextAt } from '../../src/api/body';
import { isNonPublicAddress } from '../../src/domain/callback-target';
import { serviceDefinitionSchema, tenantEnv } from '../../src/domain/service';
import { storableText, unstorableTextProblem } from '../../src/domain/text';

const bytes = (text: string) => Buffer.from(text, 'utf8');

test('nesting is counted on the raw bytes: brackets in strings and escaped quotes do not count; one level past the limit does', () => {
  const nested = (n: number) => `${'{"a":'.repeat(n)}1${'}'.repeat(n)}`;
  assert.equal(jsonNestsDeeperThan(bytes(nested(64)), 64), false);
  assert.equal(jsonNestsDeeperThan(bytes(nested(65)), 64), true);
  assert.equal(jsonNestsDeeperThan(bytes(`{"a":"${'['.repeat(1000)}"}`), 64), false, 'brackets inside a string');
  assert.equal(jsonNestsDeeperThan(bytes(`{"a":"\\"${'{'.repeat(100)}"}`), 64), false, 'an escaped quote does not end the string');
  assert.equal(
    jsonNestsDeeperThan(bytes(`["\\\\", ${'['.repeat(65)}${']'.repeat(65)}]`), 64),
    true,
    'an escaped backslash ends its escape',
  );
  // Linear, no recursion: a million levels is answered at once.
  assert.equal(jsonNestsDeeperThan(bytes('['.repeat(1_000_000)), 64), true);
});

test('unstorable text is found in values and keys at any depth, named by its path; well-formed pairs pass', () => {
  assert.equal(unstorableTextAt({ a: ['ok', { b: 'emoji \ud83d\ude00 is a well-formed pair' }] }), undefined);
  assert.deepEqual(unstorableTextAt({ a: ['ok', { b: 'x\ud800y' }] })?.path, 'a.1.b');
  assert.deepEqual(unstorableTextAt({ a: { 'k\udc00': 1 } })?.path, 'a.k\udc00');
  assert.match(unstorableTextAt({ a: { 'k\udc00': 1 } })!.problem, /^a key: .*surrogate/);
  assert.match(unstorableTextAt({ name: 'a\u0000b' })!.problem, /NUL/);
  assert.equal(unstorableTextAt('\ud800')?.path, 'body');
  assert.equal(unstorableTextAt({ pool: 'x\u0000' }, 'query')?.path, 'query.pool');
  // Deep input is walked without recursion.
  let deep: unknown = 'bad\udbff';
  for (let i = 0; i < 100_000; i++) deep = [deep];
  assert.ok(unstorableTextAt(deep)?.path.endsWith('.0'));
  assert.equal(unstorableTextProblem('trailing high \ud83d'), unstorableTextProblem('\ud83d'));
  assert.equal(storableText('a\u0000b\ud800c\ud83d\ude00'), 'ab\ufffdc\ud83d\ude00');
});

test('IPv4-translated addresses (::ffff:0:a.b.c.d) carry their IPv4 address: a private one is not public', () => {
  assert.equal(isNonPublicAddress('::ffff:0:127.0.0.1'), true);
  assert.equal(isNonPublicAddress('::ffff:0:10.1.2.3'), true);
  assert.equal(isNonPublicAddress('::ffff:0:7f00:1'), true, 'in hex');
  assert.equal(isNonPublicAddress('::ffff:0:8.8.8.8'), false, 'a public IPv4 inside is public');
});

test('a service definition may not set GPU runtime or zeropool variables (any case); rows stored before lose them when run', () => {
  const base = { image: 'vllm/vllm-openai:latest' };
  for (const name of [
    'NVIDIA_VISIBLE_DEVICES',
    'nvidia_driver_capabilities',
    'CUDA_VISIBLE_DEVICES',
    'ZEROPOOL_NODE_TOKEN',
    'HIP_VISIBLE_DEVICES',
  ]) {
    const parsed = serviceDefinitionSchema.safeParse({ ...base, env: { [name]: 'all' } });
    assert.equal(parsed.success, false, name);
    assert.match(JSON.stringify(parsed.error?.issues), /is reserved/);
  }
  assert.equal(serviceDefinitionSchema.safeParse({ ...base, env: { HF_HOME: '/tmp/hf', MY_NVIDIA: 'x' } }).success, true);
  assert.deepEqual(tenantEnv({ NVIDIA_VISIBLE_DEVICES: 'all', HF_HOME: '/tmp' }), { HF_HOME: '/tmp' });
});
