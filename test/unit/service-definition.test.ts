import assert from 'node:assert/strict';
import { test } from 'node:test';
import { IMAGE_REFERENCE, serviceDefinitionSchema } from '../../src/domain/service';

test('a service image is a Docker image reference (schemathesis sent control characters, which dockerode threw on: a 500)', () => {
  for (const image of [
    'busybox',
    'postgres:17',
    'vllm/vllm-openai:v0.11.0',
    'zeropool-test/mock-node:3f2a',
    'localhost:5000/team/model:latest',
    'registry.example.com:443/a_b/c--d:1.2-rc',
    `ghcr.io/org/img@sha256:${'a'.repeat(64)}`,
  ]) {
    assert.ok(IMAGE_REFERENCE.test(image), image);
  }
  for (const image of ['\u0007a', 'a b', 'img:', ':tag', 'img:-x', 'Img', 'a//b', `img@sha256:${'a'.repeat(10)}`, 'ünïcode']) {
    assert.equal(IMAGE_REFERENCE.test(image), false, image);
  }
  const parsed = serviceDefinitionSchema.safeParse({ image: '\u0007a\u00a9q' });
  assert.equal(parsed.success, false);
  assert.match(parsed.error?.issues[0]?.message ?? '', /Docker image reference/);
});
