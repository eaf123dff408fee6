/** Sums per-app results into per-policy totals and prints them. Pure. */
import type { AppResult } from './simulate';

export interface PolicyTotals {
  policy: string;
  apps: number;
  requests: number;
  costUsd: number;
  idleCostUsd: number;
  nodeHours: number;
  coldStarts: number;
  /** Of the cold starts, wakes from stopped (ladder policies only). */
  wakesWaited?: number;
  coldWaitedRequests: number;
  boots: number;
  scaledToZero: number;
  p50WaitS: number;
  p99WaitS: number;
  /** Cost relative to the named reference policies (1 = the same), where they ran. */
  vsFixed600?: number;
  vsOracle?: number;
}

/** Nearest-rank percentile over `total` values of which only the non-zero ones are listed. */
export function percentileWithZeros(nonZero: number[], total: number, p: number): number {
  if (total === 0) return 0;
  const rank = Math.max(1, Math.ceil((p / 100) * total));
  const zeros = total - nonZero.length;
  if (rank <= zeros) return 0;
  const sorted = [...nonZero].sort((a, b) => a - b);
  return sorted[rank - zeros - 1];
}

export function totalsByPolicy(results: AppResult[]): PolicyTotals[] {
  const byPolicy = new Map<string, AppResult[]>();
  for (const r of results) byPolicy.set(r.policy, [...(byPolicy.get(r.policy) ?? []), r]);
  const totals = [...byPolicy.entries()].map(([policy, rows]): PolicyTotals => {
    const requests = rows.reduce((a, r) => a + r.requests, 0);
    const waits = rows.flatMap((r) => r.waitsMs);
    return {
      policy,
      apps: rows.length,
      requests,
      costUsd: rows.reduce((a, r) => a + r.costUsd, 0),
      idleCostUsd: rows.reduce((a, r) => a + r.idleCostUsd, 0),
      nodeHours: rows.reduce((a, r) => a + r.nodeSeconds, 0) / 3600,
      coldStarts: rows.reduce((a, r) => a + r.coldStarts, 0),
      ...(rows.some((r) => r.wakesWaited !== undefined) ? { wakesWaited: rows.reduce((a, r) => a + (r.wakesWaited ?? 0), 0) } : {}),
      coldWaitedRequests: rows.reduce((a, r) => a + r.coldWaitedRequests, 0),
      boots: rows.reduce((a, r) => a + r.boots, 0),
      scaledToZero: rows.reduce((a, r) => a + r.scaledToZero, 0),
      p50WaitS: percentileWithZeros(waits, requests, 50) / 1000,
      p99WaitS: percentileWithZeros(waits, requests, 99) / 1000,
    };
  });
  const fixed600 = totals.find((t) => t.policy === 'fixed-600s');
  const oracle = totals.find((t) => t.policy === 'oracle');
  for (const t of totals) {
    if (fixed600 && fixed600.costUsd > 0) t.vsFixed600 = t.costUsd / fixed600.costUsd;
    if (oracle && oracle.costUsd > 0) t.vsOracle = t.costUsd / oracle.costUsd;
  }
  return totals;
}

/** A plain-text table (Markdown-compatible, so it can go into the README as printed). */
export function formatTable(title: string, totals: PolicyTotals[]): string {
  const header = [
    'policy',
    'cost $',
    'idle $',
    'vs fixed-600s',
    'vs oracle',
    'cold starts',
    'waited for boot',
    'p50 wait s',
    'p99 wait s',
    'boots',
    'to zero',
  ];
  const ratio = (v?: number) => (v === undefined ? '' : `${v.toFixed(2)}×`);
  const rows = totals.map((t) => [
    t.policy,
    t.costUsd.toFixed(2),
    t.idleCostUsd.toFixed(2),
    ratio(t.vsFixed600),
    ratio(t.vsOracle),
    t.wakesWaited === undefined ? String(t.coldStarts) : `${t.coldStarts} (${t.wakesWaited} wakes)`,
    String(t.coldWaitedRequests),
    t.p50WaitS.toFixed(2),
    t.p99WaitS.toFixed(2),
    String(t.boots),
    String(t.scaledToZero),
  ]);
  return markdownTable(`### ${title}`, header, rows);
}

/** A titled Markdown table with right-aligned figures (the first column left-aligned), as the evaluator prints. */
export function markdownTable(title: string, header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join(' | ')} |`;
  return [
    title,
    '',
    line(header),
    `|${widths.map((w, i) => (i === 0 ? `-${'-'.repeat(w)}-` : `-${'-'.repeat(w)}:`)).join('|')}|`,
    ...rows.map(line),
    '',
  ].join('\n');
}
