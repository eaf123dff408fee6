/** Callback delivery: one signed POST per attempt to the job's callback URL, pinned to a checked address. */
import http from 'node:http';
import https from 'node:https';
import type { LookupFunction } from 'node:net';
import { ApplicationFailure, Context } from '@temporalio/activity';
import type { Pool } from 'pg';
import type { Logger } from 'pino';
import { getCallbackSecret, getCallbackState, setCallbackState } from '../../db/callbacks';
import { presentJob } from '../../domain/job-presenter';
import type { JobView } from '../../domain/types';
import { splitPoolKey } from '../../ids';
import { signCallback, SIGNATURE_HEADER, TIMESTAMP_HEADER } from './signature';
import { type AllowList, CallbackTargetRefused } from '../../domain/callback-target';
import { type CheckedTarget, checkCallbackTarget } from './target-guard';

/** The callback's body: the event, a delivery id receivers can deduplicate on, and the job as the API shows it. */
export function callbackBody(view: JobView): string {
  return JSON.stringify({ event: `job.${view.status}`, delivery: `${view.id}:${view.status}`, job: presentJob(view) });
}

/** POSTs once, to the checked address only (no second lookup, no redirects followed). */
function post(target: CheckedTarget, headers: Record<string, string>, body: string): Promise<{ status: number }> {
  const pinned: LookupFunction = (_host, options, callback) => {
    if (options.all)
      (callback as unknown as (e: null, a: Array<{ address: string; family: number }>) => void)(null, [
        { address: target.address, family: target.family },
      ]);
    else callback(null, target.address, target.family);
  };
  const client = target.url.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    const request = client.request(target.url, { method: 'POST', headers, lookup: pinned, timeout: 10_000 }, (response) => {
      response.resume();
      response.on('end', () => resolve({ status: response.statusCode ?? 0 }));
      response.on('error', reject);
    });
    request.on('timeout', () => request.destroy(new Error('receiver did not answer within 10 s')));
    request.on('error', reject);
    request.end(body);
  });
}

/** Builds the callback activities. */
export function createCallbackActivities(deps: { db: Pool; allowList: AllowList; logger: Logger }) {
  return {
    /**
     * Delivers a finished job's callback, signed with its workspace's secret. A 2xx ends it; a network
     * error, 408, 429 or 5xx is retried by Temporal with backoff; another 4xx or a refused target is final.
     */
    async deliverCallback(input: { view: JobView; url: string }): Promise<void> {
      const attempts = Context.current().info.attempt;
      const jobId = input.view.id;
      const log = deps.logger.child({ jobId, poolId: input.view.pool });
      const state = { url: input.url, attempts };
      let target: CheckedTarget;
      try {
        target = await checkCallbackTarget(input.url, deps.allowList);
      } catch (err) {
        // What the name resolved to (or that it did not) stays in the worker's log: the job shows one of three
        // words, so a callback URL cannot be used to map the worker's network or its DNS.
        log.warn({ err: (err as Error).message }, 'callback target refused or not resolved');
        if (err instanceof CallbackTargetRefused) {
          const message = 'callback refused: the target is not an allowed public address and port (see CALLBACK_ALLOWED_HOSTS)';
          await setCallbackState(deps.db, jobId, { ...state, state: 'refused', lastError: message });
          throw ApplicationFailure.nonRetryable(message, 'CallbackRefused');
        }
        const message = 'callback receiver unreachable';
        await setCallbackState(deps.db, jobId, { ...state, state: 'retrying', lastError: message });
        throw ApplicationFailure.retryable(message, 'CallbackUnavailable');
      }
      const secret = await getCallbackSecret(deps.db, splitPoolKey(input.view.pool).workspaceId);
      if (!secret) throw ApplicationFailure.nonRetryable('the job’s workspace no longer exists', 'CallbackRefused');
      const body = callbackBody(input.view);
      const timestamp = Math.floor(Date.now() / 1000);
      const headers = {
        'content-type': 'application/json',
        'content-length': String(Buffer.byteLength(body)),
        'user-agent': 'zeropool-callback/1',
        'x-zeropool-event': `job.${input.view.status}`,
        'x-zeropool-delivery': `${jobId}:${input.view.status}`,
        [TIMESTAMP_HEADER]: String(timestamp),
        [SIGNATURE_HEADER]: signCallback(secret, timestamp, body),
      };
      let status: number;
      try {
        ({ status } = await post(target, headers, body));
      } catch (err) {
        // Not what failed or answered: a callback's error must not work as a probe of the network.
        const message = 'callback receiver unreachable';
        log.warn({ err: (err as Error).message, host: target.url.host }, 'callback delivery failed');
        await setCallbackState(deps.db, jobId, { ...state, state: 'retrying', lastError: message });
        throw ApplicationFailure.retryable(message, 'CallbackUnavailable');
      }
      if (status >= 200 && status < 300) {
        await setCallbackState(deps.db, jobId, { ...state, state: 'delivered', lastStatus: status, deliveredAt: new Date().toISOString() });
        log.info({ attempts }, 'callback delivered');
        return;
      }
      const message =
        status >= 400 && status < 500 && status !== 408 && status !== 429
          ? 'callback refused by the receiver'
          : 'callback receiver unavailable';
      if (status >= 400 && status < 500 && status !== 408 && status !== 429) {
        await setCallbackState(deps.db, jobId, { ...state, state: 'refused', lastStatus: status, lastError: message });
        throw ApplicationFailure.nonRetryable(message, 'CallbackRefused');
      }
      await setCallbackState(deps.db, jobId, { ...state, state: 'retrying', lastStatus: status, lastError: message });
      throw ApplicationFailure.retryable(message, 'CallbackUnavailable');
    },

    /** Marks a callback that ran out of retries. */
    async recordCallbackGivenUp(input: { jobId: string; url: string; error: string }): Promise<void> {
      const previous = await getCallbackState(deps.db, input.jobId);
      if (previous?.state === 'refused') return;
      await setCallbackState(deps.db, input.jobId, {
        url: input.url,
        state: 'failed',
        attempts: previous?.attempts ?? 0,
        lastStatus: previous?.lastStatus,
        lastError: input.error,
      });
    },
  };
}
