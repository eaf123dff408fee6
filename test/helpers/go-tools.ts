/**
 * Go tools the deployment tests run (helm, kubeconform, our compose-check on compose-go), built from the Go
 * module proxy at pinned versions into .cache/go-bin and reused from there. Kubernetes JSON schemas come from
 * the PyPI package kubernetes-validate; the ServiceMonitor schema from the prometheus-operator module's CRD.
 * Under CI a missing Go toolchain fails the tests; elsewhere they are skipped.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { TestContext } from 'node:test';
import { parse } from 'yaml';
import tools from '../../deploy/tools.json';
import { ensurePythonPackage } from './python';

const root = path.join(__dirname, '..', '..');
const cache = path.join(root, '.cache', 'go-bin');

export const TOOLS: Record<'helm' | 'kubeconform', string> = tools.go;
export const KUBERNETES_VERSION = '1.35.0';
const KUBERNETES_VALIDATE = 'kubernetes-validate==1.37.0';
const PROMETHEUS_OPERATOR = 'github.com/prometheus-operator/prometheus-operator@v0.85.0';

function goBinary(): string | undefined {
  for (const candidate of ['go', '/usr/local/go/bin/go']) {
    if (spawnSync(candidate, ['version'], { stdio: 'ignore' }).status === 0) return candidate;
  }
  return undefined;
}

/** The go command, or a skip (a failure under CI). */
export function requireGo(t: TestContext): string | undefined {
  const go = goBinary();
  if (go) return go;
  if (process.env.CI) throw new Error('CI needs a Go toolchain for the deployment checks (helm, kubeconform, compose-go)');
  t.skip('no Go toolchain');
  return undefined;
}

/** `go install`s a pinned tool once; returns its path. */
export function goTool(go: string, name: keyof typeof TOOLS): string {
  const version = TOOLS[name].split('@')[1];
  const dir = path.join(cache, `${name}-${version}`);
  const binary = path.join(dir, name);
  if (!existsSync(binary)) {
    mkdirSync(dir, { recursive: true });
    execFileSync(go, ['install', TOOLS[name]], { env: { ...process.env, GOBIN: dir }, stdio: ['ignore', 'ignore', 'inherit'] });
  }
  return binary;
}

/** Builds deploy/compose-check (compose-go, the library Docker Compose loads files with). */
export function composeCheck(go: string): string {
  const binary = path.join(cache, 'compose-check');
  execFileSync(go, ['build', '-o', binary, '.'], {
    cwd: path.join(root, 'deploy', 'compose-check'),
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  return binary;
}

/** The kinds the chart renders; a new kind needs its schema listed here (kubeconform fails on a missing one). */
const CHART_KINDS = [
  'deployment-apps-v1',
  'service-v1',
  'secret-v1',
  'poddisruptionbudget-policy-v1',
  'networkpolicy-networking-v1',
  'horizontalpodautoscaler-autoscaling-v2',
];

/**
 * kubeconform schema locations: the strict Kubernetes schemas of kubernetes-validate (unknown fields are
 * errors), made standalone (their shared definitions inlined, as kubeconform loads one file per kind), and the
 * ServiceMonitor CRD's schema from the prometheus-operator module, made strict the same way.
 */
export function kubernetesSchemas(go: string): string[] {
  const dir = path.join(root, '.cache', `k8s-schemas-${KUBERNETES_VERSION}`);
  const serviceMonitor = path.join(dir, 'servicemonitor-monitoring-v1.json');
  if (!existsSync(serviceMonitor)) {
    ensurePythonPackage('import kubernetes_validate', KUBERNETES_VALIDATE);
    const packageDir = execFileSync(
      'python3',
      ['-c', 'import kubernetes_validate, os; print(os.path.dirname(kubernetes_validate.__file__))'],
      {
        encoding: 'utf8',
      },
    ).trim();
    const source = path.join(packageDir, 'kubernetes-json-schema', `v${KUBERNETES_VERSION}-local-strict`);
    const definitions = JSON.parse(readFileSync(path.join(source, '_definitions.json'), 'utf8'));
    mkdirSync(dir, { recursive: true });
    for (const kind of CHART_KINDS) {
      const schema = JSON.parse(readFileSync(path.join(source, `${kind}.json`), 'utf8').replaceAll('"/api/_definitions.json#/', '"#/'));
      writeFileSync(path.join(dir, `${kind}.json`), JSON.stringify({ $schema: definitions.$schema, ...schema, $defs: definitions.$defs }));
    }
    const downloaded = JSON.parse(execFileSync(go, ['mod', 'download', '-json', PROMETHEUS_OPERATOR], { cwd: root, encoding: 'utf8' })) as {
      Dir: string;
    };
    const crd = parse(
      readFileSync(path.join(downloaded.Dir, 'example', 'prometheus-operator-crd', 'monitoring.coreos.com_servicemonitors.yaml'), 'utf8'),
    );
    const version = crd.spec.versions.find((v: { name: string }) => v.name === 'v1');
    writeFileSync(serviceMonitor, JSON.stringify(strict(version.schema.openAPIV3Schema)));
  }
  return [`${dir}/{{ .ResourceKind }}{{ .KindSuffix }}.json`];
}

/** Objects with declared properties refuse others (what kubeconform's -strict does for built-in kinds). */
function strict(schema: any): any {
  if (Array.isArray(schema)) return schema.map(strict);
  if (!schema || typeof schema !== 'object') return schema;
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(schema)) out[key] = strict(value);
  if (
    schema.type === 'object' &&
    schema.properties &&
    schema.additionalProperties === undefined &&
    !schema['x-kubernetes-preserve-unknown-fields']
  )
    out.additionalProperties = false;
  return out;
}
