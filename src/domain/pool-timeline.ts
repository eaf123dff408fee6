/**
 * A pool's recent day from its ledger: nodes billed (provisioning → terminated, open ones up to now; a stopped
 * node is not counted while stopped, and its disk is billed at its stopped price) and
 * requests running (the run intervals every job and front-door row carries), as step points for a chart, with
 * the node time and its cost in the window, and marks for what a reader looks for: each cold start (a node
 * asked for), each wake of a stopped node, each time the pool reached zero GPUs billed, each move to another
 * lane (a node asked for on another provider or market than the one before). Pure.
 */

/** The ledger fields the timeline reads. */
export interface TimelineRow {
  event_type: string;
  occurred_at: Date;
  node_id: string | null;
  price_per_hour: string | null;
  details: Record<string, unknown>;
  provider?: string | null;
  market?: string | null;
}

export type TimelineMarkKind = 'cold_start' | 'wake' | 'to_zero' | 'lane_move';

export interface TimelineMark {
  /** Seconds since `from`. */
  at: number;
  kind: TimelineMarkKind;
  /** The node's lane (`mock spot`), or for a move `mock spot → mock on-demand`. */
  detail: string;
}

export interface PoolTimeline {
  /** [seconds since `from`, nodes billed, requests running] at every change. */
  points: Array<[number, number, number]>;
  peakNodes: number;
  requests: number;
  nodeHours: number;
  costUsd: number;
  /** In time order. */
  marks: TimelineMark[];
}

const JOB_EVENTS = new Set(['job_completed', 'job_failed', 'job_expired', 'job_cancelled']);

export function poolTimeline(rows: TimelineRow[], from: number, to: number): PoolTimeline {
  // +1/-1 changes of each series, clipped to the window.
  const changes: Array<{ at: number; nodes: number; running: number }> = [];
  /** Each open node: since when it runs at its GPU price, or since when it is stopped at its stopped price. */
  const opened = new Map<string, { at: number; price: number; stopped?: { at: number; price: number } }>();
  let nodeMs = 0;
  let costUsd = 0;
  const closeNode = (start: { at: number; price: number; stopped?: { at: number; price: number } }, end: number) => {
    if (start.stopped) {
      const a = Math.max(from, start.stopped.at);
      const b = Math.min(to, end);
      if (b > a) costUsd += ((b - a) / 3_600_000) * start.stopped.price;
      return;
    }
    const a = Math.max(from, start.at);
    const b = Math.min(to, end);
    if (b <= a) return;
    changes.push({ at: a, nodes: 1, running: 0 }, { at: b, nodes: -1, running: 0 });
    nodeMs += b - a;
    costUsd += ((b - a) / 3_600_000) * start.price;
  };
  let requests = 0;
  const marks: TimelineMark[] = [];
  const mark = (at: number, kind: TimelineMarkKind, detail: string) => {
    if (at >= from && at <= to) marks.push({ at: (at - from) / 1000, kind, detail });
  };
  /** Nodes billed at their GPU price now (counted from before the window too), and the last lane asked for. */
  let gpuNodes = 0;
  let lastLane: string | undefined;
  const gpuNodeGone = (at: number) => {
    gpuNodes -= 1;
    if (gpuNodes === 0) mark(at, 'to_zero', 'no GPU billed');
  };
  for (const row of rows) {
    const at = row.occurred_at.getTime();
    if (row.event_type === 'node_provisioning' && row.node_id) {
      opened.set(row.node_id, { at, price: Number(row.price_per_hour ?? 0) });
      gpuNodes += 1;
      const lane = [row.provider, row.market].filter(Boolean).join(' ');
      mark(at, 'cold_start', lane);
      if (lastLane !== undefined && lane !== lastLane) mark(at, 'lane_move', `${lastLane} → ${lane}`);
      lastLane = lane;
    } else if ((row.event_type === 'node_stopped' || row.event_type === 'node_slept') && row.node_id) {
      // Stopped or asleep: off the GPU price (a sleeping node's price is what its lane states for sleep).
      const start = opened.get(row.node_id);
      if (start && !start.stopped) {
        closeNode(start, at);
        start.stopped = { at, price: Number(row.details.stoppedPricePerHour ?? row.details.sleepingPricePerHour ?? 0) };
        gpuNodeGone(at);
      }
    } else if ((row.event_type === 'node_started' || row.event_type === 'node_woke') && row.node_id) {
      const start = opened.get(row.node_id);
      if (start?.stopped) {
        closeNode(start, at);
        start.stopped = undefined;
        start.at = at;
        gpuNodes += 1;
        const lane = [row.provider, row.market].filter(Boolean).join(' ');
        mark(at, 'wake', row.event_type === 'node_woke' ? `${lane} (from sleep)` : lane);
      }
    } else if (row.event_type === 'node_terminated' && row.node_id) {
      const start = opened.get(row.node_id);
      if (start) {
        closeNode(start, at);
        if (!start.stopped) gpuNodeGone(at);
      }
      opened.delete(row.node_id);
    } else if (JOB_EVENTS.has(row.event_type)) {
      const runs = Array.isArray(row.details.runs) ? (row.details.runs as Array<{ startedAt?: unknown; endedAt?: unknown }>) : [];
      let counted = false;
      for (const run of runs) {
        const a = Math.max(from, Number(run.startedAt));
        const b = Math.min(to, Number(run.endedAt));
        if (!Number.isFinite(a) || !Number.isFinite(b) || b < a) continue;
        changes.push({ at: a, nodes: 0, running: 1 }, { at: b, nodes: 0, running: -1 });
        counted = true;
      }
      if (counted) requests += 1;
    }
  }
  for (const start of opened.values()) closeNode(start, to);
  changes.sort((x, y) => x.at - y.at || x.nodes + x.running - (y.nodes + y.running));
  const points: Array<[number, number, number]> = [];
  let nodes = 0;
  let running = 0;
  let peakNodes = 0;
  for (const change of changes) {
    nodes += change.nodes;
    running += change.running;
    peakNodes = Math.max(peakNodes, nodes);
    const point: [number, number, number] = [(change.at - from) / 1000, nodes, running];
    const last = points[points.length - 1];
    if (last && last[0] === point[0]) points[points.length - 1] = point;
    else points.push(point);
  }
  marks.sort((a, b) => a.at - b.at);
  return { points, peakNodes, requests, nodeHours: nodeMs / 3_600_000, costUsd, marks };
}
