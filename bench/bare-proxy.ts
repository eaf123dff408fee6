/**
 * The bare proxy of `npm run bench:front-door`: a keep-alive Node HTTP proxy to one node and nothing else (no
 * auth, no validation, no lease, no ledger), in the same process as the API, so the front door's throughput has a
 * yardstick measured in the same run by the same load generator.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export async function startBareProxy(nodeUrl: string, nodeToken: string): Promise<{ url: string; close(): void }> {
  const agent = new http.Agent({ keepAlive: true, scheduling: 'lifo' });
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const upstream = http.request(
        `${nodeUrl}${req.url}`,
        {
          method: req.method,
          agent,
          headers: { 'content-type': 'application/json', 'content-length': body.length, authorization: `Bearer ${nodeToken}` },
        },
        (answer) => {
          res.writeHead(answer.statusCode ?? 502, answer.headers);
          answer.pipe(res);
        },
      );
      upstream.on('error', (err) => {
        res.writeHead(502).end(String(err));
      });
      upstream.end(body);
    });
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => {
      server.closeAllConnections();
      server.close();
      agent.destroy();
    },
  };
}
