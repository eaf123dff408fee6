/** Node lifecycle activities: provision, wait for health, check health, terminate, reconcile orphans. */
import { ApplicationFailure, Context } from '@temporalio/activity';
import type { Lane } from '../domain/types';
import type { Pool } from 'pg';
import type { Logger } from 'pino';
import { healUnterminatedNodes } from '../db/ledger-heal';
import type { LedgerMarks } from '../db/ledger-marks';
import type { BootProgress } from '../domain/pool-protocol';
import { AuthFailedError, CapacityUnavailableError, InvalidRequestError, type NodeStatus, type Provider } from './providers/provider';
import type { PoolKey } from '../ids';
import type { NodeSecrets } from '../secrets/node-secrets';
import { checkModelServer } from './providers/model-server-health';
import { SleepRefusedError, sleepModelServer, wakeModelServer } from './providers/model-server-sleep';
import { observeColdStartPhase } from '../metrics';
import type { ProviderPrice } from '../domain/pool-protocol';

/** Dependencies of the node activities. */
export interface NodeActivityDeps {
  providers: Record<string, Provider>;
  logger: Logger;
  /** Interval of the provider's describe while a node boots (each is a call to its API). */
  healthPollMs?: number;
  /**
   * Interval of probing a booting node's model server directly, once its provider says the machine runs (a
   * request to the node, not to the provider's API): how late after its boot a node is seen ready.
   */
  readyProbeMs?: number;
  /** Each node's bearer secret, sent with the direct probe as with every call to the node. */
  secrets?: NodeSecrets;
  /** The ledger and its writer's marks, to heal missing node_terminated rows during reconciliation (absent: no healing). */
  ledger?: { db: Pool; marks: LedgerMarks };
}

/** Input naming one node. */
export interface NodeRef {
  poolId: PoolKey;
  nodeId: string;
  lane: Lane;
}

/** Builds the node activities over the given providers. */
export function createNodeActivities(deps: NodeActivityDeps) {
  const pollMs = deps.healthPollMs ?? 500;
  const probeMs = Math.min(pollMs, deps.readyProbeMs ?? 50);

  function providerFor(lane: Lane): Provider {
    const provider = deps.providers[lane.provider];
    if (!provider) throw ApplicationFailure.nonRetryable(`provider ${lane.provider} is not configured`, 'InvalidRequest');
    return provider;
  }

  return {
    /** Asks the lane's provider for a node; idempotent by node id. CapacityUnavailable is not retried here. */
    async provisionNode(
      input: NodeRef & { model: string; laneIndex: number },
    ): Promise<{ url: string; laneIndex: number; price?: ProviderPrice }> {
      const log = deps.logger.child({ poolId: input.poolId, nodeId: input.nodeId, lane: input.laneIndex });
      const calledAt = Date.now();
      try {
        const node = await providerFor(input.lane).provision(input);
        observeColdStartPhase(input.poolId, input.lane.provider, 'cold', 'provider', (Date.now() - calledAt) / 1000);
        log.info({ url: node.url }, 'node provisioned');
        return { url: node.url, laneIndex: node.laneIndex, ...(node.price ? { price: node.price } : {}) };
      } catch (err) {
        if (err instanceof CapacityUnavailableError) {
          log.warn({ reason: err.message }, 'lane has no capacity');
          throw ApplicationFailure.nonRetryable(err.message, 'CapacityUnavailable');
        }
        if (err instanceof AuthFailedError || err instanceof InvalidRequestError) {
          throw ApplicationFailure.nonRetryable(err.message, err.name);
        }
        throw err;
      }
    },

    /**
     * Waits until the node answers healthy, heartbeating; fails if it disappears. The provider is asked every
     * `pollMs`; between its answers, a machine that runs but whose model server is not up yet is probed directly
     * every `probeMs`, so the node is placed within `probeMs` of its model server coming up.
     */
    async waitNodeReady(input: NodeRef & { rung?: 'stopped' }): Promise<{ url: string }> {
      const provider = providerFor(input.lane);
      const ctx = Context.current();
      const waitedFrom = Date.now();
      const ready = (url: string) => {
        observeColdStartPhase(input.poolId, input.lane.provider, input.rung ?? 'cold', 'boot', (Date.now() - waitedFrom) / 1000);
        return { url };
      };
      for (;;) {
        const status = await provider.describe(input.poolId, input.nodeId);
        if (!status.exists) throw ApplicationFailure.nonRetryable(`node vanished while booting: ${status.reason}`, 'NodeLost');
        if (status.healthy && status.url) return ready(status.url);
        // The pool's API view shows this as the node's boot progress (src/api/pool-workflows.ts).
        ctx.heartbeat({ nodeId: input.nodeId, reason: status.reason } satisfies BootProgress);
        const describeAgainAt = Date.now() + pollMs;
        const server = status.modelServer;
        if (!server) {
          await ctx.sleep(pollMs);
          continue;
        }
        while (Date.now() < describeAgainAt) {
          await ctx.sleep(probeMs);
          const probe = await checkModelServer(input.nodeId, server.url, server.healthPath, {
            secrets: deps.secrets,
            timeoutMs: Math.max(probeMs, 1000),
          });
          if (probe.healthy) return ready(server.url);
          ctx.heartbeat({ nodeId: input.nodeId, reason: probe.reason } satisfies BootProgress);
        }
      }
    },

    /** One health check of each given node (describe at its provider). */
    async checkNodes(input: { poolId: PoolKey; nodes: Array<{ nodeId: string; lane: Lane }> }): Promise<NodeStatus[]> {
      return Promise.all(
        input.nodes.map(async ({ nodeId, lane }) => {
          try {
            // The probe address is for the readiness wait; the pool's history needs only the verdict.
            const { modelServer: _probe, ...status } = await providerFor(lane).describe(input.poolId, nodeId);
            return status;
          } catch (err) {
            return { nodeId, exists: true, healthy: false, reason: `describe failed: ${(err as Error).message}` };
          }
        }),
      );
    },

    /** Stops a node, keeping its disk (the stopped rung); a provider that cannot is told at once, not retried. */
    async stopNode(input: NodeRef): Promise<void> {
      const provider = providerFor(input.lane);
      if (!provider.stop) throw ApplicationFailure.nonRetryable(`provider ${provider.name} cannot stop nodes`, 'InvalidRequest');
      await provider.stop(input.poolId, input.nodeId);
      deps.logger.info({ poolId: input.poolId, nodeId: input.nodeId }, 'node stopped (disk kept)');
    },

    /** Starts a stopped node again; no capacity for it is final here (the pool creates a fresh node instead). */
    async startNode(input: NodeRef): Promise<{ url: string }> {
      const provider = providerFor(input.lane);
      if (!provider.start) throw ApplicationFailure.nonRetryable(`provider ${provider.name} cannot start stopped nodes`, 'InvalidRequest');
      const calledAt = Date.now();
      try {
        const started = await provider.start(input.poolId, input.nodeId);
        observeColdStartPhase(input.poolId, input.lane.provider, 'stopped', 'provider', (Date.now() - calledAt) / 1000);
        deps.logger.info({ poolId: input.poolId, nodeId: input.nodeId, url: started.url }, 'stopped node started');
        return { url: started.url };
      } catch (err) {
        if (err instanceof CapacityUnavailableError || err instanceof InvalidRequestError) {
          deps.logger.warn({ poolId: input.poolId, nodeId: input.nodeId, reason: err.message }, 'stopped node cannot start');
          throw ApplicationFailure.nonRetryable(err.message, err.name);
        }
        throw err;
      }
    },

    /** Puts a node's model server to sleep (the sleeping rung); a refusal is final (the pool terminates the node instead). */
    async sleepNode(input: NodeRef & { url: string }): Promise<void> {
      try {
        await sleepModelServer(input.nodeId, input.url, { secrets: deps.secrets });
      } catch (err) {
        if (err instanceof SleepRefusedError) throw ApplicationFailure.nonRetryable(err.message, err.name);
        throw err;
      }
      deps.logger.info({ poolId: input.poolId, nodeId: input.nodeId }, 'model server asleep (VRAM freed)');
    },

    /** Wakes a sleeping node's model server; a refusal is final (the pool terminates it and creates a fresh node). */
    async wakeNode(input: NodeRef & { url: string }): Promise<void> {
      const calledAt = Date.now();
      try {
        await wakeModelServer(input.nodeId, input.url, { secrets: deps.secrets });
      } catch (err) {
        deps.logger.warn({ poolId: input.poolId, nodeId: input.nodeId, reason: (err as Error).message }, 'sleeping node did not wake');
        if (err instanceof SleepRefusedError) throw ApplicationFailure.nonRetryable(err.message, err.name);
        throw err;
      }
      observeColdStartPhase(input.poolId, input.lane.provider, 'sleeping', 'boot', (Date.now() - calledAt) / 1000);
      deps.logger.info({ poolId: input.poolId, nodeId: input.nodeId }, 'model server awake');
    },

    /** Terminates a node; a node already gone is fine. */
    async terminateNode(input: NodeRef): Promise<void> {
      await providerFor(input.lane).terminate(input.poolId, input.nodeId);
      deps.logger.info({ poolId: input.poolId, nodeId: input.nodeId }, 'node terminated');
    },

    /**
     * Terminates nodes a provider holds for the pool that the pool does not know (left by a crash), then
     * writes the node_terminated row of any node the ledger still bills that no provider holds any more.
     */
    async reconcileNodes(input: { poolId: PoolKey; providers: string[]; knownNodeIds: string[] }): Promise<string[]> {
      const known = new Set(input.knownNodeIds);
      const removed: string[] = [];
      const held: string[] = [];
      const listed: string[] = [];
      for (const name of input.providers) {
        const provider = deps.providers[name];
        if (!provider) continue;
        let ids: string[];
        try {
          ids = await provider.list(input.poolId);
        } catch (err) {
          // One provider that cannot list (refused key, outage) must not hold up the pool: provisioning waits
          // for reconciliation. Its nodes are neither removed nor healed this round (it is not in `listed`).
          deps.logger.warn(
            { poolId: input.poolId, provider: name, err: (err as Error).message },
            'reconciliation could not list a provider',
          );
          continue;
        }
        for (const id of ids) {
          if (known.has(id)) {
            held.push(id);
            continue;
          }
          try {
            await provider.terminate(input.poolId, id);
            removed.push(id);
            deps.logger.warn({ poolId: input.poolId, nodeId: id }, 'orphaned node terminated');
          } catch (err) {
            // Still held: found again at the next reconciliation.
            held.push(id);
            deps.logger.warn(
              { poolId: input.poolId, nodeId: id, err: (err as Error).message },
              'orphaned node could not be terminated yet',
            );
          }
        }
        listed.push(name);
      }
      if (deps.ledger) {
        const healed = await healUnterminatedNodes(deps.ledger.db, deps.ledger.marks, {
          poolKey: input.poolId,
          knownNodeIds: input.knownNodeIds,
          heldNodeIds: held,
          listedProviders: listed,
          now: Date.now(),
        });
        for (const node of healed)
          deps.logger.warn(
            { poolId: input.poolId, nodeId: node.nodeId, endedAt: node.endedAt, endSource: node.endSource },
            'missing node_terminated row written by reconciliation',
          );
      }
      return removed;
    },
  };
}
