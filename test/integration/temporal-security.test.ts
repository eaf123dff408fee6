/**
 * zeropool reaches a secured Temporal: mTLS and API key, through a local TLS gateway shaped like Temporal
 * Cloud's (test/helpers/temporal-gateway.ts) in front of the real dev server. The client and the worker's
 * native connection both go through it; a stranger's certificate and a wrong key are refused.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Connection } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { loadConfig } from '../../src/config';
import { connectTemporal } from '../../src/runtime';
import { temporalConnectionOptions } from '../../src/temporal-connection';
import { type Certificates, makeCertificates, removeCertificates, startGateway } from '../helpers/temporal-gateway';
import { devServerEnv } from '../helpers/temporal';

describe('secured Temporal (local TLS gateway in front of the dev server)', () => {
  let env: TestWorkflowEnvironment;
  let certs: Certificates;
  let target: string;
  before(async () => {
    env = await devServerEnv();
    target = (env.connection as Connection).options.address;
    certs = makeCertificates();
  });
  after(async () => {
    await env?.teardown();
    if (certs) removeCertificates(certs);
  });

  test('mTLS: the configured client certificate connects client and worker; a stranger certificate is refused', async () => {
    const gateway = await startGateway(target, certs, { kind: 'mtls' });
    try {
      const config = loadConfig({
        TEMPORAL_ADDRESS: gateway.address,
        TEMPORAL_TLS_CLIENT_CERT_PATH: certs.clientCert,
        TEMPORAL_TLS_CLIENT_KEY_PATH: certs.clientKey,
        TEMPORAL_TLS_SERVER_CA_CERT_PATH: certs.caCert,
      });
      const temporal = await connectTemporal(gateway.address, 'default', temporalConnectionOptions(config));
      try {
        const info = await temporal.client.workflowService.getSystemInfo({});
        assert.ok(info.serverVersion, 'the client reached the server');
        const native = await temporal.nativeConnection.workflowService.getSystemInfo({});
        assert.ok(native.serverVersion, 'the worker connection reached the server');
        assert.ok(gateway.forwarded >= 2);
      } finally {
        await temporal.connection.close();
        await temporal.nativeConnection.close();
      }
      const stranger = temporalConnectionOptions(
        loadConfig({
          TEMPORAL_TLS_CLIENT_CERT_PATH: certs.strangerCert,
          TEMPORAL_TLS_CLIENT_KEY_PATH: certs.strangerKey,
          TEMPORAL_TLS_SERVER_CA_CERT_PATH: certs.caCert,
        }),
      );
      await assert.rejects(
        Connection.connect({ address: gateway.address, connectTimeout: 1500, ...stranger }).then((c) =>
          c.workflowService.getSystemInfo({}),
        ),
      );
      const noCertificate = temporalConnectionOptions(loadConfig({ TEMPORAL_TLS_SERVER_CA_CERT_PATH: certs.caCert }));
      await assert.rejects(
        Connection.connect({ address: gateway.address, connectTimeout: 1500, ...noCertificate }).then((c) =>
          c.workflowService.getSystemInfo({}),
        ),
      );
    } finally {
      await gateway.close();
    }
  });

  test('API key: sent as a bearer token over TLS by client and worker; a wrong key is refused', async () => {
    const key = 'zp-test-temporal-api-key-0123456789';
    const gateway = await startGateway(target, certs, { kind: 'api-key', key });
    try {
      const options = temporalConnectionOptions(loadConfig({ TEMPORAL_API_KEY: key, TEMPORAL_TLS_SERVER_CA_CERT_PATH: certs.caCert }));
      assert.ok(options.tls, 'an API key turns TLS on');
      const temporal = await connectTemporal(gateway.address, 'default', options);
      try {
        assert.ok((await temporal.client.workflowService.getSystemInfo({})).serverVersion);
        assert.ok((await temporal.nativeConnection.workflowService.getSystemInfo({})).serverVersion);
      } finally {
        await temporal.connection.close();
        await temporal.nativeConnection.close();
      }
      assert.equal(gateway.refused, 0);
      const wrong = temporalConnectionOptions(
        loadConfig({ TEMPORAL_API_KEY: 'not-the-key', TEMPORAL_TLS_SERVER_CA_CERT_PATH: certs.caCert }),
      );
      await assert.rejects(
        Connection.connect({ address: gateway.address, connectTimeout: 1500, ...wrong }).then((c) => c.workflowService.getSystemInfo({})),
        (err: Error) => /UNAUTHENTICATED/.test(`${err.message} ${(err.cause as Error | undefined)?.message}`),
      );
      assert.ok(gateway.refused >= 1);
    } finally {
      await gateway.close();
    }
  });

  test('configuration: a certificate without its key, or an unreadable file, is a clear error', () => {
    assert.throws(() => loadConfig({ TEMPORAL_TLS_CLIENT_CERT_PATH: '/tmp/a.pem' }), /set both \(mTLS\) or neither/);
    assert.throws(
      () => temporalConnectionOptions(loadConfig({ TEMPORAL_TLS_SERVER_CA_CERT_PATH: '/nonexistent/ca.pem' })),
      /TEMPORAL_TLS_SERVER_CA_CERT_PATH: cannot read \/nonexistent\/ca.pem/,
    );
    assert.deepEqual(temporalConnectionOptions(loadConfig({})), {}, 'plaintext by default');
  });
});
