/** Python packages the suite needs (emulators, official clients): found, or pip-installed from PyPI once. */
import { execFileSync } from 'node:child_process';

function importable(check: string): boolean {
  try {
    execFileSync('python3', ['-c', check], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Makes sure `python3 -c <check>` runs, installing `requirement` (a pinned pip requirement) if it does not. */
export function ensurePythonPackage(check: string, requirement: string): void {
  if (importable(check)) return;
  execFileSync('python3', ['-m', 'pip', 'install', '--quiet', '--disable-pip-version-check', requirement], { stdio: 'inherit' });
  if (!importable(check)) throw new Error(`${requirement} installed but python3 still cannot run: ${check}`);
}
