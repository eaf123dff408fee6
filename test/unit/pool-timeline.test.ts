import assert from 'node:assert/strict';
import { test } from 'node:test';
import { poolTimeline, type TimelineRow } from '../../src/domain/pool-timeline';

const row = (event_type: string, atS: number, extra: Partial<TimelineRow> = {}): TimelineRow => ({
  event_type,
  occurred_at: new Date(atS * 1000),
  node_id: null,
  price_per_hour: null,
  details: {},
  ...extra,
});

test('pool timeline from ledger rows, by hand: nodes billed, requests running, node-hours and cost in the window', () => {
  const rows = [
    // n1 from 0 to 1800 s at $2/h; n2 from 600 s, still up at the end (3600 s) at $4/h; n0 ended before the window.
    row('node_provisioning', -500, { node_id: 'n0', price_per_hour: '9' }),
    row('node_terminated', -100, { node_id: 'n0' }),
    row('node_provisioning', 0, { node_id: 'n1', price_per_hour: '2' }),
    row('node_provisioning', 600, { node_id: 'n2', price_per_hour: '4' }),
    row('node_terminated', 1800, { node_id: 'n1' }),
    row('job_completed', 200, { details: { runs: [{ startedAt: 100_000, endedAt: 200_000 }] } }),
    // Preempted once, then ran again: one request, two runs.
    row('job_completed', 900, {
      details: {
        runs: [
          { startedAt: 650_000, endedAt: 700_000 },
          { startedAt: 800_000, endedAt: 900_000 },
        ],
      },
    }),
    row('job_failed', 10, { details: { runs: [] } }),
  ];
  const t = poolTimeline(rows, 0, 3_600_000);
  assert.equal(t.requests, 2);
  assert.equal(t.peakNodes, 2);
  // n1 1800 s + n2 3000 s = 4800 s = 1.333 h; cost 0.5 h × $2 + 0.8333 h × $4.
  assert.ok(Math.abs(t.nodeHours - 4800 / 3600) < 1e-9);
  assert.ok(Math.abs(t.costUsd - (1 + (3000 / 3600) * 4)) < 1e-9);
  assert.deepEqual(t.points, [
    [0, 1, 0],
    [100, 1, 1],
    [200, 1, 0],
    [600, 2, 0],
    [650, 2, 1],
    [700, 2, 0],
    [800, 2, 1],
    [900, 2, 0],
    [1800, 1, 0],
    [3600, 0, 0],
  ]);
});

for (const [down, up, priceKey] of [
  ['node_stopped', 'node_started', 'stoppedPricePerHour'],
  ['node_slept', 'node_woke', 'sleepingPricePerHour'],
] as const) {
  test(`pool timeline: a node down (${down}) is not counted while down and bills its rung's price meanwhile`, () => {
    const rows = [
      row('node_provisioning', 0, { node_id: 'n1', price_per_hour: '2' }),
      row(down, 600, { node_id: 'n1', details: { [priceKey]: 0.036 } }),
      row(up, 2400, { node_id: 'n1' }),
      row(down, 3000, { node_id: 'n1', details: { [priceKey]: 0.036 } }),
    ];
    const t = poolTimeline(rows, 0, 3_600_000);
    // Running 0–600 and 2400–3000 (1200 s at $2/h); down 600–2400 and 3000–3600 (2400 s at $0.036/h).
    assert.ok(Math.abs(t.nodeHours - 1200 / 3600) < 1e-9);
    assert.ok(Math.abs(t.costUsd - ((1200 / 3600) * 2 + (2400 / 3600) * 0.036)) < 1e-9);
    assert.deepEqual(t.points, [
      [0, 1, 0],
      [600, 0, 0],
      [2400, 1, 0],
      [3000, 0, 0],
    ]);
  });
}

test('pool timeline marks: a cold start per node asked for, a lane move when the lane changes, a wake per start, to zero when the last GPU goes (not at the window end)', () => {
  const rows = [
    // Open before the window: counted, not marked.
    row('node_provisioning', -100, { node_id: 'n0', price_per_hour: '1', provider: 'mock', market: 'spot' }),
    row('node_terminated', 100, { node_id: 'n0' }),
    row('node_provisioning', 200, { node_id: 'n1', price_per_hour: '1', provider: 'mock', market: 'spot' }),
    row('node_provisioning', 300, { node_id: 'n2', price_per_hour: '2', provider: 'mock', market: 'on-demand' }),
    row('node_terminated', 400, { node_id: 'n1' }),
    row('node_stopped', 500, { node_id: 'n2', details: { stoppedPricePerHour: 0.01 } }),
    row('node_started', 900, { node_id: 'n2', provider: 'mock', market: 'on-demand' }),
    // n3 is still up at the window's end: no "to zero" there.
    row('node_provisioning', 950, { node_id: 'n3', price_per_hour: '1', provider: 'mock', market: 'spot' }),
    row('node_terminated', 1000, { node_id: 'n2' }),
  ];
  const input = structuredClone(rows);
  const t = poolTimeline(rows, 0, 3_600_000);
  assert.deepEqual(rows, input, 'input not mutated');
  assert.deepEqual(
    t.marks.map((m) => [m.at, m.kind, m.detail]),
    [
      [100, 'to_zero', 'no GPU billed'],
      [200, 'cold_start', 'mock spot'],
      [300, 'cold_start', 'mock on-demand'],
      [300, 'lane_move', 'mock spot → mock on-demand'],
      [500, 'to_zero', 'no GPU billed'],
      [900, 'wake', 'mock on-demand'],
      [950, 'cold_start', 'mock spot'],
      [950, 'lane_move', 'mock on-demand → mock spot'],
    ],
  );
});
