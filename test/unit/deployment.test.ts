import assert from 'node:assert/strict';
import { accessSync, constants, existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { parse } from 'yaml';
import { configSchema } from '../../src/config';
import devServerConfig from '../../temporal/dev-server.json';

const root = path.join(__dirname, '..', '..');
const compose = parse(readFileSync(path.join(root, 'docker-compose.yml'), 'utf8'));

test('docker-compose.yml parses and has the production shape', () => {
  for (const service of ['postgresql', 'temporal', 'temporal-setup', 'temporal-ui', 'api', 'worker']) {
    assert.ok(compose.services[service], `service ${service}`);
  }
});

test('compose publishes Temporal and its Web UI on loopback only, the UI read-only (Temporal has no auth)', () => {
  assert.deepEqual(compose.services.temporal.ports, ['127.0.0.1:7233:7233']);
  assert.deepEqual(compose.services['temporal-ui'].ports, ['127.0.0.1:8233:8080']);
  assert.equal(compose.services['temporal-ui'].environment.TEMPORAL_DISABLE_WRITE_ACTIONS, 'true');
  for (const [name, service] of Object.entries<any>(compose.services)) {
    if (name === 'api') continue;
    for (const port of service.ports ?? []) assert.match(String(port), /^127\.0\.0\.1:/, `${name} publishes ${port} beyond loopback`);
  }
});

test('every command docker-compose runs from our image or our files exists', () => {
  for (const [name, service] of Object.entries<any>(compose.services)) {
    if (service.build) {
      const command: string[] = service.command;
      const script = command.find((part) => part.endsWith('.ts'));
      assert.ok(script && existsSync(path.join(root, script)), `${name} runs ${script}`);
      assert.ok(existsSync(path.join(root, service.build === '.' ? 'Dockerfile' : `${service.build}/Dockerfile`)));
    }
    for (const volume of service.volumes ?? []) {
      const source = String(volume).split(':')[0];
      if (source.startsWith('./')) assert.ok(existsSync(path.join(root, source)), `${name} mounts ${source}`);
    }
  }
  accessSync(path.join(root, 'temporal', 'setup.sh'), constants.X_OK);
  const dockerfile = readFileSync(path.join(root, 'Dockerfile'), 'utf8');
  const cmd = /CMD \[(.*)\]/.exec(dockerfile)![1];
  const script = JSON.parse(`[${cmd}]`).find((p: string) => p.endsWith('.ts'));
  assert.ok(existsSync(path.join(root, script)), `Dockerfile CMD runs ${script}`);
});

test('Temporal config: compose and the dev server register the same search attributes and dynamic config', () => {
  const setup = readFileSync(path.join(root, 'temporal', 'setup.sh'), 'utf8');
  for (const name of Object.keys(devServerConfig.searchAttributes)) assert.match(setup, new RegExp(name));
  const production = parse(readFileSync(path.join(root, 'temporal', 'dynamicconfig', 'production.yaml'), 'utf8'));
  for (const [key, value] of Object.entries(devServerConfig.dynamicConfig)) {
    assert.deepEqual(production[key]?.[0]?.value, value, `production.yaml sets ${key} to ${value}`);
  }
});

test('.env.example lists every configuration variable', () => {
  const example = readFileSync(path.join(root, '.env.example'), 'utf8');
  const listed = new Set([...example.matchAll(/^([A-Z0-9_]+)=/gm)].map((m) => m[1]));
  for (const key of Object.keys(configSchema.shape)) assert.ok(listed.has(key), `.env.example lacks ${key}`);
  for (const key of listed) assert.ok(key in configSchema.shape, `.env.example has unknown ${key}`);
});
