/**
 * Local HTTP servers that stand in for what zeropool calls out to: a callback receiver that checks the
 * signature itself (with node:crypto, not zeropool's own helper) and an ntfy-shaped server that records
 * publishes (POST /<topic>, message body, Title/Priority/Tags headers, as ntfy documents them).
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

/** One callback as received. */
export interface ReceivedCallback {
  body: { event: string; delivery: string; job: Record<string, any> };
  raw: string;
  timestamp: string | undefined;
  signature: string | undefined;
  /** Signature valid for the secret and timestamp within 5 minutes. */
  verified: boolean;
  status: number;
}

function readBody(req: http.IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

async function listen(server: http.Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** A callback receiver. `answer` picks the status for the n-th request (1-based); 200 by default. */
export async function startCallbackReceiver(secret: () => Promise<string>, answer: (n: number) => number = () => 200) {
  const received: ReceivedCallback[] = [];
  const server = http.createServer(async (req, res) => {
    const raw = await readBody(req);
    const timestamp = req.headers['x-zeropool-timestamp'] as string | undefined;
    const signature = req.headers['x-zeropool-signature'] as string | undefined;
    const expected = `v1=${createHmac('sha256', await secret())
      .update(`${timestamp}.${raw}`)
      .digest('hex')}`;
    const fresh = Math.abs(Date.now() / 1000 - Number(timestamp)) < 300;
    const verified =
      fresh && !!signature && signature.length === expected.length && timingSafeEqual(Buffer.from(signature), Buffer.from(expected));
    const status = verified ? answer(received.length + 1) : 401;
    received.push({ body: JSON.parse(raw), raw, timestamp, signature, verified, status });
    res.writeHead(status).end();
  });
  const url = await listen(server);
  return { url, received, close: () => new Promise<void>((r) => server.close(() => r())) };
}

/** One ntfy publish as received. */
export interface NtfyPublish {
  topic: string;
  title: string | undefined;
  priority: string | undefined;
  tags: string | undefined;
  message: string;
}

/** An ntfy-shaped server. */
export async function startNtfyServer() {
  const published: NtfyPublish[] = [];
  const server = http.createServer(async (req, res) => {
    const message = await readBody(req);
    if (req.method !== 'POST') return void res.writeHead(405).end();
    published.push({
      topic: decodeURIComponent((req.url ?? '/').slice(1)),
      title: req.headers.title as string | undefined,
      priority: req.headers.priority as string | undefined,
      tags: req.headers.tags as string | undefined,
      message,
    });
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ id: String(published.length), event: 'message' }));
  });
  const url = await listen(server);
  return { url, published, close: () => new Promise<void>((r) => server.close(() => r())) };
}
