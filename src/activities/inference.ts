/** Runs one job's request against its node's OpenAI-compatible server, streaming and heartbeating. */
import { ApplicationFailure, Context } from '@temporalio/activity';
import type { TokenUsage } from '../domain/types';

/** Input of one inference attempt. */
export interface InferenceInput {
  jobId: string;
  attempt: number;
  nodeUrl: string;
  model: string;
  payload: Record<string, unknown>;
}

/** What a finished attempt returns. */
export interface InferenceResult {
  text: string;
  usage: TokenUsage;
  /** Epoch ms (worker clock) when the request went out and when the last token arrived. */
  startedAt: number;
  finishedAt: number;
}

/** Turns a job payload into a chat completion request: `messages` as given, or `prompt` as one user turn. */
export function toChatRequest(model: string, payload: Record<string, unknown>): Record<string, unknown> {
  const { prompt, ...rest } = payload;
  const messages = rest.messages ?? (typeof prompt === 'string' ? [{ role: 'user', content: prompt }] : undefined);
  return { ...rest, model, messages, stream: true, stream_options: { include_usage: true } };
}

/** Creates the inference activity. */
export function createInferenceActivities() {
  return {
    /**
     * Streams the completion so that progress is heartbeated and a cancel (revoked placement) aborts the
     * request at the node at once. Node unreachable or 5xx: retryable `NodeUnavailable`; 4xx: `InvalidRequest`.
     */
    async runInference(input: InferenceInput): Promise<InferenceResult> {
      const ctx = Context.current();
      const startedAt = Date.now();
      let response: Response;
      try {
        response = await fetch(`${input.nodeUrl}/v1/chat/completions`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(toChatRequest(input.model, input.payload)),
          signal: ctx.cancellationSignal,
        });
      } catch (err) {
        if (ctx.cancellationSignal.aborted) throw err;
        throw ApplicationFailure.retryable(`node unreachable: ${(err as Error).message}`, 'NodeUnavailable');
      }
      if (response.status >= 400) {
        const body = await response.text().catch(() => '');
        const message = `model server answered ${response.status}: ${body.slice(0, 500)}`;
        if (response.status >= 500) throw ApplicationFailure.retryable(message, 'NodeUnavailable');
        throw ApplicationFailure.nonRetryable(message, 'InvalidRequest');
      }
      let text = '';
      let usage: TokenUsage | undefined;
      let completionTokens = 0;
      let buffered = '';
      const decoder = new TextDecoder();
      try {
        for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
          buffered += decoder.decode(chunk, { stream: true });
          let newline: number;
          while ((newline = buffered.indexOf('\n\n')) >= 0) {
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
              ctx.heartbeat({ completionTokens });
            }
            if (parsed.usage) usage = { promptTokens: parsed.usage.prompt_tokens, completionTokens: parsed.usage.completion_tokens };
          }
        }
      } catch (err) {
        if (ctx.cancellationSignal.aborted) throw err;
        throw ApplicationFailure.retryable(`stream broke: ${(err as Error).message}`, 'NodeUnavailable');
      }
      return { text, usage: usage ?? { promptTokens: 0, completionTokens }, startedAt, finishedAt: Date.now() };
    },
  };
}
