import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  GAP_BIN_EDGES_S,
  binValueSeconds,
  chooseWindows,
  gapBin,
  gapOutcome,
  newKeepAliveLearning,
  recordBoot,
  recordIdleGap,
  windowsInForce,
} from '../../src/domain/keep-alive';
import { poolConfig } from '../helpers/stack';

const adaptive = (overrides = {}) =>
  poolConfig({
    idleTimeoutSeconds: 600,
    teardownGraceSeconds: 10,
    keepAlive: { mode: 'adaptive', minSamples: 10, extraColdStartRate: 0 },
    ...overrides,
  });

function learned(gapsS: number[], bootS: number, config = adaptive()) {
  const learning = newKeepAliveLearning();
  recordBoot(learning, bootS * 1000, config);
  for (const gap of gapsS) recordIdleGap(learning, gap * 1000, config);
  return learning;
}

test('keep-alive cost model per gap, by hand (boot 60 s, grace 10 s)', () => {
  // keep 100 s: an arrival by 110 s finds the node; later, the node left at 110 s and boots again.
  assert.deepEqual(gapOutcome(50, { keepAliveS: 100 }, 60, 10), { costSeconds: 50, cold: false });
  assert.deepEqual(gapOutcome(110, { keepAliveS: 100 }, 60, 10), { costSeconds: 110, cold: false });
  assert.deepEqual(gapOutcome(500, { keepAliveS: 100 }, 60, 10), { costSeconds: 170, cold: true });
  // pre-warm: ready at 300 s, kept to 400 (+10 grace).
  const prewarm = { keepAliveS: 400, prewarmS: 300 };
  assert.deepEqual(gapOutcome(5, prewarm, 60, 10), { costSeconds: 5, cold: false }, 'inside the grace the teardown is cancelled');
  assert.deepEqual(gapOutcome(200, prewarm, 60, 10), { costSeconds: 70, cold: true }, 'before the pre-warm: a cold start');
  assert.deepEqual(gapOutcome(350, prewarm, 60, 10), { costSeconds: 120, cold: false }, 'grace + boot + 50 s waiting');
  assert.deepEqual(gapOutcome(1000, prewarm, 60, 10), { costSeconds: 240, cold: true }, 'grace + boot + 110 s kept + boot again');
});

test('histogram bins: log-spaced, a gap lands in the bin whose edges hold it, past 4 h out of range', () => {
  assert.equal(gapBin(0), 0);
  assert.equal(gapBin(999), 0);
  assert.equal(gapBin(1000), 1);
  const bin = gapBin(300_000);
  assert.ok(GAP_BIN_EDGES_S[bin] <= 300 && 300 < GAP_BIN_EDGES_S[bin + 1]);
  assert.ok(GAP_BIN_EDGES_S[bin + 1] / GAP_BIN_EDGES_S[bin] < 1.16);
  assert.equal(gapBin(5 * 3600 * 1000), -1);
});

test('adaptive windows: fixed until minSamples gaps are seen, and for a fixed pool', () => {
  const config = adaptive();
  const few = learned([300, 300, 300], 60, config);
  assert.equal(windowsInForce(config, few).mode, 'fixed');
  assert.equal(windowsInForce(config, few).keepAliveMs, 600_000);
  const many = learned(Array(20).fill(300), 60, config);
  assert.equal(
    windowsInForce(poolConfig({ idleTimeoutSeconds: 600 }), many).mode,
    'fixed',
    'keepAlive.mode fixed ignores what was learned',
  );
});

test('adaptive windows: regular 5-minute gaps with a 60 s boot pre-warm just before the gap, at no cold start', () => {
  const config = adaptive();
  const learning = learned(Array(20).fill(300), 60, config);
  const windows = windowsInForce(config, learning);
  const bin = gapBin(300_000);
  // The latest ready time that still catches every gap: the lower edge of the gaps' bin.
  assert.equal(windows.mode, 'prewarm');
  assert.equal(windows.prewarmMs, Math.round(GAP_BIN_EDGES_S[bin] * 1000));
  assert.equal(windows.expectedColdRate, 0);
  assert.equal(windows.fixedColdRate, 0);
  // Per gap: grace 10 + boot 60 + waiting from ready to the gap (bin value − edge), against the fixed 600 s
  // timeout paying the whole gap.
  const expected = 10 + 60 + (binValueSeconds(bin) - GAP_BIN_EDGES_S[bin]);
  assert.ok(Math.abs((windows.expectedCostSeconds ?? 0) - expected) < 0.01, `${windows.expectedCostSeconds} vs ${expected}`);
  assert.ok(Math.abs((windows.fixedCostSeconds ?? 0) - binValueSeconds(bin)) < 0.01);
});

test('adaptive windows: steady load (gaps under 5 s) keeps the nodes through every gap, never pre-warms, keeps the fixed window on a tie', () => {
  const config = adaptive();
  const gaps = Array.from({ length: 200 }, (_, i) => (i % 10) / 2); // 0 … 4.5 s
  const windows = windowsInForce(config, learned(gaps, 60, config));
  assert.equal(windows.mode, 'keep');
  assert.equal(windows.expectedColdRate, 0);
  assert.ok(windows.keepAliveMs + 10_000 >= 4_500, 'every gap is covered');
  // Every window covering the gaps costs the same (the gaps themselves): on a tie the fixed window stays.
  assert.equal(windows.keepAliveMs, 600_000);
  assert.equal(windows.expectedCostSeconds, windows.fixedCostSeconds);
});

test('adaptive windows: a 9-minute period against a fixed 60 s timeout stops the cold starts (fewer, never more)', () => {
  const config = adaptive({ idleTimeoutSeconds: 60 });
  const windows = windowsInForce(config, learned(Array(20).fill(540), 60, config));
  assert.equal(windows.fixedColdRate, 1, 'the fixed 60 s timeout cold-starts on every gap');
  assert.equal(windows.mode, 'prewarm');
  assert.equal(windows.expectedColdRate, 0);
});

test('adaptive windows are the best on the bin edges: brute force over every window finds none better', () => {
  let seed = 7;
  const random = () => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed / 2 ** 31;
  };
  for (let round = 0; round < 5; round++) {
    const config = adaptive({ idleTimeoutSeconds: [60, 300, 600][round % 3] });
    const gaps = Array.from({ length: 60 }, () => (random() < 0.5 ? 30 + random() * 60 : 200 + random() * 2000));
    const learning = learned(gaps, 45, config);
    const windows = chooseWindows(learning, config);
    // The same model, per gap, over the histogram's bins.
    const perGap = (policy: { keepAliveS: number; prewarmS?: number }) => {
      let cost = 0;
      let cold = 0;
      let total = 0;
      learning.gapBins.forEach((weight, bin) => {
        if (weight === 0) return;
        const outcome = gapOutcome(binValueSeconds(bin), policy, 45, 10);
        cost += outcome.costSeconds * weight;
        cold += outcome.cold ? weight : 0;
        total += weight;
      });
      return { cost: cost / total, cold: cold / total };
    };
    const fixed = perGap({ keepAliveS: config.idleTimeoutSeconds });
    const chosen = perGap({ keepAliveS: windows.keepAliveMs / 1000, ...(windows.prewarmMs ? { prewarmS: windows.prewarmMs / 1000 } : {}) });
    assert.ok(Math.abs(chosen.cost - (windows.expectedCostSeconds ?? 0)) < 0.01, 'prefix sums agree with the per-gap model');
    assert.ok(chosen.cold <= fixed.cold + 1e-9, 'no more cold starts than the fixed timeout');
    const score = (c: { cost: number; cold: number }) => c.cost + c.cold * Math.max(45, config.idleTimeoutSeconds);
    for (const k of [0, ...GAP_BIN_EDGES_S.slice(1)]) {
      const keep = perGap({ keepAliveS: k });
      if (keep.cold <= fixed.cold + 1e-9) assert.ok(score(keep) >= score(chosen) - 0.01, `keep ${k} s beats the choice`);
      for (const w of GAP_BIN_EDGES_S) {
        if (w < 55 || k < w) continue;
        const prewarm = perGap({ keepAliveS: k, prewarmS: w });
        if (prewarm.cold <= fixed.cold + 1e-9) assert.ok(score(prewarm) >= score(chosen) - 0.01, `prewarm ${w}/${k} beats the choice`);
      }
    }
  }
});
