/** Messages a new user meets in the first hour (issue 29): each says what happened and what to do, once. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ApiError } from '../../src/api/errors';
import { checkProviders } from '../../src/api/routes/pools';
import { poolConfigSchema } from '../../src/domain/pool-config';

const lane = (provider: string) => ({ provider, market: 'on-demand' as const, gpu: 'A10G', pricePerHour: 1 });

test('a negative maxNodes is one mistake with one message (not also "minNodes must not exceed maxNodes")', () => {
  const parsed = poolConfigSchema.safeParse({ model: 'm', maxNodes: -1, lanes: [lane('mock')] });
  assert.equal(parsed.success, false);
  const messages = parsed.error!.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
  assert.equal(messages.length, 1, messages.join(' | '));
  assert.match(messages[0], /^maxNodes:/);
});

test('a lane on a provider that is off says how to turn it on; a provider zeropool lacks is named as unknown', () => {
  // Lanes as a stored config may hold them (an aws lane's own fields are not what this checks).
  const config = { ...poolConfigSchema.parse({ model: 'm', maxNodes: 1, lanes: [lane('mock')] }), lanes: [lane('aws'), lane('gcp')] };
  assert.throws(
    () => checkProviders(config, ['mock']),
    (err: unknown) => {
      assert.ok(err instanceof ApiError);
      assert.equal(err.status, 400);
      assert.match(err.message, /provider aws is off on this server: set AWS_REGION/);
      assert.match(err.message, /unknown provider gcp \(zeropool has mock, docker, aws, hyperstack, runpod\)/);
      assert.match(err.message, /on here: mock$/);
      return true;
    },
  );
  assert.doesNotThrow(() => checkProviders(poolConfigSchema.parse({ model: 'm', maxNodes: 1, lanes: [lane('mock')] }), ['mock']));
});
