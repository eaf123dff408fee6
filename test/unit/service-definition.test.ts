import assert from 'node:assert/strict';
import { test } from 'node:test';
import { shortImageName } from '../../src/activities/providers/docker';
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

test('image names as the engine lists them (RepoTags): tagged, latest by default, without docker.io', () => {
  assert.equal(shortImageName('busybox'), 'busybox:latest');
  assert.equal(shortImageName('docker.io/library/busybox'), 'busybox:latest');
  assert.equal(shortImageName('docker.io/vllm/vllm-openai:v0.11.0'), 'vllm/vllm-openai:v0.11.0');
  assert.equal(shortImageName('localhost:5000/team/model'), 'localhost:5000/team/model:latest');
  assert.equal(shortImageName('zeropool-test/mock-node:3f2a'), 'zeropool-test/mock-node:3f2a');
  // "0" is a name (0:latest), not the prefix of some image's id.
  assert.equal(shortImageName('0'), '0:latest');
});
