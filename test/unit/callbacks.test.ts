import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { test } from 'node:test';
import { signCallback, verifyCallback } from '../../src/activities/callbacks/signature';
import { checkCallbackTarget } from '../../src/activities/callbacks/target-guard';
import { CallbackTargetRefused, isNonPublicAddress, parseAllowList } from '../../src/domain/callback-target';
import { ntfyRequest } from '../../src/activities/notify';
import { nodeSecrets } from '../../src/secrets/node-secrets';
import { NTFY_TOPIC_PATTERN, workspaceTopic } from '../../src/domain/notify-topic';
import { loadConfig } from '../../src/config';
import { asPoolKey } from '../../src/ids';

const none = parseAllowList([]);
const resolver = (answers: Record<string, string[]>) => async (host: string) =>
  (answers[host] ?? []).map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));

test('private, loopback, link-local, CGNAT, metadata and mapped addresses are not public', () => {
  for (const address of [
    '127.0.0.1',
    '10.1.2.3',
    '172.16.0.1',
    '172.31.255.255',
    '192.168.1.1',
    '169.254.169.254',
    '100.64.0.1',
    '0.0.0.0',
    '224.0.0.1',
    '::1',
    '::',
    'fd00::1',
    'fe80::1',
    '::ffff:127.0.0.1',
    '::ffff:10.0.0.1',
  ]) {
    assert.equal(isNonPublicAddress(address), true, address);
  }
  for (const address of ['8.8.8.8', '1.1.1.1', '172.32.0.1', '2606:4700:4700::1111', '::ffff:8.8.8.8']) {
    assert.equal(isNonPublicAddress(address), false, address);
  }
});

test('callback targets: public names pass pinned to their address; private answers, odd schemes and credentials are refused', async () => {
  const dns = resolver({
    'hooks.example.com': ['93.184.216.34'],
    'rebind.example.com': ['93.184.216.34', '10.0.0.5'],
    'metadata.example.com': ['169.254.169.254'],
  });
  const ok = await checkCallbackTarget('https://hooks.example.com/zeropool', none, dns);
  assert.equal(ok.address, '93.184.216.34');
  await assert.rejects(
    checkCallbackTarget('https://rebind.example.com/x', none, dns),
    CallbackTargetRefused,
    'one private answer refuses the name',
  );
  await assert.rejects(checkCallbackTarget('http://metadata.example.com/latest', none, dns), /169\.254\.169\.254/);
  await assert.rejects(checkCallbackTarget('http://127.0.0.1:9/x', none, dns), CallbackTargetRefused);
  await assert.rejects(checkCallbackTarget('http://[::1]:9/x', none, dns), CallbackTargetRefused);
  await assert.rejects(checkCallbackTarget('ftp://hooks.example.com/x', none, dns), /http or https/);
  await assert.rejects(checkCallbackTarget('https://user:pw@hooks.example.com/x', none, dns), /credentials/);
  await assert.rejects(checkCallbackTarget('https://nowhere.example.com/x', none, dns), /cannot resolve/);
});

test('the allow-list admits named hosts, addresses and ranges, and nothing else', async () => {
  const allow = parseAllowList(['localhost', '127.0.0.1', '10.20.0.0/16']);
  const dns = resolver({ localhost: ['127.0.0.1', '::1'], 'build.internal': ['10.20.3.4'], 'other.internal': ['10.30.0.1'] });
  assert.equal((await checkCallbackTarget('http://localhost:8080/x', allow, dns)).address, '127.0.0.1');
  assert.equal((await checkCallbackTarget('http://127.0.0.1:8080/x', allow, dns)).address, '127.0.0.1');
  assert.equal((await checkCallbackTarget('http://build.internal/x', allow, dns)).address, '10.20.3.4');
  await assert.rejects(checkCallbackTarget('http://other.internal/x', allow, dns), CallbackTargetRefused);
  await assert.rejects(checkCallbackTarget('http://192.168.0.1/x', allow, dns), CallbackTargetRefused);
  assert.throws(() => parseAllowList(['10.0.0.0/99']), /bad allow-list range/);
  assert.throws(() => loadConfig({ CALLBACK_ALLOWED_HOSTS: 'localhost,10.0.0.0/40' }), /CALLBACK_ALLOWED_HOSTS: bad allow-list range/);
  assert.deepEqual(loadConfig({ CALLBACK_ALLOWED_HOSTS: ' localhost , 10.0.0.0/8 ' }).CALLBACK_ALLOWED_HOSTS, ['localhost', '10.0.0.0/8']);
});

test('signature: HMAC-SHA256 of "<timestamp>.<body>" in hex; tampering, another secret or a stale timestamp fail', () => {
  const body = '{"event":"job.completed"}';
  const now = 1_700_000_000_000;
  const ts = now / 1000;
  const header = signCallback('s3cret', ts, body);
  assert.equal(header, `v1=${createHmac('sha256', 's3cret').update(`${ts}.${body}`).digest('hex')}`);
  assert.equal(verifyCallback('s3cret', { timestamp: String(ts), signature: header }, body, { now }), true);
  assert.equal(verifyCallback('s3cret', { timestamp: String(ts), signature: header }, body.replace('completed', 'failed'), { now }), false);
  assert.equal(verifyCallback('other', { timestamp: String(ts), signature: header }, body, { now }), false);
  assert.equal(verifyCallback('s3cret', { timestamp: String(ts), signature: header }, body, { now: now + 301_000 }), false);
  assert.equal(verifyCallback('s3cret', { timestamp: String(ts), signature: undefined }, body, { now }), false);
});

test('ntfy publish: POST <server>/<topic>, message body, title, priority and tags headers, token when set', () => {
  const { url, init } = ntfyRequest(
    { url: 'https://ntfy.example.com/', topic: 'gpu-jobs', token: 'tk_abc' },
    { event: 'failed', jobId: 'j1', poolId: asPoolKey('team-a.chat'), priority: 2, attempt: 3, detail: 'model server answered 500' },
  );
  assert.equal(url, 'https://ntfy.example.com/gpu-jobs');
  const headers = init.headers as Record<string, string>;
  assert.equal(init.method, 'POST');
  assert.equal(headers.Title, 'zeropool job failed');
  assert.equal(headers.Priority, '4');
  assert.match(headers.Tags, /^x,zeropool,chat$/);
  assert.equal(headers.Authorization, 'Bearer tk_abc');
  assert.match(String(init.body), /Job j1 failed in pool chat \(workspace team-a, priority 2, attempt 3\)\.\nmodel server answered 500/);
});

test('SSRF guard, what the review found: IPv4 hidden in IPv6 in any notation (NAT64 in hex, local-use NAT64, IPv4-compatible, 6to4, Teredo) and site-local are not public; public targets only on 80, 443 or an allowed port', async () => {
  for (const address of [
    '64:ff9b::7f00:1', // NAT64 of 127.0.0.1, as URL parsing writes it
    '64:ff9b::127.0.0.1',
    '64:ff9b::a9fe:a9fe', // 169.254.169.254, the metadata address
    '64:ff9b:1::808:808', // local-use NAT64: whatever the operator maps
    'fec0::1', // site-local
    '::127.0.0.1', // IPv4-compatible
    '::7f00:1',
    '::ffff:7f00:1', // mapped, hex
    '2002:7f00:1::1', // 6to4 of 127.0.0.1
    '2001:0:4136:e378:8000:63bf:3fff:fdd2', // Teredo
  ]) {
    assert.equal(isNonPublicAddress(address), true, address);
  }
  for (const address of ['64:ff9b::808:808', '2002:808:808::1', '2606:4700:4700::1111']) {
    assert.equal(isNonPublicAddress(address), false, address);
  }
  const dns = resolver({ 'hooks.example.com': ['93.184.216.34'] });
  await assert.rejects(
    checkCallbackTarget('http://[64:ff9b::127.0.0.1]/x', none, dns),
    CallbackTargetRefused,
    'URL parsing turns it to hex',
  );
  assert.equal((await checkCallbackTarget('https://hooks.example.com/x', none, dns)).address, '93.184.216.34');
  assert.equal((await checkCallbackTarget('http://hooks.example.com:80/x', none, dns)).address, '93.184.216.34');
  await assert.rejects(checkCallbackTarget('https://hooks.example.com:22/x', none, dns), /port 22 is not allowed/);
  await assert.rejects(checkCallbackTarget('http://hooks.example.com:6379/x', none, dns), /CALLBACK_ALLOWED_PORTS/);
  const withPort = parseAllowList([], [8443]);
  assert.equal((await checkCallbackTarget('https://hooks.example.com:8443/x', withPort, dns)).address, '93.184.216.34');
  assert.equal(
    (await checkCallbackTarget('http://127.0.0.1:9999/x', parseAllowList(['127.0.0.1']), dns)).address,
    '127.0.0.1',
    'a host the admin listed may use any port',
  );
  assert.deepEqual(loadConfig({ CALLBACK_ALLOWED_PORTS: '8443, 9000' }).CALLBACK_ALLOWED_PORTS, [8443, 9000]);
  assert.throws(() => loadConfig({ CALLBACK_ALLOWED_PORTS: '70000' }), /CALLBACK_ALLOWED_PORTS/);
});

test('ntfy topics: one per workspace, in ntfy’s alphabet and length, the default workspace on the base topic', () => {
  const secrets = nodeSecrets(Buffer.alloc(32, 7));
  const topicOf = (ws: string) => workspaceTopic('zeropool-events', ws, secrets.topicSuffix(ws));
  assert.equal(topicOf('default'), 'zeropool-events');
  const a = topicOf('team-a');
  const b = topicOf('team-b');
  assert.notEqual(a, b);
  for (const topic of [a, b, topicOf('x'.repeat(63))]) assert.match(topic, NTFY_TOPIC_PATTERN);
  // Another key gives other topics: knowing a workspace id is not enough to subscribe.
  assert.notEqual(workspaceTopic('zeropool-events', 'team-a', nodeSecrets(Buffer.alloc(32, 8)).topicSuffix('team-a')), a);
  const request = ntfyRequest(
    { url: 'https://ntfy.example', topic: 'zeropool-events', topicOf },
    { event: 'completed', jobId: 'j1', poolId: asPoolKey('team-a.p'), priority: 3, attempt: 1 },
  );
  assert.equal(request.url, `https://ntfy.example/${a}`);
});
