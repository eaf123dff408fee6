/**
 * A fake OpenAI-compatible model server: one mock "GPU node". Runs as its own process so that it
 * outlives a worker crash, like a real cloud node would. Configured by environment variables.
 */
import { renameSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { NodeEvent } from './events';

const nodeIdentity = process.env.MOCK_NODE_ID ?? 'mock-node';
const model = process.env.MOCK_MODEL ?? 'mock-model';
const coldStartMs = Number(process.env.MOCK_COLD_START_MS ?? 3000);
const tokensPerSecond = Math.max(1, Number(process.env.MOCK_TOKENS_PER_SECOND ?? 50));
const interruptAfterMs = Number(process.env.MOCK_INTERRUPT_AFTER_MS ?? 0);
/** Report progress to zeropool every this many tokens when the request says where (0: never). */
const progressEveryTokens = Number(process.env.MOCK_PROGRESS_EVERY_TOKENS ?? 50);
/**
 * The boot counts from when the provider created the node (MOCK_CREATED_AT), as a cloud instance's boot counts
 * from the API call that made it: the process's own start-up is part of the configured boot, not added to it.
 */
const bootedAt = Number(process.env.MOCK_CREATED_AT) || Date.now();
/**
 * vLLM-style sleep mode (the warm-state ladder's `sleeping` rung): `POST /sleep` frees the model's VRAM (here:
 * stops serving), `POST /wake_up` answers once the model is back after MOCK_WAKE_MS, `GET /is_sleeping` tells.
 */
const wakeMs = Math.max(0, Number(process.env.MOCK_WAKE_MS ?? 1500));
let sleeping = false;
/** Sleeps and wakes so far (`GET /_mock/stats`): tests see that the pool's calls reached the model server. */
let sleeps = 0;
let wakes = 0;
/** A wake in progress: every /wake_up call waits for the same one. */
let waking: Promise<void> | undefined;

/** Context window of the fake model: asking for more tokens is a client error (400), as on a real server. */
const CONTEXT_TOKENS = 4096;

let active = 0;
let maxActive = 0;
let served = 0;
let aborted = 0;
/** Requests that will be failed on purpose: status and how many are left (POST /_mock/fail). */
let failing: { status: number; remaining: number } | undefined;

const events: NodeEvent[] = [];
const EVENT_LIMIT = 10_000;
function record(event: NodeEvent): void {
  if (events.length >= EVENT_LIMIT) events.shift();
  events.push(event);
}

/** Tokens in a completion text the way this server writes them ("tok0 tok1 "). */
function countTokens(text: string): number {
  return text.split(/\s+/).filter(Boolean).length;
}

function readBody(req: http.IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function json(res: http.ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

function isReady(): boolean {
  return Date.now() - bootedAt >= coldStartMs;
}

/** `/v1/chat/completions` (`chat`) and `/v1/completions` (`text`): the same fake generation, each route's shapes. */
async function completions(req: http.IncomingMessage, res: http.ServerResponse, kind: 'chat' | 'text'): Promise<void> {
  let body: {
    messages?: Array<{ role?: string; content?: unknown }>;
    prompt?: unknown;
    max_tokens?: number;
    stream?: boolean;
    continue_final_message?: boolean;
  };
  try {
    body = JSON.parse(await readBody(req));
  } catch {
    return json(res, 400, { error: { message: 'body is not JSON', type: 'invalid_request_error' } });
  }
  if (kind === 'text') {
    if (typeof body.prompt !== 'string' && !Array.isArray(body.prompt)) {
      return json(res, 400, { error: { message: 'prompt must be a string or an array', type: 'invalid_request_error' } });
    }
    body.messages = [{ role: 'user', content: [body.prompt].flat().join('\n') }];
  }
  if (!Array.isArray(body.messages) || body.messages.length === 0) {
    return json(res, 400, { error: { message: 'messages must be a non-empty array', type: 'invalid_request_error' } });
  }
  if (body.messages.some((m) => typeof m !== 'object' || m === null || typeof m.role !== 'string')) {
    return json(res, 400, { error: { message: 'each message must be an object with a role', type: 'invalid_request_error' } });
  }
  if (body.max_tokens !== undefined && (typeof body.max_tokens !== 'number' || !Number.isFinite(body.max_tokens))) {
    return json(res, 400, { error: { message: 'max_tokens must be a number', type: 'invalid_request_error' } });
  }
  if (body.max_tokens !== undefined && body.max_tokens > CONTEXT_TOKENS) {
    return json(res, 400, {
      error: { message: `max_tokens ${body.max_tokens} exceeds the model's context of ${CONTEXT_TOKENS}`, type: 'invalid_request_error' },
    });
  }
  if (failing && failing.remaining > 0) {
    failing.remaining -= 1;
    return json(res, failing.status, { error: { message: `failing on purpose (${failing.status})`, type: 'server_error' } });
  }
  const maxTokens = Math.max(1, Math.floor(body.max_tokens ?? 16));
  // A resumed request ends with the partial completion as an assistant message to continue: count on from it.
  const last = body.messages[body.messages.length - 1];
  const continued = body.continue_final_message === true && last?.role === 'assistant' ? String(last.content ?? '') : undefined;
  const fromToken = continued === undefined ? 0 : countTokens(continued);
  const promptMessages = continued === undefined ? body.messages : body.messages.slice(0, -1);
  const promptTokens = promptMessages.reduce((n, m) => n + countTokens(String(m.content ?? '')), 0);
  const jobId = (req.headers['x-zeropool-job-id'] as string | undefined) ?? null;
  const attempt = req.headers['x-zeropool-attempt'] ? Number(req.headers['x-zeropool-attempt']) : null;
  const id = `${kind === 'chat' ? 'chatcmpl' : 'cmpl'}-${nodeIdentity}-${served + active}`;
  const chunkOf = (token: string | undefined, finish: string | null) =>
    kind === 'chat'
      ? {
          id,
          object: 'chat.completion.chunk',
          model,
          choices: [{ index: 0, delta: token === undefined ? {} : { content: token }, finish_reason: finish }],
        }
      : { id, object: 'text_completion', model, choices: [{ index: 0, text: token ?? '', finish_reason: finish }] };
  active += 1;
  maxActive = Math.max(maxActive, active);
  record({ event: 'start', jobId, attempt, fromToken, tokens: 0, active, at: Date.now() });
  let cutOff = false;
  let holding = true;
  const release = () => {
    if (holding) active -= 1;
    holding = false;
  };
  const tokens: string[] = [];
  const progressUrl = req.headers['x-zeropool-progress-url'] as string | undefined;
  const progressToken = req.headers['x-zeropool-progress-token'] as string | undefined;
  // What a real model server's sidecar would do: tell zeropool how far the completion got.
  const reportProgress = () => {
    if (!progressUrl || !progressToken) return;
    const body = {
      completion_tokens: fromToken + tokens.length,
      text: (continued ?? '') + tokens.join(''),
      ...(attempt ? { attempt } : {}),
    };
    fetch(progressUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${progressToken}` },
      body: JSON.stringify(body),
    })
      .then((r) => r.body?.cancel())
      .catch(() => undefined);
  };
  res.on('close', () => {
    if (res.writableFinished || cutOff) return;
    // The client went away mid-request: the slot is free from this moment.
    cutOff = true;
    aborted += 1;
    release();
    record({ event: 'abort', jobId, attempt, fromToken, tokens: tokens.length, active, at: Date.now() });
  });
  try {
    if (body.stream) {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    }
    for (let i = 0; i < maxTokens && !cutOff; i++) {
      await new Promise((r) => setTimeout(r, 1000 / tokensPerSecond));
      if (cutOff) break;
      const token = `tok${fromToken + i} `;
      tokens.push(token);
      if (progressEveryTokens > 0 && tokens.length % progressEveryTokens === 0) reportProgress();
      if (body.stream) {
        res.write(`data: ${JSON.stringify(chunkOf(token, null))}\n\n`);
      }
    }
    if (cutOff) return;
    const usage = { prompt_tokens: promptTokens, completion_tokens: tokens.length, total_tokens: promptTokens + tokens.length };
    if (body.stream) {
      res.write(`data: ${JSON.stringify({ ...chunkOf(undefined, 'length'), usage })}\n\n`);
      res.end('data: [DONE]\n\n');
    } else {
      const text = tokens.join('');
      json(res, 200, {
        id,
        object: kind === 'chat' ? 'chat.completion' : 'text_completion',
        created: Math.floor(Date.now() / 1000),
        model,
        choices: [
          kind === 'chat'
            ? { index: 0, message: { role: 'assistant', content: text }, finish_reason: 'length' }
            : { index: 0, text, finish_reason: 'length' },
        ],
        usage,
      });
    }
    served += 1;
    release();
    record({ event: 'finish', jobId, attempt, fromToken, tokens: tokens.length, active, at: Date.now() });
  } finally {
    release();
  }
}

/** A valid 1×1 PNG (what the stand-in image generator returns). */
const ONE_PIXEL_PNG = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==';

/** `/v1/embeddings`: a deterministic 8-dimensional vector per input (a hash of its text). */
async function embeddings(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  let body: { input?: unknown; encoding_format?: string };
  try {
    body = JSON.parse(await readBody(req));
  } catch {
    return json(res, 400, { error: { message: 'body is not JSON', type: 'invalid_request_error' } });
  }
  const inputs = typeof body.input === 'string' ? [body.input] : Array.isArray(body.input) ? body.input.map(String) : undefined;
  if (!inputs || inputs.length === 0)
    return json(res, 400, { error: { message: 'input must be a string or an array', type: 'invalid_request_error' } });
  const vector = (text: string) => {
    let h = 2166136261;
    return Array.from({ length: 8 }, (_, i) => {
      for (const c of `${i}:${text}`) h = Math.imul(h ^ c.charCodeAt(0), 16777619);
      return ((h >>> 0) / 2 ** 32) * 2 - 1;
    });
  };
  const promptTokens = inputs.reduce((n, text) => n + countTokens(text), 0);
  served += 1;
  json(res, 200, {
    object: 'list',
    model,
    // `base64`: little-endian float32s, as OpenAI sends them (the official client asks for this by default).
    data: inputs.map((text, index) => ({
      object: 'embedding',
      index,
      embedding: body.encoding_format === 'base64' ? Buffer.from(new Float32Array(vector(text)).buffer).toString('base64') : vector(text),
    })),
    usage: { prompt_tokens: promptTokens, total_tokens: promptTokens },
  });
}

const server = http.createServer((req, res) => {
  const url = req.url ?? '/';
  if (url === '/health') {
    return isReady() ? json(res, 200, { status: 'ok', node: nodeIdentity }) : json(res, 503, { status: 'starting' });
  }
  if (url === '/_mock/stats') return json(res, 200, { node: nodeIdentity, active, maxActive, served, aborted, sleeps, wakes, sleeping });
  if (url === '/_mock/events') return json(res, 200, { node: nodeIdentity, events });
  if (url.startsWith('/_mock/fail') && req.method === 'POST') {
    // Test knob: the next `count` completion requests answer `status` (a node in trouble).
    const query = new URL(url, 'http://node').searchParams;
    failing = { status: Number(query.get('status') ?? 503), remaining: Number(query.get('count') ?? 1) };
    return json(res, 200, failing);
  }
  if (url === '/_mock/interrupt' && req.method === 'POST') {
    json(res, 200, { interrupted: true });
    setTimeout(() => process.exit(0), 10);
    return;
  }
  // Like vLLM's --api-key: the OpenAI routes need the node's bearer secret when it was given one; so do the
  // sleep-mode routes here (nobody else may put a tenant's model to sleep).
  const token = process.env.ZEROPOOL_NODE_TOKEN;
  const sleepRoute = /^\/(sleep|wake_up|is_sleeping)(\?|$)/.test(url);
  if (token && (url.startsWith('/v1/') || sleepRoute) && req.headers.authorization !== `Bearer ${token}`) {
    return json(res, 401, { error: { message: 'missing or wrong bearer token', type: 'authentication_error' } });
  }
  if (!isReady()) return json(res, 503, { error: { message: 'model is loading', type: 'server_error' } });
  if (url === '/is_sleeping') return json(res, 200, { is_sleeping: sleeping });
  if (url.startsWith('/sleep') && req.method === 'POST') {
    if (active > 0)
      return json(res, 409, { error: { message: `${active} request(s) running: sleep refused`, type: 'invalid_request_error' } });
    if (!sleeping) sleeps += 1;
    sleeping = true;
    return json(res, 200, { is_sleeping: true });
  }
  if (url.startsWith('/wake_up') && req.method === 'POST') {
    if (sleeping)
      waking ??= new Promise<void>((resolve) =>
        setTimeout(() => {
          sleeping = false;
          waking = undefined;
          wakes += 1;
          resolve();
        }, wakeMs),
      );
    (waking ?? Promise.resolve()).then(() => json(res, 200, { is_sleeping: false }));
    return;
  }
  if (sleeping && url.startsWith('/v1/') && url !== '/v1/models')
    return json(res, 503, { error: { message: 'model is asleep (POST /wake_up)', type: 'server_error' } });
  if (url === '/v1/models') return json(res, 200, { object: 'list', data: [{ id: model, object: 'model' }] });
  if (url === '/v1/chat/completions' && req.method === 'POST') {
    completions(req, res, 'chat').catch(() => res.destroy());
    return;
  }
  if (url === '/v1/completions' && req.method === 'POST') {
    completions(req, res, 'text').catch(() => res.destroy());
    return;
  }
  if (url === '/v1/images/generations' && req.method === 'POST') {
    // A stand-in image generator: a 1×1 PNG, whatever was asked.
    served += 1;
    res.writeHead(200, { 'content-type': 'image/png' });
    res.end(Buffer.from(ONE_PIXEL_PNG, 'base64'));
    return;
  }
  if (url === '/v1/embeddings' && req.method === 'POST') {
    embeddings(req, res).catch(() => res.destroy());
    return;
  }
  json(res, 404, { error: { message: `no route ${req.method} ${url}`, type: 'invalid_request_error' } });
});

// In a container on the host network the node is told its port (MOCK_PORT); as a local process it takes any.
server.listen(Number(process.env.MOCK_PORT ?? 0), process.env.MOCK_HOST ?? '127.0.0.1', () => {
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  const recordFile = process.env.MOCK_RECORD_FILE;
  if (recordFile) {
    // The node reports itself, so a provider that crashed while starting it can still find it.
    const record = {
      nodeId: nodeIdentity,
      poolId: process.env.MOCK_POOL_ID ?? '',
      laneIndex: Number(process.env.MOCK_LANE_INDEX ?? 0),
      pid: process.pid,
      port,
      createdAt: bootedAt,
    };
    writeFileSync(`${recordFile}.${process.pid}.tmp`, JSON.stringify(record));
    renameSync(`${recordFile}.${process.pid}.tmp`, recordFile);
  } else {
    process.stdout.write(`${JSON.stringify({ port })}\n`);
  }
});

if (interruptAfterMs > 0) setTimeout(() => process.exit(0), interruptAfterMs).unref();
process.on('SIGTERM', () => {
  server.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 500).unref();
});
