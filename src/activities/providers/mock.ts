/**
 * The mock provider: each node is a local fake model server process on a free loopback port.
 * Nodes are recorded in files under the data folder so that a restarted worker finds (and does not
 * duplicate) the nodes an earlier worker started, and so orphans can be listed and removed.
 */
import { spawn } from 'node:child_process';
import { promises as fs, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { hashString, seededRandom } from '../../domain/random';
import {
  CapacityUnavailableError,
  InvalidRequestError,
  type NodeStatus,
  type Provider,
  type ProvisionRequest,
  type ProvisionedNode,
} from './provider';
import type { PoolKey } from '../../ids';
import type { NodeSecrets } from '../../secrets/node-secrets';
import { checkModelServer } from './model-server-health';

/** Knobs of the mock provider. */
export interface MockProviderOptions {
  /** Folder where node records live. */
  stateDir: string;
  coldStartSeconds: number;
  tokensPerSecond: number;
  /** Probability that a spot request finds no capacity. */
  spotShortageProbability: number;
  /** Expected spot interruptions per node-hour (0 = never). */
  spotInterruptionsPerHour: number;
  seed: number;
  /** A node's wake from vLLM-style sleep (`POST /sleep`, `POST /wake_up` on the node); default 1.5 s. */
  sleepWakeSeconds?: number;
  /** A stopped node's boot when started again (its disk, so its weights, kept); default a quarter of the cold start. */
  stoppedWakeSeconds?: number;
  /** Each node's bearer secret (absent: nodes accept any caller). */
  secrets?: NodeSecrets;
}

/**
 * Injected provider faults (off unless set): while one is active, that call fails with a retryable error,
 * as a cloud API does during an outage. Kept in `<stateDir>/faults.ctl` so that every worker process that
 * shares the folder sees it, and a restarted worker too. `until` is epoch ms (absent: until cleared).
 */
export interface MockFaults {
  provision?: { message?: string; until?: number };
  terminate?: { message?: string; until?: number };
  stop?: { message?: string; until?: number };
  /** A start that finds no GPU for the stopped node (CapacityUnavailable, as a cloud answers then). */
  start?: { message?: string; until?: number };
}

/** File name of the fault switch (not `.json`: node records are the `.json` files). */
const FAULTS_FILE = 'faults.ctl';

interface MockNodeRecord {
  nodeId: string;
  poolId: PoolKey;
  laneIndex: number;
  /** What it serves and on which market (a stopped node starts again as the same node). */
  model?: string;
  market?: 'spot' | 'on-demand';
  /** 0 while stopped (no process). */
  pid: number;
  port: number;
  createdAt: number;
  /** Epoch ms it was stopped (its process gone, its record kept, as a stopped instance keeps its disk). */
  stoppedAt?: number;
}

const NODE_SCRIPT = path.join(__dirname, '..', '..', 'mock-node', `server${path.extname(__filename)}`);

/** Mock capacity: real processes, fake GPUs. */
export class MockProvider implements Provider {
  readonly name = 'mock';
  private readonly random: () => number;
  private readonly inFlight = new Map<string, Promise<ProvisionedNode>>();

  constructor(private readonly options: MockProviderOptions) {
    this.random = seededRandom(options.seed);
  }

  /** Sets (or with `{}` clears) the injected faults for every process sharing this data folder. */
  async setFaults(faults: MockFaults): Promise<void> {
    await fs.mkdir(this.options.stateDir, { recursive: true });
    await fs.writeFile(path.join(this.options.stateDir, FAULTS_FILE), JSON.stringify(faults));
  }

  private async failIfFaulty(call: keyof MockFaults): Promise<void> {
    let faults: MockFaults;
    try {
      faults = JSON.parse(await fs.readFile(path.join(this.options.stateDir, FAULTS_FILE), 'utf8')) as MockFaults;
    } catch {
      return;
    }
    const fault = faults[call];
    if (fault && (fault.until === undefined || Date.now() < fault.until)) {
      const message = fault.message ?? `mock: injected ${call} failure`;
      throw call === 'start' ? new CapacityUnavailableError(message) : new Error(message);
    }
  }

  async provision(request: ProvisionRequest): Promise<ProvisionedNode> {
    await this.failIfFaulty('provision');
    const pending = this.inFlight.get(request.nodeId);
    if (pending) return pending;
    const started = this.provisionOnce(request).finally(() => this.inFlight.delete(request.nodeId));
    this.inFlight.set(request.nodeId, started);
    return started;
  }

  private async provisionOnce(request: ProvisionRequest): Promise<ProvisionedNode> {
    const existing = await this.read(request.nodeId);
    if (existing && isAlive(existing.pid)) {
      // Started earlier (perhaps by a worker that crashed before it could report): adopt it.
      const adopted = existing.port > 0 ? existing : await this.waitForPort(request.nodeId, existing.pid);
      return { nodeId: adopted.nodeId, laneIndex: adopted.laneIndex, url: urlOf(adopted) };
    }
    if (request.lane.market === 'spot' && this.random() < this.options.spotShortageProbability) {
      throw new CapacityUnavailableError(`mock: no ${request.lane.gpu} spot capacity`);
    }
    const record = await this.spawnNode(request, Date.now(), this.options.coldStartSeconds);
    return { nodeId: record.nodeId, laneIndex: record.laneIndex, url: urlOf(record) };
  }

  /** Starts a node process (new, or a stopped one again) and waits until it listens. */
  private async spawnNode(
    request: Pick<ProvisionRequest, 'nodeId' | 'poolId' | 'laneIndex' | 'model' | 'lane'>,
    createdAt: number,
    bootSeconds: number,
  ): Promise<MockNodeRecord> {
    await fs.mkdir(this.options.stateDir, { recursive: true });
    const execArgs = NODE_SCRIPT.endsWith('.ts') ? ['--import', require.resolve('tsx')] : [];
    const child = spawn(process.execPath, [...execArgs, NODE_SCRIPT], {
      detached: true,
      stdio: 'ignore',
      env: {
        PATH: process.env.PATH,
        MOCK_NODE_ID: request.nodeId,
        MOCK_POOL_ID: request.poolId,
        MOCK_LANE_INDEX: String(request.laneIndex),
        MOCK_RECORD_FILE: this.file(request.nodeId),
        MOCK_MODEL: request.model,
        MOCK_COLD_START_MS: String(Math.round(bootSeconds * 1000)),
        MOCK_CREATED_AT: String(createdAt),
        MOCK_TOKENS_PER_SECOND: String(this.options.tokensPerSecond),
        MOCK_WAKE_MS: String(Math.round((this.options.sleepWakeSeconds ?? 1.5) * 1000)),
        MOCK_INTERRUPT_AFTER_MS: String(this.interruptionDelayMs(request)),
        ...(this.options.secrets ? { ZEROPOOL_NODE_TOKEN: this.options.secrets.of(request.nodeId) } : {}),
      },
    });
    child.unref();
    // Recorded before anything can fail: a crash from here on leaves a node that the next attempt adopts
    // (or reconciliation removes), never an unknown process. The node adds its port once it listens.
    const pending: MockNodeRecord = {
      nodeId: request.nodeId,
      poolId: request.poolId,
      laneIndex: request.laneIndex,
      model: request.model,
      market: request.lane.market,
      pid: child.pid!,
      port: 0,
      createdAt,
    };
    writeFileSync(this.file(request.nodeId), JSON.stringify(pending));
    return this.waitForPort(request.nodeId, child.pid!);
  }

  /** Stops the node's process and keeps its record: a stopped instance with its disk. Idempotent. */
  async stop(_poolId: PoolKey, nodeIdToStop: string): Promise<void> {
    await this.failIfFaulty('stop');
    const record = await this.read(nodeIdToStop);
    if (!record) throw new Error(`mock: node ${nodeIdToStop} does not exist`);
    if (record.stoppedAt !== undefined) return;
    await this.killProcess(record.pid);
    writeFileSync(this.file(nodeIdToStop), JSON.stringify({ ...record, pid: 0, port: 0, stoppedAt: Date.now() }));
  }

  /** Starts a stopped node again: a new process on the same record, booting in `stoppedWakeSeconds`. */
  async start(_poolId: PoolKey, nodeIdToStart: string): Promise<{ url: string }> {
    await this.failIfFaulty('start');
    const record = await this.read(nodeIdToStart);
    if (!record) throw new InvalidRequestError(`mock: node ${nodeIdToStart} does not exist (a stopped node that is gone cannot start)`);
    // Started already (a retried call): the same node.
    if (record.stoppedAt === undefined && isAlive(record.pid)) {
      const running = record.port > 0 ? record : await this.waitForPort(nodeIdToStart, record.pid);
      return { url: urlOf(running) };
    }
    const wake = this.options.stoppedWakeSeconds ?? this.options.coldStartSeconds / 4;
    const started = await this.spawnNode(
      {
        nodeId: record.nodeId,
        poolId: record.poolId,
        laneIndex: record.laneIndex,
        model: record.model ?? 'mock-model',
        lane: { provider: 'mock', market: record.market ?? 'on-demand', gpu: 'mock', pricePerHour: 0 },
      },
      Date.now(),
      wake,
    );
    return { url: urlOf(started) };
  }

  /** Waits until the node process has written its port into its record. */
  private async waitForPort(id: string, pid: number): Promise<MockNodeRecord> {
    const deadline = Date.now() + 15_000;
    while (Date.now() < deadline) {
      const record = await this.read(id);
      if (record && record.port > 0) return record;
      if (!isAlive(pid)) break;
      await new Promise((r) => setTimeout(r, 25));
    }
    if (isAlive(pid)) process.kill(pid, 'SIGKILL');
    await fs.rm(this.file(id), { force: true });
    throw new Error(`mock node ${id} did not start listening`);
  }

  /** Spot nodes die after an exponentially distributed lifetime when interruptions are on. */
  private interruptionDelayMs(request: Pick<ProvisionRequest, 'nodeId' | 'lane'>): number {
    const rate = this.options.spotInterruptionsPerHour;
    if (request.lane.market !== 'spot' || rate <= 0) return 0;
    const u = seededRandom(this.options.seed ^ hashString(request.nodeId))();
    return Math.max(1, Math.round((-Math.log(1 - u) / rate) * 3_600_000));
  }

  async describe(_poolId: PoolKey, nodeIdToCheck: string): Promise<NodeStatus> {
    const record = await this.read(nodeIdToCheck);
    if (!record) return { nodeId: nodeIdToCheck, exists: false, healthy: false, reason: 'no such node' };
    if (record.stoppedAt !== undefined) return { nodeId: nodeIdToCheck, exists: true, healthy: false, reason: 'stopped' };
    if (!isAlive(record.pid)) return { nodeId: nodeIdToCheck, exists: false, healthy: false, reason: 'node process is gone' };
    return checkModelServer(nodeIdToCheck, urlOf(record), '/health', { secrets: this.options.secrets });
  }

  async terminate(_poolId: PoolKey, nodeIdToStop: string): Promise<void> {
    await this.failIfFaulty('terminate');
    await this.stopNode(nodeIdToStop);
  }

  /** Terminates: the process and its record (a stopped node's kept disk included). */
  private async stopNode(nodeIdToStop: string): Promise<void> {
    const record = await this.read(nodeIdToStop);
    if (!record) return;
    await this.killProcess(record.pid);
    await fs.rm(this.file(nodeIdToStop), { force: true });
  }

  private async killProcess(pid: number): Promise<void> {
    if (!isAlive(pid)) return;
    process.kill(pid, 'SIGTERM');
    for (let i = 0; i < 40 && isAlive(pid); i++) await new Promise((r) => setTimeout(r, 50));
    if (isAlive(pid)) process.kill(pid, 'SIGKILL');
  }

  async list(poolId: PoolKey): Promise<string[]> {
    return (await this.readAll()).filter((r) => r.poolId === poolId).map((r) => r.nodeId);
  }

  /** Every mock node this data folder knows about (used by the embedded stack to stop them on exit). */
  async terminateAll(): Promise<number> {
    const all = await this.readAll();
    await Promise.all(all.map((r) => this.stopNode(r.nodeId)));
    return all.length;
  }

  /** Kills every recorded node at once, synchronously (for a process 'exit' hook). */
  killAllSync(): void {
    let names: string[] = [];
    try {
      names = readdirSync(this.options.stateDir).filter((n) => n.endsWith('.json'));
    } catch {
      return;
    }
    for (const name of names) {
      try {
        const record = JSON.parse(readFileSync(path.join(this.options.stateDir, name), 'utf8')) as MockNodeRecord;
        if (isAlive(record.pid)) process.kill(record.pid, 'SIGKILL');
        rmSync(path.join(this.options.stateDir, name), { force: true });
      } catch {
        // already gone
      }
    }
  }

  private file(id: string): string {
    return path.join(this.options.stateDir, `${id}.json`);
  }

  private async read(id: string): Promise<MockNodeRecord | undefined> {
    try {
      return JSON.parse(await fs.readFile(this.file(id), 'utf8')) as MockNodeRecord;
    } catch {
      return undefined;
    }
  }

  private async readAll(): Promise<MockNodeRecord[]> {
    let names: string[] = [];
    try {
      names = await fs.readdir(this.options.stateDir);
    } catch {
      return [];
    }
    const records = await Promise.all(names.filter((n) => n.endsWith('.json')).map((n) => this.read(n.slice(0, -5))));
    return records.filter((r): r is MockNodeRecord => r !== undefined);
  }
}

function urlOf(record: MockNodeRecord): string {
  return `http://127.0.0.1:${record.port}`;
}

function isAlive(pid: number): boolean {
  // 0 is a stopped node's (no process); to kill() it would mean this whole process group.
  if (!(pid > 0)) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
