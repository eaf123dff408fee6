/**
 * The mock provider: each node is a local fake model server process on a free loopback port.
 * Nodes are recorded in files under the data folder so that a restarted worker finds (and does not
 * duplicate) the nodes an earlier worker started, and so orphans can be listed and removed.
 */
import { spawn } from 'node:child_process';
import { promises as fs, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { hashString, seededRandom } from '../../domain/random';
import { CapacityUnavailableError, type NodeStatus, type Provider, type ProvisionRequest, type ProvisionedNode } from './provider';
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
}

/** File name of the fault switch (not `.json`: node records are the `.json` files). */
const FAULTS_FILE = 'faults.ctl';

interface MockNodeRecord {
  nodeId: string;
  poolId: PoolKey;
  laneIndex: number;
  pid: number;
  port: number;
  createdAt: number;
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
    if (fault && (fault.until === undefined || Date.now() < fault.until))
      throw new Error(fault.message ?? `mock: injected ${call} failure`);
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
    await fs.mkdir(this.options.stateDir, { recursive: true });
    const execArgs = NODE_SCRIPT.endsWith('.ts') ? ['--import', require.resolve('tsx')] : [];
    const createdAt = Date.now();
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
        MOCK_COLD_START_MS: String(Math.round(this.options.coldStartSeconds * 1000)),
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
      pid: child.pid!,
      port: 0,
      createdAt,
    };
    writeFileSync(this.file(request.nodeId), JSON.stringify(pending));
    const record = await this.waitForPort(request.nodeId, child.pid!);
    return { nodeId: record.nodeId, laneIndex: record.laneIndex, url: urlOf(record) };
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
  private interruptionDelayMs(request: ProvisionRequest): number {
    const rate = this.options.spotInterruptionsPerHour;
    if (request.lane.market !== 'spot' || rate <= 0) return 0;
    const u = seededRandom(this.options.seed ^ hashString(request.nodeId))();
    return Math.max(1, Math.round((-Math.log(1 - u) / rate) * 3_600_000));
  }

  async describe(_poolId: PoolKey, nodeIdToCheck: string): Promise<NodeStatus> {
    const record = await this.read(nodeIdToCheck);
    if (!record) return { nodeId: nodeIdToCheck, exists: false, healthy: false, reason: 'no such node' };
    if (!isAlive(record.pid)) return { nodeId: nodeIdToCheck, exists: false, healthy: false, reason: 'node process is gone' };
    return checkModelServer(nodeIdToCheck, urlOf(record), '/health', { secrets: this.options.secrets });
  }

  async terminate(_poolId: PoolKey, nodeIdToStop: string): Promise<void> {
    await this.failIfFaulty('terminate');
    await this.stopNode(nodeIdToStop);
  }

  private async stopNode(nodeIdToStop: string): Promise<void> {
    const record = await this.read(nodeIdToStop);
    if (!record) return;
    if (isAlive(record.pid)) {
      process.kill(record.pid, 'SIGTERM');
      for (let i = 0; i < 40 && isAlive(record.pid); i++) await new Promise((r) => setTimeout(r, 50));
      if (isAlive(record.pid)) process.kill(record.pid, 'SIGKILL');
    }
    await fs.rm(this.file(nodeIdToStop), { force: true });
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
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
