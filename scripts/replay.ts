/**
 * `npm run replay -- --workflow-id <id> [--run-id <run>] [--address host:port] [--namespace ns]`
 * Fetches a live workflow history and replays it against the current workflow code; exits 1 and names
 * the problem when the code is no longer deterministic for that history.
 */
import { parseArgs } from 'node:util';
import { Client, Connection } from '@temporalio/client';
import { DefaultLogger, Runtime, Worker } from '@temporalio/worker';
import { loadClientConfig } from '../src/client-config';
import { loadConfig } from '../src/config';
import { payloadDataConverter } from '../src/temporal-codec';
import { temporalConnectionOptions } from '../src/temporal-connection';
import { workflowBundle } from '../src/worker';

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      'workflow-id': { type: 'string' },
      'run-id': { type: 'string' },
      address: { type: 'string' },
      namespace: { type: 'string' },
    },
  });
  // The server's own variables (and .env): TEMPORAL_ADDRESS, else the embedded dev server's TEMPORAL_PORT.
  const client = loadClientConfig();
  const address = values.address ?? client.temporalAddress;
  const addressFrom = values.address ? '--address' : client.temporalAddressFrom;
  const namespace = values.namespace ?? client.namespace;
  const workflowId = values['workflow-id'];
  if (!workflowId) {
    process.stderr.write('usage: npm run replay -- --workflow-id <id> [--run-id <run>] [--address host:port]\n');
    process.exit(2);
  }
  Runtime.install({ logger: new DefaultLogger('WARN') });
  // TLS, client certificate and API key come from the same variables as the services' (TEMPORAL_TLS_*, TEMPORAL_API_KEY).
  const config = loadConfig();
  // A tool someone waits on: 5 s to reach the server (the SDK's default is 10 s), then the message below.
  const connection = await Connection.connect({ address, connectTimeout: '5 seconds', ...temporalConnectionOptions(config) }).catch(
    (err: Error) => {
      throw new Error(`cannot reach Temporal at ${address}: ${err.message} (set ${addressFrom})`);
    },
  );
  // With TEMPORAL_PAYLOAD_KEYS set, the history's payloads are decrypted as the workers would.
  const dataConverter = payloadDataConverter(config.TEMPORAL_PAYLOAD_KEYS);
  const temporal = new Client({ connection, namespace, dataConverter });
  const history = await temporal.workflow.getHandle(workflowId, values['run-id']).fetchHistory();
  process.stdout.write(`replaying ${workflowId}: ${history.events?.length ?? 0} events\n`);
  try {
    await Worker.runReplayHistory({ workflowBundle: await workflowBundle(), dataConverter }, history, workflowId);
    process.stdout.write('ok: the current code replays this history deterministically\n');
  } catch (err) {
    process.stdout.write(`NONDETERMINISM: ${(err as Error).message}\n`);
    process.exitCode = 1;
  } finally {
    await connection.close();
  }
}

main().catch((err) => {
  process.stderr.write(`replay failed: ${(err as Error).message}\n`);
  process.exit(1);
});
