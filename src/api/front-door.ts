/**
 * The OpenAI-compatible front door's engine: parks a request in its pool (a request workflow holds its place
 * and later its slot), keeps a streaming client's connection alive while capacity cold-starts, then runs the
 * request against the node itself and streams the answer straight through (never through Temporal), retries
 * on another node when one fails before answering, and reports the end so the slot goes back and the ledger
 * gets the request's row.
 */
import { randomUUID } from 'node:crypto';
import type { Request, Response } from 'express';
import type { Logger } from 'pino';
import { type WorkflowHandle, WorkflowUpdateFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { type NodeSecrets, nodeAuthHeaders } from '../secrets/node-secrets';
import { REQUEST_RENEW_MS, type RequestInput, type RequestOutcome, requestLedgerRow } from '../domain/front-door-protocol';
import { type CapacityEta, capacityEta, waitingComment } from '../domain/capacity-eta';
import { DEFAULT_PRIORITY } from '../domain/placement';
import type { PlacementGrant, PoolConfig } from '../domain/types';
import { jobWorkflowId, type PoolKey, splitPoolKey, workspacePriority } from '../ids';
import { cancelJobSignal, requestAliveSignal, requestDoneSignal, requestSlotUpdate } from '../workflows/messages';
import type { requestWorkflow } from '../workflows/request';
import type { ApiContext } from './context';
import { ApiError } from './errors';
import type { LeaseBook } from './lease-book';
import type { LedgerBatch } from './ledger-batch';
import { poolView } from './pool-workflows';
import type { AbandonedRequests } from './abandoned-requests';
import { type NodeAnswer, postToNode, readText } from './node-call';
import { usageInText } from './answer-usage';

/** A streaming client hears from us at least this often while it waits for its first token. */
export const SSE_COMMENT_INTERVAL_MS = 5000;
/** A streaming response commits its headers once placed or after this long, whichever is first. */
const COMMIT_HEADERS_AFTER_MS = 1000;
/** How long one answer of a pool's ETA serves its parked streams. */
const ETA_TTL_MS = 2000;
/** An abandoned request this close to its park deadline is told to end rather than terminated (see abandonParked). */
const ABANDON_DEADLINE_MARGIN_MS = 5000;

/** One OpenAI route: where it goes on the node. */
export interface OpenAiRoute {
  /** `chat.completions`, `completions`, `embeddings`. */
  name: string;
  nodePath: string;
  /** Whether it can stream. */
  streams: boolean;
}

/** What a request needs from its pool. */
export interface TargetPool {
  key: PoolKey;
  config: PoolConfig;
  /** The workspace's parked-request quota (null: none); asked only when a request is about to park. */
  workspaceMaxParked?: () => Promise<number | null>;
}

export class FrontDoor {
  /** Parked requests per pool in this API process (the parking bound). */
  private readonly parked = new Map<string, number>();
  /** Parked requests per workspace in this API process (the workspace's maxParkedRequests quota). */
  private readonly parkedByWorkspace = new Map<string, number>();

  constructor(
    private readonly ctx: ApiContext,
    private readonly secrets?: NodeSecrets,
    /** The warm fast path (absent: every request takes the workflow path). */
    private readonly fast?: { leases: LeaseBook; ledger: LedgerBatch; abandoned: AbandonedRequests },
  ) {}

  /** A fast-path request's ledger row: the same shape as the request workflow writes, in the next batch. */
  private recordFastPath(requestId: string, poolId: PoolKey, route: OpenAiRoute, outcome: RequestOutcome): void {
    this.fast?.ledger.add(
      requestLedgerRow({
        requestId,
        poolId,
        route: route.name,
        status: outcome.status,
        finishedAt: outcome.finishedAt,
        attempt: 1,
        nodeId: outcome.nodeId,
        startedAt: outcome.startedAt,
        usage: outcome.usage,
        stream: outcome.stream,
        error: outcome.error,
        fastPath: true,
      }),
    );
  }

  /** Each pool's capacity ETA, asked of its workflow at most every ETA_TTL_MS by this process for all its parked streams. */
  private readonly etas = new Map<PoolKey, { at: number; eta: Promise<CapacityEta | undefined> }>();

  private etaOf(key: PoolKey): Promise<CapacityEta | undefined> {
    const cached = this.etas.get(key);
    if (cached && Date.now() - cached.at < ETA_TTL_MS) return cached.eta;
    const eta = poolView(this.ctx, key, key).then(
      (view) => capacityEta(view, Date.now()),
      () => undefined,
    );
    this.etas.set(key, { at: Date.now(), eta });
    return eta;
  }

  /** Gives the fast path's leases back and writes its last ledger rows (at shutdown). */
  async close(): Promise<void> {
    await this.fast?.leases.close();
    await this.fast?.abandoned.close();
    await this.fast?.ledger.close();
  }

  /**
   * A parked request whose client left is ended here rather than by its workflow: a flood of abandoned requests
   * would otherwise cost the Temporal server a few workflow tasks and an activity each (issue 30, finding 8).
   * Its pool hears in the next withdrawal batch, the workflow is terminated (no workflow task; a few at a time,
   * see abandoned-requests.ts), and its `cancelled` row goes in the ledger batch (spooled first, so a killed API
   * process still writes it). Near its park deadline the workflow may be ending itself, with its own `expired`
   * row: then it is told, as before, so that a request never gets two terminal rows. Without the fast path's
   * batches, likewise.
   */
  private async abandonParked(handle: WorkflowHandle<typeof requestWorkflow>, input: RequestInput, log: Logger): Promise<void> {
    const tell = () => handle.signal(cancelJobSignal, { reason: 'the client went away' }).catch(() => undefined);
    const deadline = input.submittedAt + input.parkTimeoutSeconds * 1000;
    const beforeDeadline = () => Date.now() < deadline - ABANDON_DEADLINE_MARGIN_MS;
    if (!this.fast || !beforeDeadline()) return void (await tell());
    // The pool first: its place is free within one batch, whatever the server's backlog of terminations. Harmless
    // if the request turns out to be over already (the pool forgets an id it does not hold).
    this.fast.abandoned.withdraw(input.poolId, input.requestId);
    try {
      if (!(await this.fast.abandoned.terminate(handle, 'the client went away while the request was parked', beforeDeadline)))
        return void (await tell());
    } catch (err) {
      // Already over (it ended on its own) or the server did not take it: the workflow's own way then.
      log.debug({ requestId: input.requestId, err: String(err) }, 'abandoned request not terminated; telling it');
      return void (await tell());
    }
    this.fast.ledger.add(
      requestLedgerRow({
        requestId: input.requestId,
        poolId: input.poolId,
        route: input.route,
        status: 'cancelled',
        finishedAt: Date.now(),
        attempt: 1,
        error: 'the client went away',
      }),
    );
  }

  async handle(req: Request, res: Response, route: OpenAiRoute, pool: TargetPool, body: Record<string, unknown>): Promise<void> {
    const stream = route.streams && body.stream === true;
    const priority = headerNumber(req, 'x-zeropool-priority', 1, 5, { integer: true }) ?? DEFAULT_PRIORITY;
    const parkTimeoutSeconds = headerNumber(req, 'x-zeropool-timeout', 1, 3600) ?? pool.config.parkTimeoutSeconds ?? 300;
    // Serialised once, before any node is asked: a body that cannot be is the request's own fault (400), never a
    // failure counted against a node.
    let payload: string;
    try {
      payload = JSON.stringify(body);
    } catch (err) {
      throw new ApiError(400, 'invalid_request', `the request body cannot be forwarded: ${(err as Error).message}`);
    }
    const requestId = randomUUID();
    res.setHeader('X-Zeropool-Request-Id', requestId);
    const ended = new AbortController();
    let finished = false;
    res.on('close', () => {
      if (!finished) ended.abort(new Error('the client went away'));
    });
    const commit = (grant?: PlacementGrant) => {
      if (res.headersSent) return;
      if (grant) setColdStartHeaders(res, grant);
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
      res.flushHeaders();
    };

    // Warm fast path: a slot this process holds on a lease, no Temporal call; the row goes in the next batch.
    let failedNodeId: string | undefined;
    const slot = this.fast?.leases.take(pool.key, pool.config);
    if (slot) {
      const grant: PlacementGrant = { attempt: 1, nodeId: slot.nodeId, nodeUrl: slot.nodeUrl, slot: -1, coldStartMs: 0 };
      const attempt = await this.runOnNode(route, payload, grant, stream, res, ended.signal, commit, noRenewal);
      slot.done(attempt.kind === 'node_failed');
      if (attempt.kind === 'done') {
        finished = true;
        this.recordFastPath(requestId, pool.key, route, attempt.outcome);
        return;
      }
      // Nothing reached the client: the workflow way, and the pool hears that this node failed.
      (res.locals.log as Logger).warn(
        { requestId, nodeId: slot.nodeId, error: attempt.error },
        'node failed before answering on a leased slot',
      );
      failedNodeId = slot.nodeId;
    }

    // The request's logger is made here, off the warm path (see request-log.ts).
    const log: Logger = res.locals.log;
    const workspaceId = splitPoolKey(pool.key).workspaceId;
    // Read first: from here until the places are taken nothing awaits, so racing requests see each other's.
    const workspaceLimit = pool.workspaceMaxParked ? await pool.workspaceMaxParked() : null;
    const parkedNow = this.parked.get(pool.key) ?? 0;
    if (parkedNow >= (pool.config.maxParkedRequests ?? 1000)) {
      throw new ApiError(
        429,
        'too_many_parked',
        `pool for ${String(body.model)} already has ${parkedNow} requests waiting for capacity`,
        null,
        {
          'Retry-After': '5',
        },
      );
    }
    const workspaceParked = this.parkedByWorkspace.get(workspaceId) ?? 0;
    if (workspaceLimit !== null && workspaceParked >= workspaceLimit) {
      throw new ApiError(
        429,
        'too_many_parked',
        `the workspace already has ${workspaceParked} requests waiting for capacity (its quota: ${workspaceLimit})`,
        null,
        { 'Retry-After': '5' },
      );
    }
    count(this.parked, pool.key, 1);
    count(this.parkedByWorkspace, workspaceId, 1);
    let unparked = false;
    const unpark = () => {
      if (unparked) return;
      unparked = true;
      count(this.parked, pool.key, -1);
      count(this.parkedByWorkspace, workspaceId, -1);
    };
    const input: RequestInput = {
      requestId,
      poolId: pool.key,
      model: String(body.model),
      route: route.name,
      priority,
      submittedAt: Date.now(),
      parkTimeoutSeconds,
      indexed: this.ctx.indexed,
      machine: true,
    };
    let handle: WorkflowHandle<typeof requestWorkflow>;
    try {
      handle = await (this.ctx.eagerClient ?? this.ctx.client).workflow.start<typeof requestWorkflow>('requestWorkflow', {
        workflowId: jobWorkflowId(requestId),
        requestEagerStart: this.ctx.eagerClient !== undefined,
        taskQueue: this.ctx.taskQueue,
        args: [input],
        priority: workspacePriority(workspaceId),
      });
    } catch (err) {
      unpark();
      throw err;
    }
    const report = (outcome: RequestOutcome) =>
      handle.signal(requestDoneSignal, outcome).catch((err) => log.warn({ requestId, err: String(err) }, 'request end not reported'));

    // Parked: a streaming client gets its headers soon and a comment every SSE_COMMENT_INTERVAL_MS until its first token.
    const waitingSince = Date.now();
    let keepAlive: NodeJS.Timeout | undefined;
    // With the pool's ETA where it has one; written only while still parked (never between a stream's chunks).
    const comment = () => {
      const waitedS = Math.round((Date.now() - waitingSince) / 1000);
      void this.etaOf(pool.key).then((eta) => {
        if (!unparked && !res.writableEnded) res.write(waitingComment(waitedS, eta));
      });
    };
    const commitTimer = stream
      ? setTimeout(() => {
          commit();
          comment();
          keepAlive = setInterval(comment, SSE_COMMENT_INTERVAL_MS);
        }, COMMIT_HEADERS_AFTER_MS)
      : undefined;
    const stopWaiting = () => {
      clearTimeout(commitTimer);
      clearInterval(keepAlive);
      unpark();
    };
    ended.signal.addEventListener('abort', () => {
      // A client that leaves while parked frees its place at once.
      if (!unparked) void this.abandonParked(handle, input, log);
    });
    // A client that left while the workflow was starting fired its abort before anyone listened.
    if (ended.signal.aborted && !unparked) void this.abandonParked(handle, input, log);

    try {
      for (;;) {
        let grant: PlacementGrant;
        try {
          grant = await askForSlot(handle, failedNodeId ? { failedNodeId } : {}, ended.signal);
        } catch (err) {
          stopWaiting();
          if (ended.signal.aborted) return;
          const cause = err instanceof WorkflowUpdateFailedError ? err.cause : err;
          const message = cause instanceof Error ? cause.message : String(cause);
          const timeout = cause instanceof ApplicationFailure && cause.type === 'ParkTimeout';
          // Not the workflow's own answer (a gRPC failure of the update call itself, under load): say what it was.
          if (!(err instanceof WorkflowUpdateFailedError))
            log.warn({ requestId, err: String(err), cause: String((err as { cause?: unknown }).cause ?? '') }, 'asking for a slot failed');
          // Given up (nodes kept failing): the slot goes back now, not when the lease runs out.
          if (!timeout) await report({ status: 'failed', finishedAt: Date.now(), error: message });
          if (!res.headersSent) {
            throw new ApiError(timeout ? 503 : 502, timeout ? 'capacity_timeout' : 'upstream_failed', message, null, {
              'Retry-After': '10',
            });
          }
          res.end(`data: ${JSON.stringify({ error: { message, type: timeout ? 'capacity_timeout' : 'server_error', code: null } })}\n\n`);
          return;
        }
        stopWaiting();
        if (ended.signal.aborted) {
          await report({ status: 'cancelled', finishedAt: Date.now(), error: 'the client went away' });
          return;
        }
        const attempt = await this.runOnNode(route, payload, grant, stream, res, ended.signal, commit, () =>
          handle.signal(requestAliveSignal).catch(() => undefined),
        );
        if (attempt.kind === 'node_failed') {
          // Nothing reached the client yet: another node.
          log.warn({ requestId, nodeId: grant.nodeId, error: attempt.error }, 'node failed before answering; asking for another');
          failedNodeId = grant.nodeId;
          continue;
        }
        finished = true;
        await report(attempt.outcome);
        return;
      }
    } finally {
      stopWaiting();
      finished = true;
    }
  }

  /** Sends the request to the node and passes its answer through. */
  private async runOnNode(
    route: OpenAiRoute,
    payload: string,
    grant: PlacementGrant,
    stream: boolean,
    res: Response,
    clientGone: AbortSignal,
    commit: (grant?: PlacementGrant) => void,
    renew: () => Promise<unknown>,
  ): Promise<{ kind: 'node_failed'; error: string } | { kind: 'done'; outcome: RequestOutcome }> {
    const startedAt = Date.now();
    // A leased slot needs no renewal (noRenewal): no timer then.
    const lease = renew === noRenewal ? undefined : setInterval(() => void renew(), REQUEST_RENEW_MS);
    const base = { nodeId: grant.nodeId, attempt: grant.attempt, startedAt, stream };
    let answer: NodeAnswer;
    try {
      answer = await postToNode(`${grant.nodeUrl}${route.nodePath}`, nodeAuthHeaders(this.secrets, grant.nodeId), payload, clientGone);
    } catch (err) {
      clearInterval(lease);
      if (clientGone.aborted)
        return { kind: 'done', outcome: { ...base, status: 'cancelled', finishedAt: Date.now(), error: 'the client went away' } };
      return { kind: 'node_failed', error: (err as Error).message };
    }
    try {
      if (answer.status >= 500 || answer.status === 401 || answer.status === 403) {
        // The node, not the request, is at fault (a node refusing its own secret is a broken node).
        answer.body.destroy();
        return { kind: 'node_failed', error: `node answered ${answer.status}` };
      }
      const ok = answer.status >= 200 && answer.status < 300;
      if (!ok || !stream) {
        let text: string;
        try {
          text = await readText(answer);
        } catch (err) {
          if (clientGone.aborted)
            return { kind: 'done', outcome: { ...base, status: 'cancelled', finishedAt: Date.now(), error: 'the client went away' } };
          // Nothing reached the client yet: another node may answer.
          return { kind: 'node_failed', error: `the node failed while answering: ${(err as Error).message}` };
        }
        if (!res.headersSent) setColdStartHeaders(res, grant);
        if (res.headersSent) {
          // A streaming client whose headers went out while it waited: the node's refusal as an error event.
          res.end(`data: ${JSON.stringify({ error: { message: text.slice(0, 500), type: 'invalid_request_error', code: null } })}\n\n`);
        } else {
          res.writeHead(answer.status, { 'content-type': answer.contentType ?? 'application/json' });
          res.end(text);
        }
        const usage = ok ? usageInText(text) : undefined;
        return {
          kind: 'done',
          outcome: {
            ...base,
            status: ok ? 'completed' : 'failed',
            finishedAt: Date.now(),
            ...(usage ? { usage } : {}),
            ...(ok ? {} : { error: `node answered ${answer.status}: ${text.slice(0, 200)}` }),
          },
        };
      }
      // Streaming: from here on the client has output, so a failure ends the stream with an error event.
      commit(grant);
      let usage: RequestOutcome['usage'];
      let chunks = 0;
      let buffered = '';
      const decoder = new TextDecoder();
      try {
        for await (const piece of answer.body as AsyncIterable<Buffer>) {
          res.write(piece);
          buffered += decoder.decode(piece, { stream: true });
          const lines = buffered.split('\n');
          buffered = lines.pop() ?? '';
          for (const line of lines) {
            if (!line.startsWith('data: ') || line === 'data: [DONE]') continue;
            chunks += 1;
            // Only a chunk that carries usage is parsed (the last, where the server sends it), not every token's.
            if (line.includes('"usage"')) usage = usageInText(line.slice(6)) ?? usage;
          }
        }
      } catch (err) {
        if (clientGone.aborted) {
          return {
            kind: 'done',
            outcome: { ...base, status: 'cancelled', finishedAt: Date.now(), error: 'the client went away', ...(usage ? { usage } : {}) },
          };
        }
        const message = `the node failed mid-stream: ${(err as Error).message}`;
        res.end(`data: ${JSON.stringify({ error: { message, type: 'server_error', code: 'node_lost' } })}\n\n`);
        return { kind: 'done', outcome: { ...base, status: 'failed', finishedAt: Date.now(), error: message } };
      }
      res.end();
      return {
        kind: 'done',
        outcome: {
          ...base,
          status: 'completed',
          finishedAt: Date.now(),
          usage: usage ?? { promptTokens: 0, completionTokens: Math.max(0, chunks - 1) },
        },
      };
    } finally {
      clearInterval(lease);
    }
  }
}

const noRenewal = () => Promise.resolve();

/** Times the slot update is asked again after the server aborted it (see askForSlot). */
const SLOT_UPDATE_TRIES = 5;

/**
 * True for an update the server aborted before the workflow accepted it: its update registry was cleared (the
 * workflow task carrying it was lost, as happens under load). Nothing ran; Temporal documents it as retryable.
 */
function updateAborted(err: unknown): boolean {
  if (err instanceof WorkflowUpdateFailedError) return false;
  const text = `${String(err)} ${String((err as { cause?: unknown }).cause ?? '')}`;
  return /update was aborted/i.test(text);
}

/** The request's slot, asked again (a few times, while the client is there) when the server aborted the ask. */
async function askForSlot(
  handle: WorkflowHandle<typeof requestWorkflow>,
  args: { failedNodeId?: string },
  clientGone: AbortSignal,
): Promise<PlacementGrant> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await handle.executeUpdate(requestSlotUpdate, { args: [args] });
    } catch (err) {
      if (attempt >= SLOT_UPDATE_TRIES || clientGone.aborted || !updateAborted(err)) throw err;
      await new Promise((resolve) => setTimeout(resolve, 200 * attempt));
    }
  }
}

function headerNumber(req: Request, name: string, min: number, max: number, options: { integer?: boolean } = {}): number | undefined {
  const raw = req.header(name);
  if (raw === undefined) return undefined;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < min || value > max || (options.integer && !Number.isInteger(value))) {
    throw new ApiError(400, 'invalid_request', `${name} must be ${options.integer ? 'an integer' : 'a number'} from ${min} to ${max}`);
  }
  return value;
}

/** Moves a per-key count (never below zero). */
function count(counts: Map<string, number>, key: string, by: number): void {
  counts.set(key, Math.max(0, (counts.get(key) ?? 0) + by));
}

/**
 * A cold start's headers: the whole wait, and its phases as Server-Timing (the standard header, which browsers'
 * developer tools draw): finding a lane, the provider's create or start call (its description says which rung
 * the node came from), and the boot. A streaming request parked with its headers already sent gets neither;
 * its job view has both.
 */
function setColdStartHeaders(res: Response, grant: PlacementGrant): void {
  if (!grant.coldStartMs) return;
  res.setHeader('X-Zeropool-Cold-Start-Ms', String(grant.coldStartMs));
  const phases = grant.coldStart;
  if (phases)
    res.setHeader(
      'Server-Timing',
      `capacity;dur=${phases.capacityMs}, provider;dur=${phases.providerMs};desc="${phases.rung}", boot;dur=${phases.bootMs}`,
    );
}
