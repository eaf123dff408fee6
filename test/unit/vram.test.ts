import assert from 'node:assert/strict';
import { test } from 'node:test';
import { admit, gpuHeadroom, mayStop, planVramAdmission, servicesToStopForRoom, type VramAllocation } from '../../src/domain/vram';
import { asPoolKey } from '../../src/ids';

// Two 24 GiB GPUs; GPU 0 has 2 GiB used by someone else.
const gpus = [
  { index: 0, totalMiB: 24_576, usedMiB: 2_048 },
  { index: 1, totalMiB: 24_576, usedMiB: 0 },
];
const alloc = (poolKey: string, gpuIndex: number, declaredMiB: number, extra: Partial<VramAllocation> = {}): VramAllocation => ({
  poolKey: asPoolKey(poolKey),
  nodeId: `${poolKey}-n1`,
  gpuIndex,
  declaredMiB,
  actualMiB: null,
  priority: 3,
  idle: false,
  ...extra,
});
const request = (vramMiB: number, extra: Record<string, unknown> = {}) => ({
  vramMiB,
  gpuCount: 1,
  priority: 3,
  poolKey: asPoolKey('new'),
  ...extra,
});

test('headroom: total minus reserve, minus others’ use, minus the larger of declared and seen for our containers', () => {
  const [g0, g1] = gpuHeadroom(gpus, [alloc('a', 0, 8_192), alloc('b', 1, 4_096, { actualMiB: 6_000 })], 1_024);
  // GPU 0: nothing of ours seen, so all 2 GiB used are someone else's; our 8 GiB promise is held in full.
  assert.deepEqual([g0!.foreignMiB, g0!.allocatedMiB, g0!.availableMiB], [2_048, 8_192, 24_576 - 1_024 - 2_048 - 8_192]);
  // GPU 1 reports 0 used, but our container was seen using 6000 (a fresh probe would say so): never less than seen.
  assert.deepEqual([g1!.foreignMiB, g1!.allocatedMiB, g1!.availableMiB], [0, 6_000, 24_576 - 1_024 - 6_000]);
});

test('admission picks the tightest GPU that fits, and refuses what fits nowhere (never oversubscribes)', () => {
  const allocations = [alloc('a', 1, 16_384)];
  // GPU 0 has 21 504 free, GPU 1 has 7 168: a 6 GiB service takes GPU 1 (tightest fit), keeping GPU 0's hole.
  assert.deepEqual(admit(gpus, allocations, 1_024, request(6_144)), { fits: true, gpuIndexes: [1], perGpuMiB: 6_144 });
  assert.deepEqual(admit(gpus, allocations, 1_024, request(20_000)), { fits: true, gpuIndexes: [0], perGpuMiB: 20_000 });
  const refused = admit(gpus, allocations, 1_024, request(21_505));
  assert.equal(refused.fits, false);
  assert.match(
    (refused as { reason: string }).reason,
    /needs 21505 MiB on each of 1 GPU\(s\); GPU 0: 21504 MiB free after reserve, GPU 1: 7168/,
  );
});

test('admission: a multi-GPU service splits its VRAM evenly and needs that much on each GPU; pinned GPUs are honoured', () => {
  assert.deepEqual(admit(gpus, [], 1_024, request(40_000, { gpuCount: 2 })), { fits: true, gpuIndexes: [0, 1], perGpuMiB: 20_000 });
  assert.equal(admit(gpus, [], 1_024, request(44_000, { gpuCount: 2 })).fits, false, '22 000 per GPU does not fit GPU 0');
  assert.deepEqual(admit(gpus, [], 1_024, request(4_096, { gpuIndexes: [0] })), { fits: true, gpuIndexes: [0], perGpuMiB: 4_096 });
  assert.equal(admit(gpus, [], 1_024, request(4_096, { gpuCount: 2, gpuIndexes: [1] })).fits, false);
  assert.equal(admit([], [], 1_024, request(1)).fits, false);
});

test('making room: only idle services of lower priority, the lowest first, and only as many as needed', () => {
  const full = [
    alloc('p5-idle', 0, 10_240, { priority: 5, idle: true }),
    alloc('p4-idle', 0, 10_240, { priority: 4, idle: true }),
    alloc('p5-busy', 1, 20_480, { priority: 5, idle: false }),
    alloc('p1-idle', 1, 2_048, { priority: 1, idle: true }),
  ];
  // A priority-2 service wanting 9 GiB: stopping the priority-5 idle one on GPU 0 is enough.
  assert.deepEqual(servicesToStopForRoom(gpus, full, 1_024, request(9_216, { priority: 2 })), ['p5-idle']);
  // 20 GiB needs both idle ones on GPU 0 (the busy and the higher-priority ones are never touched).
  assert.deepEqual(servicesToStopForRoom(gpus, full, 1_024, request(20_480, { priority: 2 })), ['p5-idle', 'p4-idle']);
  // Equal priority is not lower: nothing is stopped for a priority-4 request beyond the priority-5 one.
  assert.deepEqual(servicesToStopForRoom(gpus, full, 1_024, request(20_480, { priority: 4 })), []);
  // Nothing is stopped when even stopping every candidate would not be enough.
  assert.deepEqual(servicesToStopForRoom(gpus, full, 1_024, request(30_000, { priority: 1 })), []);
});

test('the one admission plan: asks which pools are idle only when it must, and only about other, lower-priority pools', async () => {
  const full = [alloc('p5', 0, 20_480, { priority: 5 }), alloc('p1', 1, 20_480, { priority: 1 }), alloc('new', 1, 2_048, { priority: 5 })];
  const asked: string[] = [];
  const idleAll = async (key: string) => {
    asked.push(key);
    return true;
  };
  // Fits as it is: nobody is asked.
  assert.deepEqual(await planVramAdmission(gpus, [], 1_024, request(4_096), idleAll), { fits: true, gpuIndexes: [0], perGpuMiB: 4_096 });
  assert.deepEqual(asked, []);
  // Does not fit: only p5 is a candidate (p1 is of higher priority, `new` is the requesting pool itself).
  const plan = await planVramAdmission(gpus, full, 1_024, request(16_384, { priority: 2 }), idleAll);
  assert.deepEqual(asked, ['p5']);
  assert.equal(plan.fits, false);
  assert.deepEqual(!plan.fits && plan.stopForRoom, ['p5']);
  // A pool that cannot answer counts as busy: nothing is stopped.
  const failing = await planVramAdmission(gpus, full, 1_024, request(16_384, { priority: 2 }), () =>
    Promise.reject(new Error('no worker')),
  );
  assert.deepEqual(!failing.fits && failing.stopForRoom, []);
});

test('eviction across workspaces only by the admin-granted priority: tenants of equal standing never stop each other, none stops the admin’s', () => {
  const granted = new Map([
    ['default', 1],
    ['team-a', 2],
    ['team-b', 2],
    ['gold', 1],
  ]);
  const key = (k: string) => asPoolKey(k);
  // Within a workspace, its own priorities decide (the admin's default workspace: pool keys without a dot).
  assert.equal(mayStop({ poolKey: key('a'), priority: 2 }, { poolKey: key('b'), priority: 5 }, granted), true);
  assert.equal(mayStop({ poolKey: key('team-a.x'), priority: 2 }, { poolKey: key('team-a.y'), priority: 5 }, granted), true);
  assert.equal(mayStop({ poolKey: key('team-a.x'), priority: 3 }, { poolKey: key('team-a.y'), priority: 3 }, granted), false);
  // Across: a tenant's priority 2 against another tenant's self-declared 5 is not enough (both granted 2)...
  assert.equal(mayStop({ poolKey: key('team-a.x'), priority: 2 }, { poolKey: key('team-b.y'), priority: 5 }, granted), false);
  // ...nor against the admin's services, whatever numbers the admin gave them.
  assert.equal(mayStop({ poolKey: key('team-a.x'), priority: 2 }, { poolKey: key('batch'), priority: 5 }, granted), false);
  // A workspace granted more urgency (1) may stop a tenant's (2) idle service of lower priority.
  assert.equal(mayStop({ poolKey: key('gold.x'), priority: 1 }, { poolKey: key('team-b.y'), priority: 4 }, granted), true);
  assert.equal(mayStop({ poolKey: key('urgent'), priority: 1 }, { poolKey: key('team-b.y'), priority: 2 }, granted), true);
  // But not one of more urgent own priority, and an unknown workspace ranks last.
  assert.equal(mayStop({ poolKey: key('gold.x'), priority: 3 }, { poolKey: key('team-b.y'), priority: 2 }, granted), false);
  assert.equal(mayStop({ poolKey: key('ghost.x'), priority: 1 }, { poolKey: key('team-b.y'), priority: 5 }, granted), false);
  // The plan applies it: a tenant's request never chooses another tenant's idle service.
  const full = [alloc('team-b.idle', 0, 20_480, { priority: 5, idle: true }), alloc('team-a.idle', 1, 20_480, { priority: 5, idle: true })];
  const asTenantA = request(16_384, { priority: 2, poolKey: asPoolKey('team-a.new') });
  assert.deepEqual(servicesToStopForRoom(gpus, full, 1_024, asTenantA, granted), ['team-a.idle']);
  const onlyB = [
    alloc('team-b.idle', 0, 20_480, { priority: 5, idle: true }),
    alloc('team-b.idle2', 1, 20_480, { priority: 5, idle: true }),
  ];
  assert.deepEqual(servicesToStopForRoom(gpus, onlyB, 1_024, asTenantA, granted), []);
});
