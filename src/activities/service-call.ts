/** A generic service job's call: a JSON body to a path on the node, the answer passed through as it came. */
import { ApplicationFailure, CancelledFailure, Context } from '@temporalio/activity';
import { type InferenceInput, type InferenceResult, SERVICE_RESPONSE_LIMIT_BYTES, type ServiceCall } from '../domain/inference-request';
import { type NodeSecrets, nodeAuthHeaders } from '../secrets/node-secrets';

export async function callService(input: InferenceInput, call: ServiceCall, secrets?: NodeSecrets): Promise<InferenceResult> {
  const ctx = Context.current();
  const startedAt = Date.now();
  // Heartbeats are how a cancel (revoked placement, cancelled job) reaches this call.
  const beat = setInterval(() => ctx.heartbeat({ completionTokens: 0, text: '', at: Date.now() }), 1000);
  try {
    let response: Response;
    try {
      response = await fetch(`${input.nodeUrl}${call.path}`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'x-zeropool-job-id': input.jobId,
          'x-zeropool-attempt': String(input.attempt),
          ...nodeAuthHeaders(secrets, input.nodeId),
        },
        body: JSON.stringify(call.body),
        signal: ctx.cancellationSignal,
      });
    } catch (err) {
      if (ctx.cancellationSignal.aborted) throw new CancelledFailure('request aborted at the node');
      throw ApplicationFailure.retryable(`node unreachable: ${(err as Error).message}`, 'NodeUnavailable');
    }
    const bytes = Buffer.from(await response.arrayBuffer());
    if (response.status >= 500 || response.status === 401 || response.status === 403) {
      throw ApplicationFailure.retryable(`service answered ${response.status}: ${bytes.toString('utf8', 0, 500)}`, 'NodeUnavailable');
    }
    if (response.status >= 400) {
      throw ApplicationFailure.nonRetryable(`service answered ${response.status}: ${bytes.toString('utf8', 0, 500)}`, 'InvalidRequest');
    }
    if (bytes.length > SERVICE_RESPONSE_LIMIT_BYTES) {
      throw ApplicationFailure.nonRetryable(
        `the service's answer is ${bytes.length} bytes; a job keeps at most ${SERVICE_RESPONSE_LIMIT_BYTES}`,
        'ResponseTooLarge',
      );
    }
    const contentType = response.headers.get('content-type') ?? 'application/octet-stream';
    let json: unknown;
    if (/[/+]json\b/.test(contentType)) {
      try {
        json = JSON.parse(bytes.toString('utf8'));
      } catch {
        json = undefined;
      }
    }
    return {
      text: '',
      usage: { promptTokens: 0, completionTokens: 0 },
      response: {
        status: response.status,
        contentType,
        bytes: bytes.length,
        ...(json !== undefined ? { json } : { base64: bytes.toString('base64') }),
      },
      startedAt,
      finishedAt: Date.now(),
    };
  } finally {
    clearInterval(beat);
  }
}
