/**
 * The OpenAI routes' hot path: `POST /v1/chat/completions`, `/v1/completions` and `/v1/embeddings` from a
 * caller whose key passed lately, with a small JSON body, served by the same handlers as the router
 * (routes/openai.ts) but without walking the router's layers or the body parser's stack, which together cost
 * about as much CPU as the proxying itself (bench/front-door.ts, `mainThreadMsPerRequest`).
 *
 * Contract: a request the hot path takes gets the answer the routed way would give, refusals included, in the
 * same order: the key (`accepted`, no I/O), the body (declared JSON, a declared length within BODY_LIMIT, nesting
 * bound, JSON text, storable text), then the route's own handler (schema, pool, front door). What it does not
 * take (a key not seen lately or wrong, no or another content type, a compressed body, no declared length or
 * chunked, a query string, any other path or method) goes the routed way untouched: nothing has been read from it.
 * Failure model: a refusal after the body is read goes to the one error handler through `next(err)`, as the
 * routed way's do; a client that leaves mid-body ends the request with the stream's error, as the parser does.
 */
import type { Request, RequestHandler, Response } from 'express';
import { openAiHotPathRequests } from '../metrics';
import { type Principal, type PrincipalResolver, presentedKey } from './auth';
import { MAX_JSON_DEPTH, bodyTooDeepError, jsonNestsDeeperThan, unstorableTextAt, unstorableTextError } from './body';
import { ApiError, invalidJsonError } from './errors';
import { addLogBindings } from './request-log';
import type { OpenAiHandlers } from './routes/openai';

const HOT_PATHS = new Map<string, keyof OpenAiHandlers>([
  ['/v1/chat/completions', '/chat/completions'],
  ['/v1/completions', '/completions'],
  ['/v1/embeddings', '/embeddings'],
]);

/** What the JSON parser takes without question (other spellings, e.g. `+json` types or other charsets, go the routed way). */
const PLAIN_JSON = /^application\/json\s*(?:;\s*charset="?utf-8"?\s*)?$/i;

/** Middleware (mount it before the router): serves what it can take, passes the rest on. */
export function openAiHotPath(principals: PrincipalResolver, handlers: OpenAiHandlers, limitBytes: number): RequestHandler {
  return (req, res, next) => {
    if (req.method !== 'POST') return next();
    const route = HOT_PATHS.get(req.url);
    if (!route) return next();
    const headers = req.headers;
    const length = Number(headers['content-length']);
    if (!(length > 0 && length <= limitBytes) || headers['transfer-encoding'] !== undefined) return next();
    // A compressed body is the parser's to inflate.
    const encoding = headers['content-encoding'];
    if (encoding !== undefined && encoding.toLowerCase() !== 'identity') return next();
    if (!PLAIN_JSON.test(headers['content-type'] ?? '')) return next();
    const principal = principals.accepted(presentedKey((name) => req.header(name)));
    if (!principal) return next();
    openAiHotPathRequests.inc();
    readBody(req, length).then(
      (buffer) => serve(req, res, principal, buffer, route, handlers).catch(next),
      (err) => next(err),
    );
  };
}

async function serve(
  req: Request,
  res: Response,
  principal: Principal,
  buffer: Buffer,
  route: keyof OpenAiHandlers,
  handlers: OpenAiHandlers,
): Promise<void> {
  res.locals.principal = principal;
  res.locals.route = `/v1${route}`;
  addLogBindings(res.locals, { workspaceId: principal.workspaceId });
  if (jsonNestsDeeperThan(buffer, MAX_JSON_DEPTH)) throw bodyTooDeepError();
  let text = buffer.toString('utf8');
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1); // a byte-order mark, which the parser skips too
  const first = /\S/.exec(text)?.[0];
  // The parser's strict mode: an object or an array at the top, nothing else.
  if (first !== '{' && first !== '[') throw invalidJsonError();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw invalidJsonError();
  }
  const unstorable = unstorableTextAt(body);
  if (unstorable) throw unstorableTextError(unstorable);
  req.body = body;
  await handlers[route](req, res);
}

/** The whole body, as declared (Node's parser holds the client to its content-length). */
function readBody(req: Request, length: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, length)));
    req.on('error', reject);
    req.on('close', () => {
      if (!req.complete) reject(new ApiError(400, 'request_aborted', 'the client went away before its body arrived'));
    });
  });
}
