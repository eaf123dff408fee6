/**
 * The pool entity workflow, registered as `poolWorkflowV2` (POOL_WORKFLOW_TYPE in src/ids.ts: running pools and
 * recorded histories carry that type, so the name stays): an interpreter over the pure pool state machine
 * (src/domain/pool-machine.ts). Handlers only post events; the loop feeds each event to `stepPool` and runs
 * the commands it returns. Every command reports back as an event, success or failure, so no activity
 * failure can fail a workflow task, and no coroutine but the loop ever changes the state.
 */
import {
  allHandlersFinished,
  CancellationScope,
  condition,
  ApplicationFailure,
  continueAsNew,
  getExternalWorkflowHandle,
  log,
  patched,
  proxyActivities,
  setHandler,
  sleep,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../activities';
import { PlacementTraces } from './placement-traces';
import { jobWorkflowId, nodeId as makeNodeId, type PoolKey } from '../ids';
import { validatePoolConfig } from '../domain/pool-config-check';
import { newPoolState, stepPool } from '../domain/pool-machine';
import type { PoolCommand, PoolEvent, PoolReply } from '../domain/pool-protocol';
import { describePlan, planPreemptions, type PreemptionCheck } from '../domain/preemption';
import { toPoolView } from '../domain/pool-view';
import { type LeaseAnswer, validateLeaseExchange } from '../domain/slot-leases';
import type { PoolConfig, PoolState, PoolView } from '../domain/types';
import { BOOKKEEPING_ACTIVITY, BOOT_WAIT_ACTIVITY, PROVIDER_CALL_ACTIVITY, WAKE_FROM_SLEEP_ACTIVITY } from './activity-options';
import {
  drainPoolUpdate,
  exchangeLeasesUpdate,
  jobArrivedSignal,
  jobFinishedSignal,
  jobPlacedSignal,
  jobPreemptSignal,
  jobRevokedSignal,
  jobWithdrawnSignal,
  jobsWithdrawnSignal,
  poolStateQuery,
  preemptionCheckQuery,
  preemptNowUpdate,
  resumePoolUpdate,
  scaleToZeroUpdate,
  stopPoolUpdate,
  updatePoolConfigUpdate,
  warmPoolUpdate,
} from './messages';

/** Input of the pool workflow: a fresh config, or the state carried over by continue-as-new. */
export interface PoolWorkflowInput {
  /** The pool key. */
  poolId: PoolKey;
  config: PoolConfig;
  state?: PoolState;
}

const provisioning = proxyActivities<Activities>(PROVIDER_CALL_ACTIVITY);
const booting = proxyActivities<Activities>(BOOT_WAIT_ACTIVITY);
/** A wake from sleep reloads the weights (seconds to a minute): longer than a provider call, no heartbeat needed. */
const waking = proxyActivities<Activities>(WAKE_FROM_SLEEP_ACTIVITY);
const bookkeeping = proxyActivities<Activities>(BOOKKEEPING_ACTIVITY);

/** Commands whose result continue-as-new waits for: redoing them in the next run would lose or repeat work. */
const SETTLE_BEFORE_CONTINUE: ReadonlySet<PoolCommand['type']> = new Set([
  'provision',
  'terminate',
  'stop',
  'start',
  'sleep',
  'wake',
  'reconcile',
  'tellJob',
  'recordLedger',
]);

/** The pool workflow. */
export async function poolEntityWorkflow(input: PoolWorkflowInput): Promise<void> {
  let state: PoolState = input.state ?? newPoolState(input.poolId, input.config);
  // A new pool's node ids carry its incarnation (the random tail of its first run's id: UUIDv7 run ids begin
  // with the time); runs recorded before this replay without one.
  if (!input.state && patched('pool-incarnation'))
    state = { ...state, incarnation: workflowInfo().firstExecutionRunId.replace(/-/g, '').slice(-8) };
  const poolId = state.poolId;
  // `started` goes first: signals that came with the run's first task are delivered as soon as their handler
  // is registered, and the machine must see the start (which forgets the last run's calls) before them.
  // Lane moves came after runs were recorded: those replay without them (and take them on at their next run).
  const laneMoves = patched('lane-moves');
  // Scale-in (nodes above the last keep-alive window's need retire) likewise.
  const scaleIn = patched('scale-in');
  const inbox: Array<{ event: PoolEvent; ticket?: number }> = [{ event: { type: 'started', laneMoves, scaleIn } }];
  /** Answers to operators' updates by ticket: the pool's view once the machine took the event, and its reply if any. */
  const replies: Record<number, { view: PoolView; reply?: PoolReply }> = {};
  let tickets = 0;
  let wakeAt: number | undefined;
  let settling = 0;

  const post = (event: PoolEvent) => {
    inbox.push({ event });
  };
  /** Posts an operator's event and answers once the machine has taken it. */
  const ask = async (event: PoolEvent): Promise<{ view: PoolView; reply?: PoolReply }> => {
    const ticket = ++tickets;
    inbox.push({ event, ticket });
    await condition(() => ticket in replies);
    const answer = replies[ticket]!;
    delete replies[ticket];
    return answer;
  };
  const askView = async (event: PoolEvent): Promise<PoolView> => (await ask(event)).view;
  const view = (): PoolView => toPoolView(state, state.teardown !== undefined, Date.now());

  const placementTraces = new PlacementTraces();
  setHandler(jobArrivedSignal, (arrival) => {
    placementTraces.arrived(arrival.jobId);
    post({ type: 'jobArrived', arrival });
  });
  setHandler(jobFinishedSignal, ({ jobId, attempt }) => post({ type: 'jobFinished', jobId, attempt }));
  setHandler(jobWithdrawnSignal, ({ jobId }) => {
    placementTraces.forget(jobId);
    post({ type: 'jobWithdrawn', jobId });
  });
  setHandler(jobsWithdrawnSignal, ({ jobIds }) => {
    for (const jobId of jobIds) placementTraces.forget(jobId);
    post({ type: 'jobsWithdrawn', jobIds });
  });
  setHandler(poolStateQuery, view);
  setHandler(preemptionCheckQuery, () => describePlan(state, planPreemptions(state, Date.now())));
  setHandler(updatePoolConfigUpdate, (config) => askView({ type: 'configChanged', config }), {
    validator: (config) => validatePoolConfig(config, state.config),
  });
  setHandler(drainPoolUpdate, () => askView({ type: 'drainRequested' }));
  setHandler(resumePoolUpdate, () => askView({ type: 'resumeRequested' }));
  setHandler(scaleToZeroUpdate, () => askView({ type: 'scaleToZeroRequested' }));
  setHandler(
    preemptNowUpdate,
    async (): Promise<PreemptionCheck> =>
      ((await ask({ type: 'preemptRequested' })).reply as PreemptionCheck | undefined) ??
      describePlan(state, planPreemptions(state, Date.now())),
  );
  setHandler(exchangeLeasesUpdate, async (exchange) => (await ask({ type: 'leasesExchanged', exchange })).reply as LeaseAnswer, {
    validator: validateLeaseExchange,
  });
  setHandler(warmPoolUpdate, ({ nodes }) => askView({ type: 'warmRequested', nodes }), {
    validator: ({ nodes }) => {
      if (!Number.isInteger(nodes) || nodes < 1) throw new Error('nodes must be a positive integer');
      if (state.draining) throw new Error('the pool is draining: resume it first');
    },
  });
  setHandler(
    stopPoolUpdate,
    async ({ drainTimeoutSeconds, then, onlyIfIdle }) => {
      const answer = await ask({ type: 'stopRequested', drainTimeoutSeconds, then, ...(onlyIfIdle ? { onlyIfIdle } : {}) });
      if (answer.reply && 'stopRefused' in answer.reply) throw ApplicationFailure.nonRetryable(answer.reply.stopRefused, 'PoolBusy');
      return answer.view;
    },
    {
      validator: ({ drainTimeoutSeconds, then }) => {
        if (!(drainTimeoutSeconds >= 0 && drainTimeoutSeconds <= 24 * 3600))
          throw new Error('drainTimeoutSeconds must be between 0 and 86400');
        if (then !== 'idle' && then !== 'warm') throw new Error('then must be idle or warm');
      },
    },
  );

  /** Runs one command; whatever happens, it ends by posting an event (never by throwing). */
  async function execute(command: PoolCommand): Promise<PoolEvent | undefined> {
    switch (command.type) {
      case 'provision': {
        const result = await provisioning.provisionNode({ poolId, ...command });
        return {
          type: 'nodeProvisioned',
          command,
          url: result.url,
          laneIndex: result.laneIndex,
          ...(result.price ? { price: result.price } : {}),
        };
      }
      case 'waitReady': {
        const result = await booting.waitNodeReady({
          poolId,
          nodeId: command.nodeId,
          lane: command.lane,
          ...(command.rung ? { rung: command.rung } : {}),
        });
        return { type: 'nodeReady', command, url: result.url };
      }
      case 'terminate':
        await provisioning.terminateNode({ poolId, nodeId: command.nodeId, lane: command.lane });
        return { type: 'nodeTerminated', command };
      case 'stop':
        await provisioning.stopNode({ poolId, nodeId: command.nodeId, lane: command.lane });
        return { type: 'nodeStopped', command };
      case 'start': {
        const result = await provisioning.startNode({ poolId, nodeId: command.nodeId, lane: command.lane });
        return { type: 'nodeStarted', command, url: result.url };
      }
      case 'sleep':
        await provisioning.sleepNode({ poolId, nodeId: command.nodeId, lane: command.lane, url: command.url });
        return { type: 'nodeSlept', command };
      case 'wake':
        await waking.wakeNode({ poolId, nodeId: command.nodeId, lane: command.lane, url: command.url });
        return { type: 'nodeWoke', command };
      case 'checkHealth':
        return { type: 'healthChecked', statuses: await bookkeeping.checkNodes({ poolId, nodes: command.nodes }) };
      case 'reconcile': {
        const removed = await bookkeeping.reconcileNodes({ poolId, providers: command.providers, knownNodeIds: command.knownNodeIds });
        return { type: 'reconciled', removed };
      }
      case 'recordLedger':
        await bookkeeping.recordLedgerEvent({ ...command.row, eventKey: `${poolId}:${command.row.key}`, poolId });
        return { type: 'ledgerRecorded', key: command.row.key };
      case 'tellJob': {
        const job = getExternalWorkflowHandle(jobWorkflowId(command.jobId));
        const message = command.message;
        if (message.kind === 'placed') {
          const { grant } = message;
          const attributes = {
            'zeropool.pool': poolId,
            'zeropool.job': command.jobId,
            'zeropool.node': grant.nodeId,
            'zeropool.slot': grant.slot,
            'zeropool.cold_start_ms': grant.coldStartMs,
          };
          await placementTraces.placed(command.jobId, attributes, () => job.signal(jobPlacedSignal, grant));
        } else if (message.kind === 'revoked') await job.signal(jobRevokedSignal, { attempt: message.attempt, reason: message.reason });
        else await job.signal(jobPreemptSignal, { attempt: message.attempt, reason: message.reason, byJobId: message.byJobId });
        return { type: 'jobTold', jobId: command.jobId };
      }
      case 'log':
        log[command.level](command.message, { poolId, ...command.fields });
        return undefined;
    }
  }

  function run(command: PoolCommand): void {
    if (command.type === 'log') {
      void execute(command);
      return;
    }
    const settles = SETTLE_BEFORE_CONTINUE.has(command.type);
    if (settles) settling += 1;
    // Nothing new work does may cancel a provider call or a ledger write halfway.
    void CancellationScope.nonCancellable(() => execute(command))
      .then((event) => event && post(event))
      .catch((err: unknown) => post({ type: 'commandFailed', command, error: errorText(err) }))
      .finally(() => {
        if (settles) settling -= 1;
      });
  }

  const readyToContinueAsNew = () => workflowInfo().continueAsNewSuggested && settling === 0 && inbox.length === 0;

  // Timers are never cancelled: a timer is started only when none is due at or before the machine's next
  // wake-up, and one that fires for a deadline that has moved is a harmless extra `timerFired`. Cancelling a
  // timer on every event would add two history events per event (and the time-skipping test server refuses
  // a task that cancels a timer that fired meanwhile: temporalio/sdk-java#3088).
  const timersDue: number[] = [];
  const armTimer = (at: number | undefined) => {
    if (at === undefined || timersDue.some((due) => due <= at)) return;
    timersDue.push(at);
    void sleep(Math.max(1, at - Date.now())).then(
      () => {
        timersDue.splice(timersDue.indexOf(at), 1);
        post({ type: 'timerFired' });
      },
      // Only a cancellation of the whole workflow rejects a timer; the main loop ends the run then.
      () => undefined,
    );
  };

  for (;;) {
    armTimer(wakeAt);
    await condition(() => inbox.length > 0 || readyToContinueAsNew());
    while (inbox.length > 0) {
      const { event, ticket } = inbox.shift()!;
      const result = stepPool(state, event, Date.now(), makeNodeId);
      state = result.state;
      wakeAt = result.wakeAt;
      if (ticket !== undefined) replies[ticket] = { view: view(), ...(result.reply ? { reply: result.reply } : {}) };
      for (const command of result.commands) run(command);
    }
    if (readyToContinueAsNew()) {
      // An update that arrives meanwhile waits for the loop, so the loop must not wait for it: take it first.
      await condition(() => allHandlersFinished() || inbox.length > 0);
      if (inbox.length === 0) await continueAsNew<typeof poolEntityWorkflow>({ poolId, config: state.config, state });
    }
  }
}

/** The message of an activity failure (its cause's, where there is one). */
function errorText(err: unknown): string {
  const cause = (err as { cause?: unknown }).cause;
  return String(cause instanceof Error ? cause.message : err instanceof Error ? err.message : err);
}
