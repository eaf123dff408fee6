import assert from 'node:assert/strict';
import { after, before, beforeEach, test } from 'node:test';
import {
  DescribeImagesCommand,
  DescribeInstanceAttributeCommand,
  DescribeInstancesCommand,
  DescribeSpotPriceHistoryCommand,
  type EC2Client,
  EC2ServiceException,
  type Instance,
  RunInstancesCommand,
} from '@aws-sdk/client-ec2';
import pino from 'pino';
import { nodeSecrets } from '../../src/secrets/node-secrets';
import { createNodeActivities } from '../../src/activities/nodes';
import { classifyEc2Error, clientTokenFor, EC2_TAG, Ec2Provider } from '../../src/activities/providers/aws-ec2';
import {
  AuthFailedError,
  CapacityUnavailableError,
  InvalidRequestError,
  type ProvisionRequest,
} from '../../src/activities/providers/provider';
import type { Lane } from '../../src/domain/types';
import { poolKey } from '../../src/ids';
import { MotoServer } from '../helpers/moto';

let moto: MotoServer;
let imageId: string;
before(async () => {
  moto = await new MotoServer().start();
  const images = await moto.client().send(new DescribeImagesCommand({}));
  imageId = images.Images![0]!.ImageId!;
});
beforeEach(async () => {
  await moto?.reset();
});
after(async () => {
  await moto?.stop();
});

const POOL = poolKey('team-a', 'chat');
const lane = (market: 'spot' | 'on-demand' = 'spot'): Lane => ({
  provider: 'aws',
  market,
  gpu: 'A10G',
  pricePerHour: 1.006,
  aws: {
    instanceType: 'g5.xlarge',
    imageId,
    port: 8000,
    healthPath: '/health',
    userData: '#!/bin/sh\nvllm serve m --api-key {nodeToken}\n',
  },
});
const request = (nodeId: string, market: 'spot' | 'on-demand' = 'spot'): ProvisionRequest => ({
  poolId: POOL,
  nodeId,
  model: 'm',
  lane: lane(market),
  laneIndex: 0,
});

/** Every instance moto holds, any state. */
async function allInstances(client: EC2Client): Promise<Instance[]> {
  const out = await client.send(new DescribeInstancesCommand({}));
  return (out.Reservations ?? []).flatMap((r) => r.Instances ?? []);
}
const tag = (i: Instance, key: string) => i.Tags?.find((t) => t.Key === key)?.Value;

/** Runs `fault` in place of (or after) the SDK call named `command`: for conditions moto cannot produce. */
function injectFault(client: EC2Client, command: string, fault: (next: () => Promise<unknown>) => Promise<unknown>): void {
  client.middlewareStack.add(
    (next, context) => async (args) => {
      if (context.commandName !== command) return next(args);
      return (await fault(() => next(args))) as Awaited<ReturnType<typeof next>>;
    },
    { step: 'initialize', name: 'testFault' },
  );
}

test('EC2 on moto: one instance per node id, tagged with workspace, pool and node, spot from the lane, listed per pool', async () => {
  const client = moto.client();
  const provider = new Ec2Provider({ client, healthTimeoutMs: 200 });
  await provider.provision(request('team-a.chat-n1'));
  // The activity retried, and a worker restarted with a fresh provider: no second instance.
  await provider.provision(request('team-a.chat-n1'));
  await new Ec2Provider({ client: moto.client() }).provision(request('team-a.chat-n1'));
  await provider.provision(request('team-a.chat-n2', 'on-demand'));

  const instances = await allInstances(client);
  assert.equal(instances.length, 2, 'one instance per node id');
  const n1 = instances.find((i) => tag(i, EC2_TAG.node) === 'team-a.chat-n1')!;
  assert.equal(tag(n1, EC2_TAG.managed), 'true');
  assert.equal(tag(n1, EC2_TAG.workspace), 'team-a');
  assert.equal(tag(n1, EC2_TAG.pool), POOL);
  assert.equal(n1.InstanceType, 'g5.xlarge');
  assert.equal(n1.InstanceLifecycle, 'spot', 'a spot lane starts a spot instance');
  const n2 = instances.find((i) => tag(i, EC2_TAG.node) === 'team-a.chat-n2')!;
  assert.notEqual(n2.InstanceLifecycle, 'spot', 'an on-demand lane starts an on-demand instance');

  assert.deepEqual((await provider.list(POOL)).sort(), ['team-a.chat-n1', 'team-a.chat-n2']);
  assert.deepEqual(await provider.list(poolKey('team-b', 'chat')), [], "another workspace's pool of the same name holds nothing");
});

test('EC2 on moto: an instance without our tags is never listed or terminated', async () => {
  const client = moto.client();
  const provider = new Ec2Provider({ client });
  const foreign = await client.send(
    new RunInstancesCommand({
      ImageId: imageId,
      InstanceType: 'g5.xlarge',
      MinCount: 1,
      MaxCount: 1,
      TagSpecifications: [{ ResourceType: 'instance', Tags: [{ Key: 'Name', Value: 'someone else' }] }],
    }),
  );
  const foreignId = foreign.Instances![0]!.InstanceId!;
  await provider.provision(request('team-a.chat-n1'));
  assert.deepEqual(await provider.list(POOL), ['team-a.chat-n1']);
  await provider.terminate(POOL, 'team-a.chat-n1');
  await provider.terminate(POOL, 'someone-else');
  const after = await allInstances(client);
  assert.equal(after.find((i) => i.InstanceId === foreignId)?.State?.Name, 'running', 'the untagged instance is untouched');
  assert.deepEqual(await provider.list(POOL), []);
});

test('EC2 on moto: terminate is idempotent; describe reports a terminated node gone and a running one not healthy until its server answers', async () => {
  const client = moto.client();
  const provider = new Ec2Provider({ client, healthTimeoutMs: 200 });
  await provider.provision(request('team-a.chat-n1'));
  const running = await provider.describe(POOL, 'team-a.chat-n1');
  assert.equal(running.exists, true);
  assert.equal(running.healthy, false, 'nothing serves on the emulated instance');
  assert.match(running.url ?? '', /^http:\/\/[\d.]+:8000$/);

  await provider.terminate(POOL, 'team-a.chat-n1');
  await provider.terminate(POOL, 'team-a.chat-n1');
  const gone = await provider.describe(POOL, 'team-a.chat-n1');
  assert.equal(gone.exists, false);
  assert.match(gone.reason ?? '', /terminated|shutting-down/);
  assert.equal((await provider.describe(POOL, 'never-made')).exists, false);
  assert.equal((await allInstances(client)).filter((i) => i.State?.Name === 'running').length, 0);
});

test('EC2 on moto: a RunInstances whose answer is lost after moto created the instance (5xx injected after the call) leaves one instance when retried', async () => {
  const client = moto.client();
  let lost = 0;
  injectFault(client, 'RunInstancesCommand', async (next) => {
    await next();
    lost += 1;
    throw new EC2ServiceException({ name: 'InternalError', $fault: 'server', $metadata: { httpStatusCode: 500 }, message: 'answer lost' });
  });
  const provider = new Ec2Provider({ client });
  await assert.rejects(provider.provision(request('team-a.chat-n1')), /InternalError|answer lost/);
  // The retry finds the instance by its node tag before calling RunInstances again.
  await provider.provision(request('team-a.chat-n1'));
  assert.ok(lost >= 1);
  assert.equal((await allInstances(client)).length, 1, 'no duplicate instance');
});

/** EC2's answer when its zone has no such instance now (moto never gives it). */
const insufficientCapacity = () =>
  new EC2ServiceException({
    name: 'InsufficientInstanceCapacity',
    $fault: 'server',
    $metadata: { httpStatusCode: 500 },
    message: 'We currently do not have sufficient g5.xlarge capacity in the Availability Zone you requested',
  });

test('EC2 errors (injected at the SDK: moto cannot produce them) map to typed errors; with a shortage nothing is created', async () => {
  const shortage = moto.client();
  injectFault(shortage, 'RunInstancesCommand', async () => {
    throw insufficientCapacity();
  });
  await assert.rejects(new Ec2Provider({ client: shortage }).provision(request('team-a.chat-n1')), CapacityUnavailableError);
  assert.equal((await allInstances(moto.client())).length, 0);

  const make = (name: string) => new EC2ServiceException({ name, $fault: 'client', $metadata: {}, message: name });
  assert.ok(classifyEc2Error(make('SpotMaxPriceTooLow')) instanceof CapacityUnavailableError);
  assert.ok(classifyEc2Error(make('MaxSpotInstanceCountExceeded')) instanceof CapacityUnavailableError);
  assert.ok(classifyEc2Error(make('AuthFailure')) instanceof AuthFailedError);
  assert.ok(classifyEc2Error(make('UnauthorizedOperation')) instanceof AuthFailedError);
  assert.ok(classifyEc2Error(make('InvalidAMIID.NotFound')) instanceof InvalidRequestError);
  assert.ok(classifyEc2Error(make('InvalidParameterValue')) instanceof InvalidRequestError);
  const throttled = classifyEc2Error(make('RequestLimitExceeded'));
  assert.ok(
    !(throttled instanceof CapacityUnavailableError || throttled instanceof AuthFailedError || throttled instanceof InvalidRequestError),
  );
  assert.match(String(classifyEc2Error(make('AuthFailure')).message), /^EC2 AuthFailure/);
});

test('EC2 client token: node ids within 64 characters as they are, longer ones hashed to 64', () => {
  assert.equal(clientTokenFor('team-a.chat-n1'), 'team-a.chat-n1');
  const long = clientTokenFor(`${'w'.repeat(40)}.${'p'.repeat(40)}-n12`);
  assert.equal(long.length, 64);
  assert.equal(long, clientTokenFor(`${'w'.repeat(40)}.${'p'.repeat(40)}-n12`));
  assert.notEqual(long, clientTokenFor(`${'w'.repeat(40)}.${'p'.repeat(40)}-n13`));
});

test('EC2 on moto: reconciliation terminates an instance no pool knows (its worker died before recording it) and keeps the known one', async () => {
  const client = moto.client();
  const provider = new Ec2Provider({ client });
  await provider.provision(request('team-a.chat-n1'));
  await provider.provision(request('team-a.chat-n2'));
  const activities = createNodeActivities({ providers: { aws: provider }, logger: pino({ level: 'silent' }) });
  const removed = await activities.reconcileNodes({ poolId: POOL, providers: ['aws'], knownNodeIds: ['team-a.chat-n1'] });
  assert.deepEqual(removed, ['team-a.chat-n2']);
  assert.deepEqual(await provider.list(POOL), ['team-a.chat-n1']);
  const states = Object.fromEntries((await allInstances(client)).map((i) => [tag(i, EC2_TAG.node), i.State?.Name]));
  assert.equal(states['team-a.chat-n1'], 'running');
  assert.match(states['team-a.chat-n2'] ?? '', /terminated|shutting-down/);
});

test("EC2 on moto: the lane's user data reaches the instance with {nodeToken} replaced by that node's bearer secret", async () => {
  const client = moto.client();
  const secrets = nodeSecrets(Buffer.alloc(32, 7));
  const provider = new Ec2Provider({ client, secrets });
  await provider.provision(request('team-a.chat-n1'));
  const instance = (await allInstances(client)).find((i) => tag(i, EC2_TAG.node) === 'team-a.chat-n1')!;
  const attribute = await client.send(new DescribeInstanceAttributeCommand({ InstanceId: instance.InstanceId!, Attribute: 'userData' }));
  const userData = Buffer.from(attribute.UserData?.Value ?? '', 'base64').toString('utf8');
  assert.equal(userData, `#!/bin/sh\nvllm serve m --api-key ${secrets.of('team-a.chat-n1')}\n`);
});

test("EC2 on moto: a spot node reports the price EC2's spot price history states for its type and zone; an on-demand node states none (the lane's applies)", async () => {
  const client = moto.client();
  const provider = new Ec2Provider({ client });
  const spot = await provider.provision(request('team-a.chat-n1', 'spot'));
  const instance = (await allInstances(client)).find((i) => tag(i, EC2_TAG.node) === 'team-a.chat-n1')!;
  const history = await client.send(
    new DescribeSpotPriceHistoryCommand({ InstanceTypes: ['g5.xlarge'], AvailabilityZone: instance.Placement!.AvailabilityZone! }),
  );
  const expected = Number(history.SpotPriceHistory!.find((p) => p.AvailabilityZone === instance.Placement!.AvailabilityZone)!.SpotPrice);
  assert.deepEqual(spot.price, { perHour: expected, source: 'ec2:spot-price-history' });
  // Asked again (a retried activity), the same answer.
  assert.deepEqual((await provider.provision(request('team-a.chat-n1', 'spot'))).price, spot.price);
  assert.equal((await provider.provision(request('team-a.chat-n2', 'on-demand'))).price, undefined);
});

test('EC2 on moto: a spot instance whose spot request EC2 marked for termination is a lost node at once (the request id and its status injected at the SDK: moto keeps no spot request for RunInstances)', async () => {
  const client = moto.client();
  let code = 'fulfilled';
  client.middlewareStack.add(
    (next, context) => async (args) => {
      if (context.commandName === 'DescribeSpotInstanceRequestsCommand') {
        return {
          output: {
            SpotInstanceRequests: [{ SpotInstanceRequestId: 'sir-test', Status: { Code: code, Message: 'Spot capacity reclaimed' } }],
            $metadata: {},
          },
          response: {},
        } as Awaited<ReturnType<typeof next>>;
      }
      const result = await next(args);
      if (context.commandName === 'DescribeInstancesCommand') {
        const output = result.output as { Reservations?: Array<{ Instances?: Instance[] }> };
        for (const r of output.Reservations ?? [])
          for (const i of r.Instances ?? []) if (i.InstanceLifecycle === 'spot') i.SpotInstanceRequestId = 'sir-test';
      }
      return result;
    },
    { step: 'initialize', name: 'spotRequestStatus' },
  );
  const provider = new Ec2Provider({ client, healthTimeoutMs: 200 });
  await provider.provision(request('team-a.chat-n1', 'spot'));
  assert.equal((await provider.describe(POOL, 'team-a.chat-n1')).exists, true, 'fulfilled: still ours');
  code = 'marked-for-termination';
  const lost = await provider.describe(POOL, 'team-a.chat-n1');
  assert.equal(lost.exists, false);
  assert.match(lost.reason ?? '', /spot interruption: marked-for-termination \(Spot capacity reclaimed\)/);
});

test('EC2 on moto (StopInstances / StartInstances): a stopped node keeps its instance and stays listed (the orphan sweep finds it) and starts again as the same instance; InsufficientInstanceCapacity on start (injected at the SDK) is CapacityUnavailable', async () => {
  const client = moto.client();
  const provider = new Ec2Provider({ client, healthTimeoutMs: 200 });
  await provider.provision(request('team-a.chat-n1', 'on-demand'));
  const [made] = await allInstances(client);
  const stateNow = async () => (await allInstances(client)).map((i) => i.State?.Name);
  const stopped = async () => {
    for (let i = 0; i < 50 && (await stateNow())[0] !== 'stopped'; i++) await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(await stateNow(), ['stopped']);
  };

  await provider.stop(POOL, 'team-a.chat-n1');
  await provider.stop(POOL, 'team-a.chat-n1');
  await stopped();
  assert.deepEqual(await provider.list(POOL), ['team-a.chat-n1'], 'a stopped node is still ours: reconciliation sees it');
  assert.equal((await provider.describe(POOL, 'team-a.chat-n1')).healthy, false);

  await provider.start(POOL, 'team-a.chat-n1');
  const after = await allInstances(client);
  assert.deepEqual(
    after.map((i) => i.InstanceId),
    [made!.InstanceId],
    'the same instance, none created',
  );
  assert.match(after[0]!.State?.Name ?? '', /pending|running/);

  await provider.stop(POOL, 'team-a.chat-n1');
  await stopped();
  injectFault(client, 'StartInstancesCommand', async () => {
    throw insufficientCapacity();
  });
  await assert.rejects(provider.start(POOL, 'team-a.chat-n1'), CapacityUnavailableError);
  await provider.terminate(POOL, 'team-a.chat-n1');
  assert.deepEqual(await provider.list(POOL), [], 'terminated: nothing left billing its volume');
});
