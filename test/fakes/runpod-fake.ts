/**
 * A stateful local fake of RunPod's REST API v2 (the pod routes zeropool uses) and of its HTTP proxy. Every
 * request it receives and every response it sends is validated against RunPod's published OpenAPI document
 * (`RunpodContract`); a request the schema refuses is answered 422 as RunPod would, and every mismatch is kept
 * in `violations` for the tests to assert empty.
 *
 * Pods go PROVISIONING → STARTING → RUNNING; DELETE removes them (they leave the list). A RUNNING pod runs a
 * real container stand-in: the mock model server (src/mock-node) as a process, started with the pod's own
 * environment, so what the driver put in the pod's env (its bearer secret) is what the server requires. The
 * proxy serves `<proxyBase>/{podId}-{port}/…` for a pod exposing `{port}/http`.
 *
 * Assumption, marked as such: the wording of a capacity refusal is not published (only that it is a 400 with
 * a human-readable detail); the fake uses the sentence RunPod's console and older APIs show.
 */
import type { ChildProcess } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { freePort } from '../../src/stack/free-port';
import { startModelServer } from './model-server-process';
import { RunpodContract } from './runpod-contract';
export const RUNPOD_NO_CAPACITY =
  'There are no longer any instances available with the requested specifications. Please refresh and try again.';

interface FakePod {
  body: Record<string, any>;
  id: string;
  status: 'PROVISIONING' | 'STARTING' | 'RUNNING' | 'EXITED' | 'ERROR' | 'TERMINATED';
  cost: number;
  createdMs: number;
  createdAt: string;
  startedAt: string | null;
  container?: { child: ChildProcess; port: number };
}

export interface RunpodFakeOptions {
  apiKey: string;
  /** GPU types RunPod offers, with their per-GPU hourly prices (secure, community). */
  gpuTypes?: Record<string, { secure: number; community: number }>;
  /** Milliseconds from create to STARTING and to RUNNING. */
  startingMs?: number;
  runningMs?: number;
  /** Run the mock model server for RUNNING pods (off: pods run but nothing answers behind the proxy). */
  containers?: boolean;
  /** Tokens per second of those servers. */
  tokensPerSecond?: number;
}

interface Fault {
  method: string;
  pathPrefix: string;
  status: number;
  remaining: number;
  /** Do the call, then lose its answer (answer `status` instead). */
  afterEffect?: boolean;
  retryAfterSeconds?: number;
  /** Do the call, then answer only after this long (a client timing out meanwhile loses the answer). */
  delayMs?: number;
}

const DEFAULT_GPUS = {
  'NVIDIA A40': { secure: 0.4, community: 0.35 },
  'NVIDIA L40S': { secure: 0.86, community: 0.79 },
  'NVIDIA H100 80GB HBM3': { secure: 2.69, community: 2.39 },
};

export class RunpodFake {
  readonly pods = new Map<string, FakePod>();
  /** Creates that made a pod (what "no duplicate" is counted by). */
  created = 0;
  readonly createBodies: Array<Record<string, unknown>> = [];
  readonly calls: Array<{ method: string; path: string; status: number }> = [];
  /** Pods of a GPU type that can still be created (absent: unlimited). */
  readonly stock = new Map<string, number>();
  /** Pods stopped by a `stop` action (EXITED with their disk kept), as opposed to taken away by their host. */
  readonly stopped = new Set<string>();
  /** Every way a request or response differed from RunPod's published schema. */
  readonly violations: string[] = [];
  private readonly contract = new RunpodContract();
  private faults: Fault[] = [];
  private nextId = 1;
  private server?: http.Server;
  /** The API base (paths start with /v2). */
  url = '';
  /** The proxy URL template for the driver (`{podId}`, `{port}`). */
  proxyUrl = '';

  constructor(private readonly options: RunpodFakeOptions) {}

  async start(): Promise<this> {
    this.server = http.createServer((req, res) => {
      this.handle(req, res).catch((err) => this.problem(req, res, 500, 'Internal Server Error', String(err)));
    });
    await new Promise<void>((r) => this.server!.listen(0, '127.0.0.1', r));
    const base = `http://127.0.0.1:${(this.server!.address() as AddressInfo).port}`;
    this.url = base;
    this.proxyUrl = `${base}/proxy/{podId}-{port}`;
    return this;
  }

  async stop(): Promise<void> {
    for (const pod of this.pods.values()) this.stopContainer(pod);
    if (!this.server) return;
    this.server.closeAllConnections();
    await new Promise((r) => this.server!.close(r));
  }

  fault(fault: Omit<Fault, 'remaining'> & { count?: number }): void {
    this.faults.push({ ...fault, remaining: fault.count ?? 1 });
  }

  /** The host takes the pod away (machine failure, maintenance): it shows EXITED and bills nothing. */
  exit(podId: string): void {
    const pod = this.pods.get(podId);
    if (!pod) return;
    pod.status = 'EXITED';
    pod.cost = 0;
    this.stopContainer(pod);
  }

  /** Pods that are not deleted, as the API would list them. */
  livePods(): FakePod[] {
    return [...this.pods.values()];
  }

  private gpus() {
    return this.options.gpuTypes ?? DEFAULT_GPUS;
  }

  private advance(pod: FakePod): void {
    const age = Date.now() - pod.createdMs;
    if (pod.status === 'PROVISIONING' && age >= (this.options.startingMs ?? 100)) pod.status = 'STARTING';
    if (pod.status === 'STARTING' && age >= (this.options.runningMs ?? 300)) {
      pod.status = 'RUNNING';
      pod.startedAt = new Date().toISOString();
      if (this.options.containers) void this.startContainer(pod);
    }
  }

  private async startContainer(pod: FakePod): Promise<void> {
    const port = await freePort();
    // The pod's own environment, as RunPod passes it to the container.
    const child = startModelServer({ port, env: pod.body.env ?? {}, tokensPerSecond: this.options.tokensPerSecond });
    pod.container = { child, port };
    if (pod.status !== 'RUNNING') this.stopContainer(pod);
  }

  private stopContainer(pod: FakePod): void {
    pod.container?.child.kill('SIGKILL');
    pod.container = undefined;
  }

  /** The pod as GET answers it (every field the schema requires). */
  private view(pod: FakePod) {
    const b = pod.body;
    return {
      id: pod.id,
      name: b.name,
      image: b.image,
      args: b.args ?? '',
      disk: b.disk ?? 20,
      ports: b.ports ?? [],
      env: b.env ?? {},
      registry: b.registry ?? null,
      status: pod.status,
      actions:
        pod.status === 'RUNNING' ? ['stop', 'restart', 'terminate'] : pod.status === 'EXITED' ? ['start', 'terminate'] : ['terminate'],
      mounts: b.mounts ?? {},
      gpu: { id: b.gpu.id, count: b.gpu.count ?? 1 },
      cloud: b.cloud ?? 'SECURE',
      dataCenterId: b.dataCenterIds?.[0] ?? 'US-KS-2',
      cudaVersion: pod.status === 'PROVISIONING' ? null : '12.8',
      ssh: { proxy: null, direct: null },
      template: null,
      cost: pod.cost,
      locked: false,
      globalNetworking: { enabled: false },
      runtime:
        pod.status === 'RUNNING'
          ? { uptime: Math.round((Date.now() - Date.parse(pod.startedAt ?? pod.createdAt)) / 1000), ports: [] }
          : null,
      createdAt: pod.createdAt,
      startedAt: pod.startedAt,
    };
  }

  private send(req: http.IncomingMessage, res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) {
    const method = req.method ?? 'GET';
    const path = (req.url ?? '').split('?')[0]!;
    this.violations.push(...this.contract.checkResponse(method, path, status, body));
    this.calls.push({ method, path, status });
    const type = status >= 400 ? 'application/problem+json' : 'application/json';
    res.writeHead(status, {
      ...(body === undefined ? {} : { 'content-type': type }),
      RateLimit: '"default";r=99;t=60',
      'RateLimit-Policy': '"default";q=100;w=60',
      ...headers,
    });
    res.end(body === undefined ? undefined : JSON.stringify(body));
  }

  private problem(req: http.IncomingMessage, res: http.ServerResponse, status: number, title: string, detail: string, extra: Json = {}) {
    this.send(req, res, status, { title, status, detail, ...extra.body }, extra.headers ?? {});
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://fake');
    if (url.pathname.startsWith('/proxy/')) return this.proxy(req, res, url);
    const method = req.method ?? 'GET';
    const path = url.pathname;
    if (req.headers.authorization !== `Bearer ${this.options.apiKey}`) {
      return this.problem(req, res, 401, 'Unauthorized', 'Authentication failed: the API key is missing or invalid.');
    }
    const fault = this.faults.find((f) => f.remaining > 0 && f.method === method && path.startsWith(f.pathPrefix));
    if (fault) fault.remaining -= 1;
    const failWith = (status: number) =>
      this.problem(req, res, status, status === 429 ? 'Too Many Requests' : 'Service Unavailable', `fake fault ${status}`, {
        headers: fault?.retryAfterSeconds !== undefined ? { 'retry-after': String(fault.retryAfterSeconds) } : {},
      });
    if (fault && !fault.afterEffect && !fault.delayMs) return failWith(fault.status);
    const raw = await new Promise<string>((resolve) => {
      let data = '';
      req.on('data', (c: Buffer) => {
        data += c.toString();
      });
      req.on('end', () => resolve(data));
    });
    const body = raw ? (JSON.parse(raw) as Record<string, any>) : undefined;
    const requestProblems = this.contract.checkRequest(method, path, body);
    if (requestProblems.length > 0) {
      this.violations.push(...requestProblems);
      if (!this.contract.operation(method, path)) return this.problem(req, res, 404, 'Not Found', `no route ${method} ${path}`);
      return this.problem(req, res, 422, 'Unprocessable Entity', 'The request body failed validation.', {
        body: { errors: requestProblems },
      });
    }
    for (const pod of this.pods.values()) this.advance(pod);

    if (path === '/v2/pods' && method === 'POST') {
      const b = body!;
      this.createBodies.push(b);
      if (!b.gpu) return this.problem(req, res, 400, 'Bad Request', 'exactly one of gpu or cpu must be set');
      const prices = this.gpus()[b.gpu.id as keyof ReturnType<RunpodFake['gpus']>] as { secure: number; community: number } | undefined;
      if (!prices) return this.problem(req, res, 400, 'Bad Request', `Unknown GPU type "${b.gpu.id}".`);
      const left = this.stock.get(b.gpu.id);
      if (left !== undefined && left < 1) return this.problem(req, res, 400, 'Bad Request', RUNPOD_NO_CAPACITY);
      if (left !== undefined) this.stock.set(b.gpu.id, left - 1);
      const id = `pod${String(this.nextId++).padStart(4, '0')}x${Math.random().toString(36).slice(2, 6)}`;
      const count = b.gpu.count ?? 1;
      const pod: FakePod = {
        body: b,
        id,
        status: 'PROVISIONING',
        cost: Math.round((b.cloud === 'COMMUNITY' ? prices.community : prices.secure) * count * 100) / 100,
        createdMs: Date.now(),
        createdAt: new Date().toISOString(),
        startedAt: null,
      };
      this.pods.set(id, pod);
      this.created += 1;
      if (fault?.afterEffect) return failWith(fault.status);
      if (fault?.delayMs) await new Promise((r) => setTimeout(r, fault.delayMs));
      return this.send(req, res, 201, this.view(pod));
    }
    if (path === '/v2/pods' && method === 'GET') {
      return this.send(req, res, 200, { pods: [...this.pods.values()].map((pod) => this.view(pod)) });
    }
    const one = /^\/v2\/pods\/([^/]+)$/.exec(path);
    if (one) {
      const pod = this.pods.get(decodeURIComponent(one[1]!));
      if (!pod) return this.problem(req, res, 404, 'Not Found', `pod ${one[1]} not found`);
      if (method === 'GET') return this.send(req, res, 200, this.view(pod));
      if (method === 'DELETE') {
        this.stopContainer(pod);
        this.pods.delete(pod.id);
        if (fault?.afterEffect) return failWith(fault.status);
        return this.send(req, res, 204, undefined);
      }
    }
    const action = /^\/v2\/pods\/([^/]+)\/action$/.exec(path);
    if (action && method === 'POST') {
      const pod = this.pods.get(decodeURIComponent(action[1]!));
      if (!pod) return this.problem(req, res, 404, 'Not Found', `pod ${action[1]} not found`);
      return this.podAction(req, res, pod, body!.action as string);
    }
    return this.problem(req, res, 405, 'Method Not Allowed', `${method} ${path} is not served by this fake`);
  }

  /**
   * `POST /v2/pods/{id}/action` as the published document describes it: `stop` (RUNNING, PROVISIONING, STARTING →
   * EXITED, compute released, disk kept), `start` (EXITED or ERROR → toward RUNNING), `terminate` (deleted, 204); an
   * action not valid in the pod's state is a 409. A start with no GPU of the pod's type left (`stock`) is answered
   * as a create is then (400, "no longer any instances"): the document does not say, so this is our assumption.
   */
  private podAction(req: http.IncomingMessage, res: http.ServerResponse, pod: FakePod, action: string) {
    const valid: Record<string, FakePod['status'][]> = {
      stop: ['RUNNING', 'PROVISIONING', 'STARTING'],
      start: ['EXITED', 'ERROR'],
      restart: ['RUNNING'],
      terminate: ['RUNNING', 'PROVISIONING', 'STARTING', 'EXITED', 'ERROR'],
    };
    if (!valid[action]?.includes(pod.status))
      return this.problem(req, res, 409, 'Conflict', `action ${action} is not valid for a pod that is ${pod.status}`);
    if (action === 'terminate') {
      this.stopContainer(pod);
      this.pods.delete(pod.id);
      return this.send(req, res, 204, undefined);
    }
    if (action === 'stop') {
      pod.status = 'EXITED';
      this.stopped.add(pod.id);
      this.stopContainer(pod);
      // Its GPU goes back to the market: another may take it before this pod starts again.
      const left = this.stock.get(pod.body.gpu.id);
      if (left !== undefined) this.stock.set(pod.body.gpu.id, left + 1);
    } else if (action === 'start') {
      const left = this.stock.get(pod.body.gpu.id);
      if (left !== undefined && left < 1) return this.problem(req, res, 400, 'Bad Request', RUNPOD_NO_CAPACITY);
      if (left !== undefined) this.stock.set(pod.body.gpu.id, left - 1);
      // Boots again from its kept disk: PROVISIONING → STARTING → RUNNING on the same clock as a new pod.
      pod.status = 'PROVISIONING';
      pod.createdMs = Date.now();
      pod.startedAt = null;
      this.stopped.delete(pod.id);
    }
    return this.send(req, res, 200, this.view(pod));
  }

  /** RunPod's HTTP proxy: `/proxy/{podId}-{port}/rest` reaches the pod's container on that port. */
  private proxy(req: http.IncomingMessage, res: http.ServerResponse, url: URL): void {
    const match = /^\/proxy\/([^/]+)-(\d+)(\/.*)?$/.exec(url.pathname);
    const pod = match ? this.pods.get(match[1]!) : undefined;
    if (pod) this.advance(pod);
    const exposed = pod && match && (pod.body.ports as string[] | undefined)?.includes(`${match[2]}/http`);
    if (!pod || !exposed || pod.status !== 'RUNNING' || !pod.container) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('404 page not found');
      return;
    }
    const upstream = http.request(
      { host: '127.0.0.1', port: pod.container.port, method: req.method, path: `${match![3] ?? '/'}${url.search}`, headers: req.headers },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    upstream.on('error', () => {
      if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' }).end('bad gateway');
      else res.destroy();
    });
    req.pipe(upstream);
  }
}

type Json = Record<string, any>;
