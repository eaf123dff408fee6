/** Runs one job's request against its node's OpenAI-compatible server, streaming and heartbeating. */
import { ApplicationFailure, CancelledFailure, Context } from '@temporalio/activity';
import { SNAPSHOT_TEXT_LIMIT } from '../domain/job-policy';
import {
  type InferenceInput,
  type InferenceProgress,
  type InferenceResult,
  payloadProblem,
  toChatRequest,
} from '../domain/inference-request';

import type { TokenUsage } from '../domain/types';
import { callService } from './service-call';
import { type NodeSecrets, nodeAuthHeaders } from '../secrets/node-secrets';

/** Creates the inference activity. `apiBaseUrl`: where nodes reach the API to report progress (none: they are not told). */
export function createInferenceActivities(options: { apiBaseUrl?: string; secrets?: NodeSecrets } = {}) {
  return {
    /**
     * Streams the completion so that progress is heartbeated and a cancel (revoked placement) aborts the
     * request at the node at once. Node unreachable or 5xx: retryable `NodeUnavailable`; 4xx: `InvalidRequest`.
     */
    async runInference(input: InferenceInput): Promise<InferenceResult> {
      if (input.service) return callService(input, input.service, options.secrets);
      const ctx = Context.current();
      const startedAt = Date.now();
      const problem = payloadProblem(input.payload);
      if (problem) throw ApplicationFailure.nonRetryable(problem, 'InvalidRequest');
      const base = input.resume ?? { completionTokens: 0, text: '' };
      const wanted = input.payload.max_tokens;
      if (typeof wanted === 'number' && base.completionTokens >= wanted) {
        // The preempted attempt had already produced everything asked for.
        return { text: base.text, usage: { promptTokens: 0, completionTokens: base.completionTokens }, startedAt, finishedAt: Date.now() };
      }
      let text = '';
      let completionTokens = 0;
      const progress = (): InferenceProgress => ({
        completionTokens: base.completionTokens + completionTokens,
        text: (base.text + text).slice(0, SNAPSHOT_TEXT_LIMIT),
        at: Date.now(),
      });
      // Heartbeats carry progress and are how a cancel reaches this attempt; beat even while no token comes.
      const beat = setInterval(() => ctx.heartbeat(progress()), 1000);
      // Stopped on purpose (preempted, cancelled): hand the progress back with the cancellation.
      const stopped = () => new CancelledFailure('request aborted at the node', [progress()]);
      const headers: Record<string, string> = {
        'content-type': 'application/json',
        'x-zeropool-job-id': input.jobId,
        'x-zeropool-attempt': String(input.attempt),
        ...nodeAuthHeaders(options.secrets, input.nodeId),
      };
      // Jobs from before derived tokens carry theirs in the input; newer ones derive it here, out of the history.
      const progressToken = input.progressToken ?? options.secrets?.progressToken(input.jobId);
      if (progressToken) {
        headers['x-zeropool-progress-token'] = progressToken;
        // The node may report progress itself (POST, Authorization: Bearer <token>), e.g. from a sidecar.
        if (options.apiBaseUrl)
          headers['x-zeropool-progress-url'] = `${options.apiBaseUrl.replace(/\/$/, '')}/v1/jobs/${input.jobId}/progress`;
      }
      try {
        let response: Response;
        try {
          response = await fetch(`${input.nodeUrl}/v1/chat/completions`, {
            method: 'POST',
            headers,
            body: JSON.stringify(toChatRequest(input.model, input.payload, input.resume)),
            signal: ctx.cancellationSignal,
          });
        } catch (err) {
          if (ctx.cancellationSignal.aborted) throw stopped();
          throw ApplicationFailure.retryable(`node unreachable: ${(err as Error).message}`, 'NodeUnavailable');
        }
        if (response.status >= 400) {
          const body = await response.text().catch(() => '');
          const message = `model server answered ${response.status}: ${body.slice(0, 500)}`;
          // 5xx, and a node refusing our bearer secret (its key changed): the node is at fault, not the request.
          if (response.status >= 500 || response.status === 401 || response.status === 403) {
            throw ApplicationFailure.retryable(message, 'NodeUnavailable');
          }
          throw ApplicationFailure.nonRetryable(message, 'InvalidRequest');
        }
        let usage: TokenUsage | undefined;
        let buffered = '';
        const decoder = new TextDecoder();
        try {
          for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
            buffered += decoder.decode(chunk, { stream: true });
            for (let newline = buffered.indexOf('\n\n'); newline >= 0; newline = buffered.indexOf('\n\n')) {
              const event = buffered.slice(0, newline).trim();
              buffered = buffered.slice(newline + 2);
              if (!event.startsWith('data:')) continue;
              const data = event.slice(5).trim();
              if (data === '[DONE]') continue;
              const parsed = JSON.parse(data) as {
                choices?: Array<{ delta?: { content?: string } }>;
                usage?: { prompt_tokens: number; completion_tokens: number };
              };
              const piece = parsed.choices?.[0]?.delta?.content;
              if (piece) {
                text += piece;
                completionTokens += 1;
                ctx.heartbeat(progress());
              }
              if (parsed.usage) usage = { promptTokens: parsed.usage.prompt_tokens, completionTokens: parsed.usage.completion_tokens };
            }
          }
        } catch (err) {
          if (ctx.cancellationSignal.aborted) throw stopped();
          throw ApplicationFailure.retryable(`stream broke: ${(err as Error).message}`, 'NodeUnavailable');
        }
        if (ctx.cancellationSignal.aborted) throw stopped();
        const finalUsage = usage ?? { promptTokens: 0, completionTokens };
        return {
          text: base.text + text,
          usage: { promptTokens: finalUsage.promptTokens, completionTokens: base.completionTokens + finalUsage.completionTokens },
          startedAt,
          finishedAt: Date.now(),
        };
      } finally {
        clearInterval(beat);
      }
    },
  };
}
