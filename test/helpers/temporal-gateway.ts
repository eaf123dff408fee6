/**
 * A secured front for the plaintext dev server, shaped like Temporal Cloud's: gRPC over HTTP/2 on TLS that
 * admits a call only with a client certificate signed by its CA (mTLS) or with `authorization: Bearer <key>`
 * (API key), and forwards admitted calls to the dev server. Certificates are made by the openssl CLI.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';

export interface Certificates {
  dir: string;
  caCert: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
  /** A client certificate from a CA the gateway does not trust. */
  strangerCert: string;
  strangerKey: string;
}

/** A CA, a server certificate for localhost / 127.0.0.1 and client certificates, in a temporary folder. */
export function makeCertificates(): Certificates {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'zeropool-tls-'));
  const file = (name: string) => path.join(dir, name);
  const openssl = (...args: string[]) => execFileSync('openssl', args, { stdio: 'pipe' });
  const ca = (name: string) =>
    openssl(
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-days',
      '2',
      '-subj',
      `/CN=${name}`,
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
      '-keyout',
      file(`${name}.key`),
      '-out',
      file(`${name}.pem`),
    );
  const leaf = (name: string, caName: string, extensions: string) => {
    openssl(
      'req',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-subj',
      `/CN=${name}`,
      '-keyout',
      file(`${name}.key`),
      '-out',
      file(`${name}.csr`),
    );
    writeFileSync(file(`${name}.ext`), extensions);
    openssl(
      'x509',
      '-req',
      '-in',
      file(`${name}.csr`),
      '-CA',
      file(`${caName}.pem`),
      '-CAkey',
      file(`${caName}.key`),
      '-CAcreateserial',
      '-days',
      '2',
      '-extfile',
      file(`${name}.ext`),
      '-out',
      file(`${name}.pem`),
    );
  };
  ca('ca');
  ca('stranger-ca');
  leaf('server', 'ca', 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n');
  leaf('client', 'ca', 'extendedKeyUsage=clientAuth\nbasicConstraints=CA:FALSE\n');
  leaf('stranger', 'stranger-ca', 'extendedKeyUsage=clientAuth\nbasicConstraints=CA:FALSE\n');
  return {
    dir,
    caCert: file('ca.pem'),
    serverCert: file('server.pem'),
    serverKey: file('server.key'),
    clientCert: file('client.pem'),
    clientKey: file('client.key'),
    strangerCert: file('stranger.pem'),
    strangerKey: file('stranger.key'),
  };
}

export interface Gateway {
  address: string;
  /** Calls refused for a missing or wrong API key. */
  refused: number;
  /** Calls forwarded to the dev server. */
  forwarded: number;
  close(): Promise<void>;
}

/** Starts the gateway on 127.0.0.1 in front of `target` (host:port). */
export async function startGateway(
  target: string,
  certs: Certificates,
  admit: { kind: 'mtls' } | { kind: 'api-key'; key: string },
): Promise<Gateway> {
  const upstream = http2.connect(`http://${target}`);
  const server = http2.createSecureServer({
    key: readFileSync(certs.serverKey),
    cert: readFileSync(certs.serverCert),
    ca: readFileSync(certs.caCert),
    requestCert: admit.kind === 'mtls',
    rejectUnauthorized: admit.kind === 'mtls',
    ALPNProtocols: ['h2'],
  });
  const gateway: Gateway = { address: '', refused: 0, forwarded: 0, close: async () => {} };
  server.on('stream', (stream, headers) => {
    if (admit.kind === 'api-key' && headers.authorization !== `Bearer ${admit.key}`) {
      gateway.refused++;
      // A trailers-only gRPC answer: UNAUTHENTICATED (16).
      stream.respond(
        { ':status': 200, 'content-type': 'application/grpc', 'grpc-status': '16', 'grpc-message': 'bad API key' },
        { endStream: true },
      );
      return;
    }
    gateway.forwarded++;
    const forward: http2.OutgoingHttpHeaders = {};
    for (const [name, value] of Object.entries(headers)) {
      if (name === ':scheme' || name === ':authority' || name === 'authorization') continue;
      forward[name] = value;
    }
    const call = upstream.request(forward);
    stream.pipe(call);
    let trailers: http2.OutgoingHttpHeaders = {};
    call.on('trailers', (received) => {
      trailers = { ...received };
    });
    call.on('response', (response) => {
      const answer = { ...response };
      delete answer[':status'];
      if (response['grpc-status'] !== undefined) {
        stream.respond({ ':status': 200, ...answer }, { endStream: true });
        return;
      }
      stream.respond({ ':status': response[':status'] ?? 200, ...answer }, { waitForTrailers: true });
      stream.on('wantTrailers', () => stream.sendTrailers(trailers));
      call.pipe(stream);
    });
    call.on('error', () => stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR));
    stream.on('error', () => call.close(http2.constants.NGHTTP2_CANCEL));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  gateway.address = `localhost:${(server.address() as AddressInfo).port}`;
  gateway.close = async () => {
    for (const session of sessions) session.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    upstream.close();
  };
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on('session', (session) => {
    sessions.add(session);
    session.on('close', () => sessions.delete(session));
  });
  return gateway;
}

/** Removes the certificate folder. */
export function removeCertificates(certs: Certificates): void {
  rmSync(certs.dir, { recursive: true, force: true });
}
