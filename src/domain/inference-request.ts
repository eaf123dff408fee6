/** One inference attempt's shapes and the pure rules for its request (used by the API, the job workflow and the activity). */

/** Tokens a request used, as the node reports them. */
export interface TokenUsage {
  promptTokens: number;
  completionTokens: number;
}

/** Input of one inference attempt. */
export interface InferenceInput {
  jobId: string;
  attempt: number;
  nodeUrl: string;
  /** The node (its bearer secret is derived from it); absent in attempts scheduled by older versions. */
  nodeId?: string;
  model: string;
  payload: Record<string, unknown>;
  /** Continue a preempted attempt: the completion so far, which the node extends. */
  resume?: { completionTokens: number; text: string };
  /** Handed to the node so it may POST progress to /v1/jobs/:id/progress. */
  progressToken?: string;
  /** A generic service call instead of a chat completion: this body to this path, the answer passed through. */
  service?: ServiceCall;
}

/** A job for a service that is not (only) a chat model: an image generator, a code runner. */
export interface ServiceCall {
  /** The path on the node, e.g. `/v1/images/generations`. */
  path: string;
  body: unknown;
}

/** A service's answer as the job keeps it: JSON as JSON, anything else base64 with its content type. */
export interface ServiceResponse {
  status: number;
  contentType: string;
  json?: unknown;
  base64?: string;
  bytes: number;
}

/** The largest service answer a job keeps (it travels through Temporal and PostgreSQL). */
export const SERVICE_RESPONSE_LIMIT_BYTES = 1024 * 1024;

/** Progress as heartbeated, and as handed back when the attempt is stopped. */
export interface InferenceProgress {
  completionTokens: number;
  text: string;
  at: number;
}

/** What a finished attempt returns. */
export interface InferenceResult {
  text: string;
  /** A service call's answer (absent for chat completions). */
  response?: ServiceResponse;
  usage: TokenUsage;
  /** Epoch ms (worker clock) when the request went out and when the last token arrived. */
  startedAt: number;
  finishedAt: number;
}

/**
 * Turns a job payload into a chat completion request: `messages` as given, or `prompt` as one user turn.
 * A resumed attempt sends the completion so far as a final assistant message to continue (vLLM's
 * `continue_final_message`), asking only for the tokens still missing.
 */
export function toChatRequest(model: string, payload: Record<string, unknown>, resume?: InferenceInput['resume']): Record<string, unknown> {
  const { prompt, ...rest } = payload;
  const messages = rest.messages ?? (typeof prompt === 'string' ? [{ role: 'user', content: prompt }] : undefined);
  const request: Record<string, unknown> = { ...rest, model, messages, stream: true, stream_options: { include_usage: true } };
  if (resume && Array.isArray(messages)) {
    request.messages = [...messages, { role: 'assistant', content: resume.text }];
    request.continue_final_message = true;
    request.add_generation_prompt = false;
    if (typeof rest.max_tokens === 'number') request.max_tokens = rest.max_tokens - resume.completionTokens;
  }
  return request;
}

/** The most tokens one request may ask for: the same bound on the OpenAI routes and on jobs. */
export const MAX_TOKENS_LIMIT = 1_000_000;

/** Why a payload cannot become a chat request, or undefined when it can. */
export function payloadProblem(payload: Record<string, unknown>): string | undefined {
  const { prompt, messages, max_tokens } = payload;
  if (
    max_tokens !== undefined &&
    (!Number.isInteger(max_tokens) || (max_tokens as number) < 1 || (max_tokens as number) > MAX_TOKENS_LIMIT)
  )
    return `payload.max_tokens must be an integer from 1 to ${MAX_TOKENS_LIMIT}`;
  if (messages !== undefined) {
    if (!Array.isArray(messages) || messages.length === 0) return 'payload.messages must be a non-empty array';
    if (messages.some((m) => typeof m !== 'object' || m === null || typeof (m as { role?: unknown }).role !== 'string')) {
      return 'every payload.messages entry needs a string role';
    }
    return undefined;
  }
  if (typeof prompt !== 'string' || prompt.length === 0) return 'payload needs a non-empty prompt string or a messages array';
  return undefined;
}
