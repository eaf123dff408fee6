/**
 * The front door's hop to a node: one POST over kept-alive HTTP(S) connections, its answer as a Node stream.
 * Plain `http.request` rather than `fetch`: the hop is on every warm request's path, and fetch's WHATWG streams,
 * signals and transferables cost several times the CPU per request (measured in bench/front-door.ts).
 */
import http from 'node:http';
import https from 'node:https';

const agents = {
  'http:': new http.Agent({ keepAlive: true, scheduling: 'lifo' }),
  'https:': new https.Agent({ keepAlive: true, scheduling: 'lifo' }),
};

/** A node's answer: status, content type, and its body still to be read (read it or destroy it). */
export interface NodeAnswer {
  status: number;
  contentType: string | undefined;
  body: http.IncomingMessage;
}

/** POSTs `body` (JSON) to `url`; rejects if the node cannot be reached or `signal` aborts first. */
export function postToNode(url: string, headers: Record<string, string>, body: string, signal: AbortSignal): Promise<NodeAnswer> {
  const target = new URL(url);
  const agent = agents[target.protocol as keyof typeof agents];
  if (!agent) return Promise.reject(new Error(`a node URL must be http or https: ${target.protocol}`));
  const call = target.protocol === 'https:' ? https.request : http.request;
  return new Promise((resolve, reject) => {
    const request = call(
      target,
      {
        method: 'POST',
        agent,
        signal,
        headers: { ...headers, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
      },
      (answer) => resolve({ status: answer.statusCode ?? 502, contentType: answer.headers['content-type'], body: answer }),
    );
    request.on('error', reject);
    request.end(body);
  });
}

/** Reads a node's whole answer as text. */
export async function readText(answer: NodeAnswer): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of answer.body) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
