/**
 * Healing ledgers that lost a node_terminated row (earlier versions could drop it when a burst cancelled a
 * teardown): a node that has a node_provisioning row, no node_terminated row, is not known to its pool and
 * is held by no provider gets its missing row, marked as reconciled, so analytics stop billing it.
 */
import type { Pool } from 'pg';
import { appendLedgerEvent, type LedgerEvent } from './ledger';
import type { LedgerMarks } from './ledger-marks';
import { splitPoolKey, type PoolKey } from '../ids';

/** A node_terminated row written by reconciliation. */
export interface HealedNode {
  nodeId: string;
  /** Epoch ms written as the end of billing. */
  endedAt: number;
  /** Where that time came from. */
  endSource: 'teardown_started' | 'node_lost' | 'reconcile_time';
}

interface OpenNodeRow {
  node_id: string;
  start_at: Date;
  provider: string;
  market: string | null;
  gpu: string | null;
  price_per_hour: string | null;
  lane_index: string | null;
  teardown_end: Date | null;
  lost_at: Date | null;
}

/**
 * Writes the missing node_terminated rows of a pool. Only nodes of `listedProviders` are considered (a
 * provider this worker could not list might still hold the node). The end of billing is the best time the
 * ledger records: the teardown that included the node (plus its grace period), else the node's loss, else
 * now. The event key is the one the pool itself uses, so the pool's own row and this one can never both land.
 */
export async function healUnterminatedNodes(
  db: Pick<Pool, 'query'>,
  marks: LedgerMarks,
  input: { poolKey: PoolKey; knownNodeIds: string[]; heldNodeIds: string[]; listedProviders: string[]; now: number },
): Promise<HealedNode[]> {
  const { workspaceId, poolName } = splitPoolKey(input.poolKey);
  const open = await db.query<OpenNodeRow>(
    `SELECT p.node_id, p.occurred_at AS start_at, p.provider, p.market, p.gpu, p.price_per_hour, p.details->>'laneIndex' AS lane_index,
            (SELECT max(t.occurred_at + make_interval(secs => coalesce((t.details->>'graceSeconds')::float8, 0)))
               FROM ledger t WHERE t.workspace_id = $1 AND t.pool_id = $2 AND t.event_type = 'teardown_started'
                AND t.details->'nodes' ? p.node_id AND t.occurred_at >= p.occurred_at) AS teardown_end,
            (SELECT max(l.occurred_at) FROM ledger l
              WHERE l.workspace_id = $1 AND l.event_type = 'node_lost' AND l.node_id = p.node_id) AS lost_at
       FROM ledger p
      WHERE p.workspace_id = $1 AND p.pool_id = $2 AND p.event_type = 'node_provisioning'
        AND p.provider = ANY($4::text[]) AND NOT (p.node_id = ANY($3::text[]))
        AND NOT EXISTS (SELECT 1 FROM ledger e WHERE e.workspace_id = $1 AND e.event_type = 'node_terminated' AND e.node_id = p.node_id)`,
    [workspaceId, poolName, [...input.knownNodeIds, ...input.heldNodeIds], input.listedProviders],
  );
  const healed: HealedNode[] = [];
  for (const row of open.rows) {
    const recorded = [row.teardown_end, row.lost_at].filter((d): d is Date => d !== null).map((d) => d.getTime());
    const endedAt = recorded.length > 0 ? Math.max(...recorded) : input.now;
    const endSource: HealedNode['endSource'] =
      recorded.length === 0
        ? 'reconcile_time'
        : row.teardown_end && row.teardown_end.getTime() === endedAt
          ? 'teardown_started'
          : 'node_lost';
    const event: LedgerEvent = {
      eventKey: `${input.poolKey}:${row.node_id}:terminated`,
      eventType: 'node_terminated',
      occurredAt: Math.max(endedAt, row.start_at.getTime()),
      poolId: input.poolKey,
      nodeId: row.node_id,
      ...(row.market && row.gpu && row.price_per_hour !== null
        ? {
            lane: {
              provider: row.provider,
              market: row.market as 'spot' | 'on-demand',
              gpu: row.gpu,
              pricePerHour: Number(row.price_per_hour),
            },
          }
        : {}),
      details: {
        reason: 'reconciled: the provider no longer holds the node and its terminated row was missing',
        reconciled: true,
        endSource,
        laneIndex: row.lane_index === null ? undefined : Number(row.lane_index),
        billedSeconds: (Math.max(endedAt, row.start_at.getTime()) - row.start_at.getTime()) / 1000,
      },
    };
    if (await appendLedgerEvent(db, event, marks)) healed.push({ nodeId: row.node_id, endedAt: event.occurredAt, endSource });
  }
  return healed;
}
