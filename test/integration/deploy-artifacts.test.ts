/**
 * Deployment artifacts checked by the real tools: docker-compose.yml by compose-go (what Docker Compose loads
 * files with), the Helm chart by `helm lint` and by kubeconform against the Kubernetes schemas, and the
 * Temporal setup script against a real dev server.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import type { Connection } from '@temporalio/client';
import { parseAllDocuments } from 'yaml';
import { ensureTemporalBinary } from '../../src/stack/temporal-binaries';
import { composeCheck, goTool, KUBERNETES_VERSION, kubernetesSchemas, requireGo } from '../helpers/go-tools';
import { devServerEnv } from '../helpers/temporal';

const root = path.join(__dirname, '..', '..');
const chart = path.join(root, 'deploy', 'helm', 'zeropool');
const composeEnv = {
  ...process.env,
  ZEROPOOL_API_KEY: 'k'.repeat(24),
  ZEROPOOL_NODE_SECRET_KEY: 'n'.repeat(40),
  ZEROPOOL_DB_APP_PASSWORD: 'a'.repeat(24),
};

test('docker-compose.yml loads in compose-go: supported Temporal images, explicit schema setup, ordered start, locked-down services', (t) => {
  const go = requireGo(t);
  if (!go) return;
  const check = composeCheck(go);
  const loaded = spawnSync(check, [path.join(root, 'docker-compose.yml')], { env: composeEnv, encoding: 'utf8' });
  assert.equal(loaded.status, 0, loaded.stderr);
  const project = JSON.parse(loaded.stdout);
  const services = project.services as Record<string, any>;
  for (const [name, service] of Object.entries(services))
    assert.ok(!String(service.image ?? '').includes('auto-setup'), `${name} uses the deprecated auto-setup image`);
  assert.match(services.temporal.image, /^temporalio\/server:1\.30\.\d+$/);
  assert.match(services['temporal-schema'].image, /^temporalio\/admin-tools:1\.30\.\d+$/);
  assert.equal(services.temporal.depends_on['temporal-schema'].condition, 'service_completed_successfully');
  assert.equal(services['temporal-schema'].depends_on.postgresql.condition, 'service_healthy');
  for (const name of ['api', 'worker']) {
    assert.equal(services[name].depends_on['temporal-setup'].condition, 'service_completed_successfully', `${name} waits for setup`);
    assert.equal(services[name].read_only, true, `${name} has a read-only root`);
    assert.deepEqual(services[name].cap_drop, ['ALL']);
    assert.ok(services[name].build, `${name} is built from the repo's Dockerfile`);
    // Least privilege: the services log in as zeropool_app once the owner has migrated; they never get the owner's login.
    assert.equal(services[name].depends_on['zeropool-migrate'].condition, 'service_completed_successfully');
    assert.equal(new URL(services[name].environment.DATABASE_URL).username, 'zeropool_app');
    assert.equal(services[name].environment.DATABASE_OWNER_URL, undefined, `${name} holds no owner login`);
  }
  assert.equal(new URL(services['zeropool-migrate'].environment.DATABASE_OWNER_URL).username, 'zeropool');
  assert.ok(services.worker.healthcheck, 'the worker has a healthcheck');

  // The keys are required: compose refuses to start without them (no default admin key).
  const { ZEROPOOL_API_KEY: _, ...withoutKey } = composeEnv;
  const refused = spawnSync(check, [path.join(root, 'docker-compose.yml')], { env: withoutKey, encoding: 'utf8' });
  assert.notEqual(refused.status, 0);
  assert.match(refused.stderr, /ZEROPOOL_API_KEY/);
  // And the checker does reject a broken file.
  const broken = path.join(mkdtempSync(path.join(os.tmpdir(), 'compose-')), 'compose.yml');
  writeFileSync(broken, 'services:\n  a:\n    image: x\n    depends_on: [missing]\n');
  assert.notEqual(spawnSync(check, [broken], { encoding: 'utf8' }).status, 0);
});

test('Dockerfile: multi-stage, current Node LTS, non-root, production dependencies only', () => {
  const dockerfile = execFileSync('cat', [path.join(root, 'Dockerfile')], { encoding: 'utf8' });
  assert.ok((dockerfile.match(/^FROM /gm) ?? []).length >= 2, 'multi-stage');
  assert.match(dockerfile, /ARG NODE_IMAGE=node:(2[4-9]|[3-9]\d)-/, 'a current LTS Node line');
  assert.match(dockerfile, /npm ci --omit=dev/);
  assert.match(dockerfile, /^USER node$/m);
});

const chartValues = [
  '--set',
  'secrets.adminKey=a-test-admin-key-0123',
  '--set',
  `secrets.nodeSecretKey=${'s'.repeat(40)}`,
  '--set',
  'database.url=postgres://zp:pw@db:5432/zeropool',
];

test('Helm chart: helm lint passes; rendered manifests validate strictly against Kubernetes schemas (kubeconform)', (t) => {
  const go = requireGo(t);
  if (!go) return;
  const helm = goTool(go, 'helm');
  const kubeconform = goTool(go, 'kubeconform');
  const schemas = kubernetesSchemas(go);
  const lint = spawnSync(helm, ['lint', '--strict', chart, ...chartValues], { encoding: 'utf8' });
  assert.equal(lint.status, 0, lint.stdout + lint.stderr);

  const variants: Record<string, string[]> = {
    defaults: [],
    'everything on': [
      '--set',
      'serviceMonitor.enabled=true',
      '--set',
      'worker.autoscaling.enabled=true',
      '--set',
      'temporal.tls.enabled=true',
      '--set',
      'temporal.tls.existingSecret=temporal-client',
      '--set',
      'temporal.tls.serverCA=true',
      '--set',
      'temporal.apiKey.existingSecret=temporal-cloud',
      '--set',
      'tracing.otlpEndpoint=http://otel:4318',
      '--set',
      'networkPolicy.apiFrom[0].namespaceSelector.matchLabels.team=ml',
      '--set',
      'database.ownerExistingSecret=zp-db-owner',
    ],
    'existing secrets, no policies': [
      '--set',
      'secrets.existingSecret=zp-keys',
      '--set',
      'database.existingSecret=zp-db',
      '--set',
      'podDisruptionBudget.enabled=false',
      '--set',
      'networkPolicy.enabled=false',
    ],
  };
  for (const [variant, extra] of Object.entries(variants)) {
    const rendered = spawnSync(helm, ['template', 'zp', chart, ...chartValues, ...extra], { encoding: 'utf8' });
    assert.equal(rendered.status, 0, `${variant}: ${rendered.stderr}`);
    const validated = spawnSync(
      kubeconform,
      ['-strict', '-summary', '-kubernetes-version', KUBERNETES_VERSION, ...schemas.flatMap((s) => ['-schema-location', s]), '-'],
      { input: rendered.stdout, encoding: 'utf8' },
    );
    assert.equal(validated.status, 0, `${variant}: ${validated.stdout}${validated.stderr}`);
    assert.match(validated.stdout, /Invalid: 0, Errors: 0, Skipped: 0/, `${variant}: every object had a schema: ${validated.stdout}`);

    const objects = parseAllDocuments(rendered.stdout)
      .map((d) => d.toJSON())
      .filter(Boolean);
    const kinds = objects.map((o) => o.kind);
    for (const deployment of objects.filter((o) => o.kind === 'Deployment')) {
      const pod = deployment.spec.template.spec;
      assert.equal(pod.securityContext.runAsNonRoot, true, `${variant}: ${deployment.metadata.name} runs as non-root`);
      for (const container of pod.containers) {
        assert.equal(container.securityContext.readOnlyRootFilesystem, true);
        assert.ok(container.resources.requests.cpu && container.resources.requests.memory, 'resource requests');
      }
    }
    if (variant === 'everything on') {
      for (const kind of [
        'Deployment',
        'Service',
        'Secret',
        'PodDisruptionBudget',
        'NetworkPolicy',
        'ServiceMonitor',
        'HorizontalPodAutoscaler',
      ])
        assert.ok(kinds.includes(kind), `${variant}: renders a ${kind}`);
      const worker = objects.find((o) => o.kind === 'Deployment' && o.metadata.name.endsWith('-worker'));
      const env = Object.fromEntries(worker.spec.template.spec.containers[0].env.map((e: any) => [e.name, e.value ?? e.valueFrom]));
      assert.equal(env.TEMPORAL_TLS_CLIENT_CERT_PATH, '/etc/zeropool/temporal-tls/tls.crt');
      assert.equal(env.TEMPORAL_API_KEY.secretKeyRef.name, 'temporal-cloud');
      assert.equal(env.OTEL_EXPORTER_OTLP_ENDPOINT, 'http://otel:4318');
      assert.equal(worker.spec.replicas, undefined, 'the autoscaler owns the replica count');
      assert.equal(env.DATABASE_OWNER_URL, undefined, 'workers never hold the owner login');
      const api = objects.find((o) => o.kind === 'Deployment' && o.metadata.name.endsWith('-api'));
      assert.ok(
        api.spec.template.spec.containers[0].env.some((e: { name: string }) => e.name === 'DATABASE_OWNER_URL'),
        'the API migrates',
      );
    }
    if (variant === 'existing secrets, no policies') {
      assert.ok(!kinds.includes('Secret') && !kinds.includes('NetworkPolicy') && !kinds.includes('PodDisruptionBudget'));
    }
  }
  // Without keys or a database the chart refuses to render, naming what is missing.
  const missing = spawnSync(helm, ['template', 'zp', chart], { encoding: 'utf8' });
  assert.notEqual(missing.status, 0);
  assert.match(missing.stderr, /secrets.adminKey|database.url/);
  // And kubeconform does reject a wrong manifest.
  const wrong = spawnSync(
    kubeconform,
    ['-strict', '-kubernetes-version', KUBERNETES_VERSION, ...schemas.flatMap((s) => ['-schema-location', s]), '-'],
    {
      input: 'apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec: {replicas: "two", selector: {}, template: {}}\n',
      encoding: 'utf8',
    },
  );
  assert.notEqual(wrong.status, 0);
});

test('temporal/setup.sh against a real server: creates a missing namespace and registers the search attributes', async () => {
  const cli = ensureTemporalBinary('cli');
  assert.ok(cli, 'the Temporal CLI (npm test installs it)');
  const env = await devServerEnv();
  try {
    const address = (env.connection as Connection).options.address;
    const namespace = 'zp-setup-test';
    const run = spawnSync('sh', [path.join(root, 'temporal', 'setup.sh')], {
      env: { ...process.env, PATH: `${path.dirname(cli)}:${process.env.PATH}`, TEMPORAL_ADDRESS: address, TEMPORAL_NAMESPACE: namespace },
      encoding: 'utf8',
      timeout: 120_000,
    });
    assert.equal(run.status, 0, run.stdout + run.stderr);
    const attributes = await env.connection.operatorService.listSearchAttributes({ namespace });
    for (const name of ['ZeropoolPool', 'ZeropoolStatus', 'ZeropoolWorkspace', 'ZeropoolPriority'])
      assert.ok(name in (attributes.customAttributes ?? {}), `${name} registered in ${namespace}`);
    // Rerunning is harmless.
    const again = spawnSync('sh', [path.join(root, 'temporal', 'setup.sh')], {
      env: { ...process.env, PATH: `${path.dirname(cli)}:${process.env.PATH}`, TEMPORAL_ADDRESS: address, TEMPORAL_NAMESPACE: namespace },
      encoding: 'utf8',
      timeout: 120_000,
    });
    assert.equal(again.status, 0, again.stdout + again.stderr);
  } finally {
    await env.teardown();
  }
});
