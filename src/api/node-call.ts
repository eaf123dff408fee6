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
    if (signal.aborted) return reject(signal.reason);
    const request = call(
      target,
      { method: 'POST', agent, headers: { ...headers, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } },
      (answer) => resolve({ status: answer.statusCode ?? 502, contentType: answer.headers['content-type'], body: answer }),
    );
    // The signal is watched here rather than passed as an option (whose stream plumbing costs more per call);
    // aborting destroys the request and with it an answer still being read, until the request closes.
    const abort = () => request.destroy(signal.reason instanceof Error ? signal.reason : new Error('aborted'));
    signal.addEventListener('abort', abort, { once: true });
    request.on('close', () => signal.removeEventListener('abort', abort));
    request.on('error', reject);
    request.end(body);
  });
}

/** Reads a node's whole answer as text (events, not an async iterator: this is on every warm request's path). */
export function readText(answer: NodeAnswer): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    answer.body.on('data', (chunk: Buffer) => chunks.push(chunk));
    answer.body.on('end', () => resolve(chunks.length === 1 ? chunks[0]!.toString('utf8') : Buffer.concat(chunks).toString('utf8')));
    answer.body.on('error', reject);
    // A connection lost mid-answer may close the message without an error: not a whole answer either.
    answer.body.on('close', () => {
      if (!answer.body.complete) reject(new Error('the node closed the connection mid-answer'));
    });
  });
}
