/** Sums the gap replay's per-app results per policy and prints the ladder table. Pure. */
import type { GapPolicy, GapResult } from './gap-replay';
import { markdownTable } from './report';

export interface GapTotals {
  policy: GapPolicy;
  costUsd: number;
  coldStarts: number;
  wakesFromStopped: number;
  wakesFromSleeping: number;
  meanWaitS: number;
  p99WaitS: number;
  vsFixed600?: number;
  vsOracle?: number;
  vsLadderOracle?: number;
}

function percentile(values: number[], p: number): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)];
}

export function gapTotals(results: GapResult[]): GapTotals[] {
  const byPolicy = new Map<GapPolicy, GapResult[]>();
  for (const r of results) byPolicy.set(r.policy, [...(byPolicy.get(r.policy) ?? []), r]);
  const totals = [...byPolicy.entries()].map(([policy, rows]): GapTotals => {
    const waits = rows.flatMap((r) => r.waitsS);
    return {
      policy,
      costUsd: rows.reduce((a, r) => a + r.costUsd, 0),
      coldStarts: rows.reduce((a, r) => a + r.coldStarts, 0),
      wakesFromStopped: rows.reduce((a, r) => a + (r.wakes.stopped ?? 0), 0),
      wakesFromSleeping: rows.reduce((a, r) => a + (r.wakes.sleeping ?? 0), 0),
      meanWaitS: waits.length === 0 ? 0 : waits.reduce((a, b) => a + b, 0) / waits.length,
      p99WaitS: percentile(waits, 99),
    };
  });
  const cost = (name: GapPolicy) => totals.find((t) => t.policy === name)?.costUsd;
  const fixed = cost('fixed-600s');
  const oracle = cost('oracle');
  const ladderOracle = cost('oracle-ladder');
  for (const t of totals) {
    if (fixed) t.vsFixed600 = t.costUsd / fixed;
    if (oracle) t.vsOracle = t.costUsd / oracle;
    if (ladderOracle) t.vsLadderOracle = t.costUsd / ladderOracle;
  }
  return totals;
}

/** A Markdown table, as printed. */
export function formatLadderTable(title: string, totals: GapTotals[]): string {
  const header = [
    'policy (gap replay)',
    'cost $',
    'vs fixed-600s',
    'vs oracle',
    'vs ladder oracle',
    'cold starts',
    'from stopped',
    'from sleeping',
    'mean wait s',
    'p99 wait s',
  ];
  const ratio = (v?: number) => (v === undefined ? '' : `${v.toFixed(2)}×`);
  const rows = totals.map((t) => [
    t.policy,
    t.costUsd.toFixed(2),
    ratio(t.vsFixed600),
    ratio(t.vsOracle),
    ratio(t.vsLadderOracle),
    String(t.coldStarts),
    String(t.wakesFromStopped),
    String(t.wakesFromSleeping),
    t.meanWaitS.toFixed(1),
    t.p99WaitS.toFixed(1),
  ]);
  return markdownTable(`#### ${title}: the warm-state ladder`, header, rows);
}
