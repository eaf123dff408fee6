/**
 * A fake OpenAI-compatible model server: one mock "GPU node". Runs as its own process so that it
 * outlives a worker crash, like a real cloud node would. Configured by environment variables.
 */
import { renameSync, writeFileSync } from 'node:fs';
import http from 'node:http';

const nodeIdentity = process.env.MOCK_NODE_ID ?? 'mock-node';
const model = process.env.MOCK_MODEL ?? 'mock-model';
const coldStartMs = Number(process.env.MOCK_COLD_START_MS ?? 3000);
const tokensPerSecond = Math.max(1, Number(process.env.MOCK_TOKENS_PER_SECOND ?? 50));
const interruptAfterMs = Number(process.env.MOCK_INTERRUPT_AFTER_MS ?? 0);
const bootedAt = Date.now();

let active = 0;
let maxActive = 0;
let served = 0;

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

async function chatCompletions(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  let body: { messages?: Array<{ content?: unknown }>; max_tokens?: number; stream?: boolean };
  try {
    body = JSON.parse(await readBody(req));
  } catch {
    return json(res, 400, { error: { message: 'body is not JSON', type: 'invalid_request_error' } });
  }
  if (!Array.isArray(body.messages) || body.messages.length === 0) {
    return json(res, 400, { error: { message: 'messages must be a non-empty array', type: 'invalid_request_error' } });
  }
  const maxTokens = Math.max(1, Math.min(4096, Math.floor(body.max_tokens ?? 16)));
  const promptTokens = body.messages.reduce((n, m) => n + String(m.content ?? '').split(/\s+/).filter(Boolean).length, 0);
  const id = `chatcmpl-${nodeIdentity}-${served + active}`;
  active += 1;
  maxActive = Math.max(maxActive, active);
  let aborted = false;
  res.on('close', () => {
    if (!res.writableFinished) aborted = true;
  });
  const tokens: string[] = [];
  try {
    if (body.stream) {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    }
    for (let i = 0; i < maxTokens && !aborted; i++) {
      await new Promise((r) => setTimeout(r, 1000 / tokensPerSecond));
      const token = `tok${i} `;
      tokens.push(token);
      if (body.stream && !aborted) {
        res.write(`data: ${JSON.stringify({ id, object: 'chat.completion.chunk', model, choices: [{ index: 0, delta: { content: token }, finish_reason: null }] })}\n\n`);
      }
    }
    if (aborted) return;
    const usage = { prompt_tokens: promptTokens, completion_tokens: tokens.length, total_tokens: promptTokens + tokens.length };
    if (body.stream) {
      res.write(`data: ${JSON.stringify({ id, object: 'chat.completion.chunk', model, choices: [{ index: 0, delta: {}, finish_reason: 'length' }], usage })}\n\n`);
      res.end('data: [DONE]\n\n');
    } else {
      json(res, 200, {
        id,
        object: 'chat.completion',
        model,
        choices: [{ index: 0, message: { role: 'assistant', content: tokens.join('') }, finish_reason: 'length' }],
        usage,
      });
    }
    served += 1;
  } finally {
    active -= 1;
  }
}

const server = http.createServer((req, res) => {
  const url = req.url ?? '/';
  if (url === '/health') {
    return isReady() ? json(res, 200, { status: 'ok', node: nodeIdentity }) : json(res, 503, { status: 'starting' });
  }
  if (url === '/_mock/stats') return json(res, 200, { node: nodeIdentity, active, maxActive, served });
  if (url === '/_mock/interrupt' && req.method === 'POST') {
    json(res, 200, { interrupted: true });
    setTimeout(() => process.exit(0), 10);
    return;
  }
  if (!isReady()) return json(res, 503, { error: { message: 'model is loading', type: 'server_error' } });
  if (url === '/v1/models') return json(res, 200, { object: 'list', data: [{ id: model, object: 'model' }] });
  if (url === '/v1/chat/completions' && req.method === 'POST') {
    chatCompletions(req, res).catch(() => res.destroy());
    return;
  }
  json(res, 404, { error: { message: `no route ${req.method} ${url}`, type: 'invalid_request_error' } });
});

server.listen(0, '127.0.0.1', () => {
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
