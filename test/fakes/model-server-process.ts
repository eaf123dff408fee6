/**
 * What a fake cloud boots on a machine it runs: the mock model server (src/mock-node) as its own process, with
 * the environment the machine was given (a pod's env, a VM's user data), on a given address and port.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';

const NODE_SCRIPT = path.join(__dirname, '..', '..', 'src', 'mock-node', 'server.ts');

export function startModelServer(options: {
  host?: string;
  port: number;
  env: Record<string, string>;
  tokensPerSecond?: number;
}): ChildProcess {
  return spawn(process.execPath, ['--import', require.resolve('tsx'), NODE_SCRIPT], {
    stdio: 'ignore',
    env: {
      PATH: process.env.PATH,
      ...options.env,
      MOCK_HOST: options.host ?? '127.0.0.1',
      MOCK_PORT: String(options.port),
      MOCK_NODE_ID: options.env.ZEROPOOL_NODE ?? options.env.MOCK_NODE_ID ?? 'fake-cloud-node',
      MOCK_MODEL: options.env.MOCK_MODEL ?? 'mock-model',
      MOCK_COLD_START_MS: '0',
      MOCK_TOKENS_PER_SECOND: String(options.tokensPerSecond ?? 500),
    },
  });
}

/** `KEY=value` lines of a cloud-init or shell user data, as the environment the script would export. */
export function envFromUserData(userData: string | undefined): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of (userData ?? '').split('\n')) {
    const match = /^\s*(?:-\s*)?(?:export\s+)?([A-Z_][A-Z0-9_]*)=(\S*)\s*$/.exec(line);
    if (match) env[match[1]!] = match[2]!;
  }
  return env;
}
