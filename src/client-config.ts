/**
 * What every client tool reads (the `zeropool` CLI, `npm run simulate`, `npm run replay`): the server's own
 * variables with the server's own defaults, so a tool finds the server that `npm start` started with the same
 * environment (or `.env`). One key variable for clients: ZEROPOOL_KEY; unset, the admin key `npm start` keeps
 * in the data folder, when this machine has it.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { loadConfig } from './config';

export interface ClientConfig {
  /** The API's base URL, and the variables that set it (for "cannot reach" messages). */
  apiUrl: string;
  apiUrlFrom: string;
  key?: string;
  keyFrom: string;
  /** Temporal's frontend (host:port), and the variables that set it. */
  temporalAddress: string;
  temporalAddressFrom: string;
  namespace: string;
}

/** A host the server listens on, as a client dials it (a wildcard address means this machine). */
function dialHost(host: string): string {
  if (host === '0.0.0.0' || host === '') return '127.0.0.1';
  if (host === '::') return '[::1]';
  return host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
}

export function loadClientConfig(env: Record<string, string | undefined> = process.env): ClientConfig {
  const config = loadConfig(env);
  const url = config.ZEROPOOL_URL;
  const keyFile = path.join(config.dataDir, 'admin-key');
  const key = config.ZEROPOOL_KEY ?? (existsSync(keyFile) ? readFileSync(keyFile, 'utf8').trim() : undefined);
  return {
    apiUrl: (url || `http://${dialHost(config.HOST)}:${config.PORT}`).replace(/\/$/, ''),
    apiUrlFrom: url ? 'ZEROPOOL_URL' : 'ZEROPOOL_URL, or HOST and PORT',
    ...(key ? { key } : {}),
    keyFrom: config.ZEROPOOL_KEY ? 'ZEROPOOL_KEY' : `ZEROPOOL_KEY (else ${keyFile})`,
    temporalAddress: config.TEMPORAL_ADDRESS ?? `127.0.0.1:${config.TEMPORAL_PORT}`,
    temporalAddressFrom: config.TEMPORAL_ADDRESS ? 'TEMPORAL_ADDRESS' : 'TEMPORAL_ADDRESS, or TEMPORAL_PORT',
    namespace: config.TEMPORAL_NAMESPACE,
  };
}
