/** Runs the Temporal CLI dev server as a child process (SQLite file in the data folder, Web UI). */
import { Connection } from '@temporalio/client';
import { spawn, type ChildProcess } from 'node:child_process';
import { secureDataFolder, withPrivateUmask } from './data-folder';
import path from 'node:path';
import devServerConfig from '../../temporal/dev-server.json';

/** A running dev server. */
export interface DevServer {
  address: string;
  uiUrl: string;
  namespace: string;
  process: ChildProcess;
  stop(): Promise<void>;
}

/** Command-line flags that apply temporal/dev-server.json (namespace, search attributes, dynamic config). */
export function devServerArgs(options: {
  dbFile?: string;
  port: number;
  uiPort: number;
  headless?: boolean;
  /** Dynamic config values over those of temporal/dev-server.json (tests use this). */
  dynamicConfig?: Record<string, unknown>;
}): string[] {
  const args = ['server', 'start-dev', '--ip', '127.0.0.1', '--port', String(options.port), '--log-level', 'error'];
  if (options.dbFile) {
    // WAL with synchronous=NORMAL: durable across process crashes, and no fsync per workflow task
    // (with the default, the dev server spends most of its time waiting on the disk).
    args.push('--db-filename', options.dbFile, '--sqlite-pragma', 'journal_mode=wal', '--sqlite-pragma', 'synchronous=normal');
  }
  if (options.headless) args.push('--headless');
  else args.push('--ui-port', String(options.uiPort));
  args.push('--namespace', devServerConfig.namespace);
  for (const [name, type] of Object.entries(devServerConfig.searchAttributes)) args.push('--search-attribute', `${name}=${type}`);
  for (const [key, value] of Object.entries({ ...devServerConfig.dynamicConfig, ...options.dynamicConfig }))
    args.push('--dynamic-config-value', `${key}=${JSON.stringify(value)}`);
  return args;
}

/** Options of startDevServer. */
export interface DevServerOptions {
  cliPath: string;
  dataDir: string;
  port: number;
  uiPort: number;
  inMemory?: boolean;
  headless?: boolean;
  dynamicConfig?: Record<string, unknown>;
  /** How long to wait for the first answer (a loaded machine can take many seconds). */
  startTimeoutMs?: number;
}

/** Times a server that exits at once is started again before giving up. */
const EARLY_EXIT_RETRIES = 3;

/**
 * Starts the dev server and waits until it answers. A server that exits at once is started again after a
 * second (seen in CI when a restart on the same port and database follows a stop closely), up to 3 times.
 */
export async function startDevServer(options: DevServerOptions): Promise<DevServer> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startDevServerOnce(options);
    } catch (error) {
      if (!(error instanceof EarlyExit) || attempt > EARLY_EXIT_RETRIES) throw error;
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
}

class EarlyExit extends Error {}

async function startDevServerOnce(options: DevServerOptions): Promise<DevServer> {
  const startTimeoutMs = options.startTimeoutMs ?? 60_000;
  // Temporal's database holds every tenant's prompts: the folder and the files the server makes (the WAL too) are private.
  if (!options.inMemory) secureDataFolder(options.dataDir);
  const run = withPrivateUmask(
    options.cliPath,
    devServerArgs({ ...options, dbFile: options.inMemory ? undefined : path.join(options.dataDir, 'temporal.db') }),
  );
  const child = spawn(run.command, run.args, { stdio: ['ignore', 'pipe', 'pipe'] });
  // Both streams: the CLI says why it could not start on stdout as often as on stderr.
  let stderr = '';
  const keep = (c: Buffer) => {
    stderr = (stderr + c.toString()).slice(-4000);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const address = `127.0.0.1:${options.port}`;
  const started = Date.now();
  for (;;) {
    if (child.exitCode !== null) throw new EarlyExit(`temporal dev server exited with ${child.exitCode}: ${stderr}`);
    try {
      const connection = await Connection.connect({ address, connectTimeout: 1000 });
      await connection.workflowService.getSystemInfo({});
      await connection.close();
      break;
    } catch {
      if (Date.now() - started > startTimeoutMs) {
        child.kill('SIGKILL');
        throw new Error(`temporal dev server did not answer on ${address} within ${startTimeoutMs / 1000} s: ${stderr}`);
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  return {
    address,
    uiUrl: `http://127.0.0.1:${options.uiPort}`,
    namespace: devServerConfig.namespace,
    process: child,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        // Not unref'd: this timer must keep the process alive until the server is really gone.
        const force = setTimeout(() => child.kill('SIGKILL'), 5000);
        child.once('exit', () => {
          clearTimeout(force);
          resolve();
        });
        child.kill('SIGINT');
      }),
  };
}
