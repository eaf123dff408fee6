/**
 * `npm run smoke -- --provider aws`: provisions one real node with a cloud driver, waits for its model server,
 * runs one chat completion with the node's bearer secret, terminates it and checks that nothing is left.
 * Only with real credentials and settings in the environment; otherwise it says what is missing and exits 0.
 * Not part of CI (it costs money and needs the internet).
 *
 * runpod: RUNPOD_API_KEY, SMOKE_RUNPOD_GPU_TYPES (comma-separated, e.g. "NVIDIA A40"), SMOKE_RUNPOD_IMAGE (an
 * OpenAI-compatible server on port 8000 with /health), optional SMOKE_RUNPOD_ARGS and SMOKE_RUNPOD_CLOUD
 * (SECURE | COMMUNITY); the node secret reaches the pod as ZEROPOOL_NODE_TOKEN and VLLM_API_KEY.
 * hyperstack: HYPERSTACK_API_KEY, SMOKE_HS_ENVIRONMENT, SMOKE_HS_FLAVOR, SMOKE_HS_IMAGE, SMOKE_HS_KEY_NAME, optional
 * SMOKE_HS_USER_DATA (may use {nodeToken}).
 * aws: AWS_REGION (+ the SDK's credential chain), SMOKE_AWS_IMAGE_ID, SMOKE_AWS_INSTANCE_TYPE, optional
 * SMOKE_AWS_SUBNET_ID, SMOKE_AWS_SECURITY_GROUP_IDS (comma-separated), SMOKE_AWS_USER_DATA (may use
 * {nodeToken}), SMOKE_AWS_MARKET (spot | on-demand, default on-demand), SMOKE_MODEL, SMOKE_TIMEOUT_MINUTES (15).
 */
import { randomBytes } from 'node:crypto';
import { EC2Client } from '@aws-sdk/client-ec2';
import { Ec2Provider } from '../src/activities/providers/aws-ec2';
import type { Provider, ProvisionRequest } from '../src/activities/providers/provider';
import { nodeSecrets } from '../src/secrets/node-secrets';
import { awsLaneSchema, hyperstackLaneSchema, type Lane, runpodLaneSchema } from '../src/domain/pool-config';
import { RunpodProvider } from '../src/activities/providers/runpod';
import { HyperstackProvider } from '../src/activities/providers/hyperstack';
import { poolKey } from '../src/ids';

const args = process.argv.slice(2);
const providerName = args[args.indexOf('--provider') + 1];
const env = process.env;
const say = (line: string) => process.stdout.write(`${new Date().toISOString().slice(11, 19)} ${line}\n`);

function missing(names: string[]): string[] {
  return names.filter((n) => !env[n]);
}

async function main(): Promise<number> {
  if (!args.includes('--provider') || !providerName) {
    say('usage: npm run smoke -- --provider aws|runpod|hyperstack');
    return 2;
  }
  const secrets = nodeSecrets(randomBytes(32));
  const pool = poolKey('smoke', `smoke-${randomBytes(3).toString('hex')}`);
  let provider: Provider;
  let lane: Lane;
  if (providerName === 'aws') {
    const absent = missing(['AWS_REGION', 'SMOKE_AWS_IMAGE_ID', 'SMOKE_AWS_INSTANCE_TYPE']);
    if (absent.length > 0) {
      say(`skipped: set ${absent.join(', ')} (and AWS credentials) to provision one real EC2 node`);
      return 0;
    }
    provider = new Ec2Provider({
      client: new EC2Client({ region: env.AWS_REGION, ...(env.AWS_EC2_ENDPOINT ? { endpoint: env.AWS_EC2_ENDPOINT } : {}) }),
      secrets,
    });
    const aws = awsLaneSchema.parse({
      instanceType: env.SMOKE_AWS_INSTANCE_TYPE,
      imageId: env.SMOKE_AWS_IMAGE_ID,
      ...(env.SMOKE_AWS_SUBNET_ID ? { subnetId: env.SMOKE_AWS_SUBNET_ID } : {}),
      ...(env.SMOKE_AWS_SECURITY_GROUP_IDS ? { securityGroupIds: env.SMOKE_AWS_SECURITY_GROUP_IDS.split(',') } : {}),
      ...(env.SMOKE_AWS_USER_DATA ? { userData: env.SMOKE_AWS_USER_DATA } : {}),
    });
    lane = { provider: 'aws', market: env.SMOKE_AWS_MARKET === 'spot' ? 'spot' : 'on-demand', gpu: aws.instanceType, pricePerHour: 0, aws };
  } else if (providerName === 'hyperstack') {
    const absent = missing(['HYPERSTACK_API_KEY', 'SMOKE_HS_ENVIRONMENT', 'SMOKE_HS_FLAVOR', 'SMOKE_HS_IMAGE', 'SMOKE_HS_KEY_NAME']);
    if (absent.length > 0) {
      say(`skipped: set ${absent.join(', ')} to provision one real Hyperstack VM`);
      return 0;
    }
    provider = new HyperstackProvider({ apiKey: env.HYPERSTACK_API_KEY!, baseUrl: env.HYPERSTACK_API_URL, secrets });
    const hyperstack = hyperstackLaneSchema.parse({
      environment: env.SMOKE_HS_ENVIRONMENT,
      flavor: env.SMOKE_HS_FLAVOR,
      image: env.SMOKE_HS_IMAGE,
      keyName: env.SMOKE_HS_KEY_NAME,
      ...(env.SMOKE_HS_USER_DATA ? { userData: env.SMOKE_HS_USER_DATA } : {}),
    });
    lane = { provider: 'hyperstack', market: 'on-demand', gpu: hyperstack.flavor, pricePerHour: 0, hyperstack };
  } else if (providerName === 'runpod') {
    const absent = missing(['RUNPOD_API_KEY', 'SMOKE_RUNPOD_GPU_TYPES', 'SMOKE_RUNPOD_IMAGE']);
    if (absent.length > 0) {
      say(`skipped: set ${absent.join(', ')} to provision one real RunPod pod`);
      return 0;
    }
    provider = new RunpodProvider({ apiKey: env.RUNPOD_API_KEY!, baseUrl: env.RUNPOD_API_URL, proxyUrl: env.RUNPOD_PROXY_URL, secrets });
    const runpod = runpodLaneSchema.parse({
      gpuTypes: env.SMOKE_RUNPOD_GPU_TYPES!.split(',').map((t) => t.trim()),
      image: env.SMOKE_RUNPOD_IMAGE,
      env: { VLLM_API_KEY: '{nodeToken}' },
      ...(env.SMOKE_RUNPOD_ARGS ? { args: env.SMOKE_RUNPOD_ARGS } : {}),
      ...(env.SMOKE_RUNPOD_CLOUD ? { cloud: env.SMOKE_RUNPOD_CLOUD } : {}),
    });
    lane = { provider: 'runpod', market: 'on-demand', gpu: runpod.gpuTypes[0]!, pricePerHour: 0, runpod };
  } else {
    say(`unknown provider ${providerName}`);
    return 2;
  }
  const request: ProvisionRequest = { poolId: pool, nodeId: `${pool}-n1`, model: env.SMOKE_MODEL ?? 'smoke', lane, laneIndex: 0 };
  const started = Date.now();
  say(`provisioning ${request.nodeId} on ${providerName} (${lane.gpu}, ${lane.market})`);
  const node = await provider.provision(request);
  say(`accepted${node.price ? `, ${node.price.perHour} USD/h (${node.price.source})` : ''}`);
  let failure: string | undefined;
  try {
    const deadline = started + Number(env.SMOKE_TIMEOUT_MINUTES ?? 15) * 60_000;
    let url: string | undefined;
    while (!url) {
      const status = await provider.describe(pool, request.nodeId);
      if (!status.exists) throw new Error(`the node is gone: ${status.reason}`);
      if (status.healthy) url = status.url;
      else if (Date.now() > deadline) throw new Error(`not ready in time: ${status.reason}`);
      else await new Promise((r) => setTimeout(r, 10_000));
    }
    say(`ready after ${Math.round((Date.now() - started) / 1000)} s at ${url}`);
    const res = await fetch(`${url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${secrets.of(request.nodeId)}` },
      body: JSON.stringify({ model: request.model, messages: [{ role: 'user', content: 'Say hello.' }], max_tokens: 8 }),
    });
    say(`completion: ${res.status} ${(await res.text()).slice(0, 200)}`);
    if (!res.ok) failure = `completion answered ${res.status}`;
  } catch (err) {
    failure = (err as Error).message;
  } finally {
    await provider.terminate(pool, request.nodeId);
    const left = await provider.list(pool);
    say(left.length === 0 ? 'terminated; nothing left' : `STILL HELD: ${left.join(', ')}`);
    if (left.length > 0) failure ??= 'resources left behind';
  }
  if (failure) say(`FAILED: ${failure}`);
  return failure ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err) => {
    say(`FAILED: ${(err as Error).message}`);
    process.exit(1);
  },
);
