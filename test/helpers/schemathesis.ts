/**
 * Fuzzing the API with schemathesis (PyPI), found or pip-installed like moto: it reads /openapi.json, sends
 * generated and mutated requests to every operation and checks each answer against the document. Used by the
 * CI test (a short run) and `npm run fuzz` (the long one).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ensurePythonPackage } from './python';

/** The schemathesis release the suite is checked against. */
const SCHEMATHESIS_REQUIREMENT = 'schemathesis==4.32.5';

/** What the fuzzer checks: no 5xx, and status codes, content types, bodies and headers as documented. */
export const FUZZ_CHECKS = [
  'not_a_server_error',
  'status_code_conformance',
  'content_type_conformance',
  'response_schema_conformance',
  'response_headers_conformance',
];

export interface FuzzRun {
  /** schemathesis's exit status: 0 when no check failed. */
  exitCode: number | null;
  /** Test cases generated and sent ("N generated" in its summary). */
  generated: number;
  /** Operations with a failed check or an error (from its JUnit report), with the report's message. */
  failures: { operation: string; message: string }[];
  /**
   * Errors inside the fuzzer itself that say nothing about the API: CPython 3.11.7's "AST constructor
   * recursion depth mismatch" (a compiler bug after a RecursionError while generating a case). Kept apart,
   * and only that one: any other error is a failure.
   */
  toolFaults: { operation: string; message: string }[];
  output: string;
  seconds: number;
}

export interface FuzzOptions {
  baseUrl: string;
  /** Sent as `Authorization: Bearer`. */
  key: string;
  /** Per operation and phase (schemathesis's --max-examples). */
  maxExamples: number;
  /**
   * Real ids of things that exist (a pool, a job, a workspace, a key): offered for path parameters half of the
   * time, so the fuzzer reaches the handlers behind a 404 as well as the 404s.
   */
  knownIds?: string[];
  /** A model the workspace serves, offered for `model` in request bodies half of the time. */
  knownModel?: string;
  workers?: number;
  seed?: number;
  /** schemathesis's phases (default all: examples, coverage, fuzzing, stateful). */
  phases?: Array<'examples' | 'coverage' | 'fuzzing' | 'stateful'>;
}

export function ensureSchemathesis(): void {
  ensurePythonPackage('import schemathesis.cli', SCHEMATHESIS_REQUIREMENT);
}

/** One schemathesis run against a running API (never spawnSync: the API may live in this very process). */
export async function runSchemathesis(options: FuzzOptions): Promise<FuzzRun> {
  ensureSchemathesis();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'zeropool-fuzz-'));
  const config: string[] = [];
  const ids = options.knownIds ?? [];
  if (ids.some((id) => typeof id !== 'string')) throw new Error(`known ids must be strings: ${JSON.stringify(ids)}`);
  if (ids.length > 0 || options.knownModel) {
    if (ids.length > 0) config.push('[dictionaries.ids]', `values = ${JSON.stringify(ids)}`);
    if (options.knownModel) config.push('[dictionaries.models]', `values = ${JSON.stringify([options.knownModel])}`);
    config.push('[parameters]');
    if (ids.length > 0) {
      for (const name of ['path.id', 'path.keyId', 'path.name', 'path.pool', 'query.pool']) {
        config.push(`"${name}" = { dictionary = "ids", probability = 0.5 }`);
      }
    }
    if (options.knownModel) config.push('"body.model" = { dictionary = "models", probability = 0.5 }');
  }
  writeFileSync(path.join(dir, 'schemathesis.toml'), `${config.join('\n')}\n`);
  const args = [
    '-m',
    'schemathesis.cli',
    '--config-file',
    path.join(dir, 'schemathesis.toml'),
    'run',
    `${options.baseUrl}/openapi.json`,
    '-H',
    `Authorization: Bearer ${options.key}`,
    '--max-examples',
    String(options.maxExamples),
    '--checks',
    FUZZ_CHECKS.join(','),
    '--report',
    'junit',
    '--report-dir',
    dir,
    '--no-color',
    '--workers',
    String(options.workers ?? 2),
    '--request-timeout',
    '30',
    ...(options.seed === undefined ? [] : ['--seed', String(options.seed)]),
    ...(options.phases ? ['--phases', options.phases.join(',')] : []),
  ];
  const started = Date.now();
  const { exitCode, output } = await new Promise<{ exitCode: number | null; output: string }>((resolve, reject) => {
    const child = spawn('python3', args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    let text = '';
    child.stdout.on('data', (chunk: Buffer) => {
      text += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      text += chunk.toString();
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ exitCode: code, output: text }));
  });
  const seconds = (Date.now() - started) / 1000;
  const report = readdirSync(dir).find((name) => name.endsWith('.xml'));
  const problems = report ? junitFailures(readFileSync(path.join(dir, report), 'utf8')) : [];
  const failures = problems.filter((p) => !isToolFault(p.message));
  const toolFaults = problems.filter((p) => isToolFault(p.message));
  rmSync(dir, { recursive: true, force: true });
  const generated = Number(/(\d+) generated/.exec(output)?.[1] ?? 0);
  return { exitCode, generated, failures, toolFaults, output, seconds };
}

/** A runtime error of the interpreter under the fuzzer, not an answer of the API (see FuzzRun.toolFaults). */
export function isToolFault(message: string): boolean {
  return message.startsWith('Runtime Error') && message.includes('AST constructor recursion depth mismatch');
}

/** Test cases of a JUnit report that hold a <failure> or an <error>. */
export function junitFailures(xml: string): { operation: string; message: string }[] {
  const found: { operation: string; message: string }[] = [];
  for (const match of xml.matchAll(/<testcase name="([^"]*)"[^>]*?(?:\/>|>([\s\S]*?)<\/testcase>)/g)) {
    const inner = match[2] ?? '';
    const problem = /<(failure|error)\b([^>]*?)(?:\/>|>([\s\S]*?)<\/\1>)/.exec(inner);
    if (!problem) continue;
    const attribute = /\bmessage="([^"]*)"/.exec(problem[2])?.[1];
    found.push({ operation: match[1], message: attribute || problem[3] || problem[1] });
  }
  return found;
}
