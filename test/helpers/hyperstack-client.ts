/** The official Hyperstack Python client (PyPI `hyperstack`), found or pip-installed, to check the fake with. */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { ensurePythonPackage } from './python';
import path from 'node:path';

/** The client release the fake is checked against. */
const CLIENT_REQUIREMENT = 'hyperstack==1.56.1a0';

export function ensureHyperstackClient(): void {
  ensurePythonPackage('import hyperstack', CLIENT_REQUIREMENT);
}

/**
 * Runs test/fakes/hyperstack_client_check.py against a fake; returns what it printed (JSON). Asynchronous:
 * the fake usually runs in the calling process, which must keep serving while the client talks to it.
 */
export async function runHyperstackClientCheck(baseUrl: string, apiKey: string): Promise<Record<string, unknown>> {
  ensureHyperstackClient();
  const script = path.join(__dirname, '..', 'fakes', 'hyperstack_client_check.py');
  const { stdout } = await promisify(execFile)('python3', [script, baseUrl, apiKey], { encoding: 'utf8', timeout: 60_000 });
  return JSON.parse(stdout.trim().split('\n').at(-1)!) as Record<string, unknown>;
}

/** Validates create bodies against the official client's `CreateInstancesPayload` (strict); returns how many. */
export async function validateHyperstackCreateBodies(bodies: unknown[]): Promise<number> {
  ensureHyperstackClient();
  const script = path.join(__dirname, '..', 'fakes', 'hyperstack_payload_check.py');
  const child = execFile('python3', [script], { encoding: 'utf8', timeout: 60_000 });
  child.stdin?.end(JSON.stringify(bodies));
  const out = await new Promise<string>((resolve, reject) => {
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (c: string) => {
      stdout += c;
    });
    child.stderr?.on('data', (c: string) => {
      stderr += c;
    });
    child.on('exit', (code) => (code === 0 ? resolve(stdout) : reject(new Error(`payload check failed: ${stderr.slice(-2000)}`))));
  });
  return (JSON.parse(out.trim().split('\n').at(-1)!) as { validated: number }).validated;
}
