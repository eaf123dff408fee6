/**
 * Docker for tests: a real engine is required under CI (a missing one fails the suite) and skipped with a
 * message elsewhere. Images are built here, without a registry: `docker import` of a root filesystem.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { TestContext } from 'node:test';
import Docker from 'dockerode';
import { buildSync } from 'esbuild';

export const docker = new Docker();

/** Why there is no engine to test against (undefined when one answers); under CI a missing engine throws. */
export async function missingDockerEngine(): Promise<string | undefined> {
  try {
    await docker.ping();
    return undefined;
  } catch (err) {
    if (process.env.CI) throw new Error(`CI needs a Docker engine (.ci/run starts one): ${(err as Error).message}`);
    return (err as Error).message;
  }
}

/** True when an engine answers; under CI a missing engine throws (the suite must not pass without it). */
export async function dockerAvailable(t: TestContext): Promise<boolean> {
  const missing = await missingDockerEngine();
  if (missing) t.skip(`no Docker engine: ${missing}`);
  return missing === undefined;
}

async function imageExists(tag: string): Promise<boolean> {
  try {
    await docker.getImage(tag).inspect();
    return true;
  } catch {
    return false;
  }
}

/** `docker import` of a folder as an image. */
function importFolder(folder: string, tag: string): void {
  const tar = spawnSync('tar', ['-C', folder, '-c', '.'], { maxBuffer: 1024 * 1024 * 1024 });
  if (tar.status !== 0) throw new Error(`tar failed: ${tar.stderr}`);
  execFileSync('docker', ['import', '-', tag], { input: tar.stdout, stdio: ['pipe', 'ignore', 'inherit'], maxBuffer: 1024 * 1024 * 1024 });
}

function findBusybox(): string {
  for (const candidate of ['/bin/busybox', '/usr/bin/busybox']) {
    const ldd = spawnSync('ldd', [candidate], { encoding: 'utf8' });
    if (ldd.error === undefined && /not a dynamic executable|statically linked/.test(`${ldd.stdout}${ldd.stderr}`)) return candidate;
  }
  throw new Error('a static busybox is needed to build the test image (apt-get install busybox-static)');
}

/** busybox with `httpd` serving /www (with /www/health): a container that answers a health check. */
export async function busyboxImage(): Promise<string> {
  const tag = 'zeropool-test/busybox:1';
  if (await imageExists(tag)) return tag;
  const root = mkdtempSync(path.join(os.tmpdir(), 'zp-busybox-'));
  try {
    mkdirSync(path.join(root, 'bin'));
    mkdirSync(path.join(root, 'www'));
    copyFileSync(findBusybox(), path.join(root, 'bin', 'busybox'));
    chmodSync(path.join(root, 'bin', 'busybox'), 0o755);
    for (const applet of ['sh', 'httpd', 'sleep']) symlinkSync('busybox', path.join(root, 'bin', applet));
    writeFileSync(path.join(root, 'www', 'health'), 'ok\n');
    importFolder(root, tag);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
  return tag;
}

/**
 * The mock model server (src/mock-node) in an image: this machine's node binary with the libraries it
 * links, and the server bundled into one file. Tagged by content, so a changed server builds a new image.
 */
export async function mockNodeImage(): Promise<string> {
  const bundle = buildSync({
    entryPoints: [path.join(__dirname, '..', '..', 'src', 'mock-node', 'server.ts')],
    bundle: true,
    platform: 'node',
    format: 'cjs',
    write: false,
  }).outputFiles[0]!.contents;
  const digest = createHash('sha256').update(bundle).update(process.version).digest('hex').slice(0, 12);
  const tag = `zeropool-test/mock-node:${digest}`;
  if (await imageExists(tag)) return tag;
  const root = mkdtempSync(path.join(os.tmpdir(), 'zp-mock-node-'));
  try {
    mkdirSync(path.join(root, 'app'));
    mkdirSync(path.join(root, 'bin'));
    writeFileSync(path.join(root, 'app', 'server.js'), bundle);
    copyFileSync(process.execPath, path.join(root, 'bin', 'node'));
    chmodSync(path.join(root, 'bin', 'node'), 0o755);
    const ldd = execFileSync('ldd', [process.execPath], { encoding: 'utf8' });
    for (const lib of ldd.matchAll(/(\/\S+\.so[.\d]*)/g)) {
      const target = path.join(root, lib[1]!);
      mkdirSync(path.dirname(target), { recursive: true });
      copyFileSync(lib[1]!, target);
    }
    importFolder(root, tag);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
  return tag;
}

/** Removes every container of ours whose pool key starts with `prefix` (test clean-up). */
export async function removeTestContainers(prefix: string): Promise<void> {
  const list = await docker.listContainers({ all: true, filters: { label: ['zeropool.managed=true'] } });
  await Promise.all(
    list
      .filter((c) => (c.Labels['zeropool.pool'] ?? '').startsWith(prefix))
      .map((c) =>
        docker
          .getContainer(c.Id)
          .remove({ force: true })
          .catch(() => undefined),
      ),
  );
}

/**
 * An `nvidia-smi` that prints recorded output of a real machine (test/fixtures/nvidia-smi): the
 * `--query-gpu` file for GPU queries, the `--query-compute-apps` file (or nothing) for process queries.
 */
export function recordedNvidiaSmi(gpuFixture: string, appsFixture?: string): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'zp-nvidia-smi-'));
  const fixtures = path.join(__dirname, '..', 'fixtures', 'nvidia-smi');
  const script = path.join(dir, 'nvidia-smi');
  const apps = appsFixture ? `cat '${path.join(fixtures, appsFixture)}'` : 'true';
  writeFileSync(
    script,
    `#!/bin/sh\ncase "$1" in\n  --query-gpu=*) cat '${path.join(fixtures, gpuFixture)}' ;;\n  --query-compute-apps=*) ${apps} ;;\n  *) echo "unsupported: $*" >&2; exit 2 ;;\nesac\n`,
  );
  chmodSync(script, 0o755);
  return script;
}
