/**
 * How every zeropool process reaches Temporal: plain on a trusted network (the embedded dev server, compose),
 * or over TLS with a client certificate (mTLS: self-hosted clusters, Temporal Cloud) or an API key (Temporal
 * Cloud). The variables are the `temporal` CLI's own, so one environment serves zeropool and the CLI alike.
 */
import { readFileSync } from 'node:fs';
import type { TLSConfig } from '@temporalio/client';
import { z } from 'zod';

const flag = z
  .enum(['', '0', '1', 'false', 'true'])
  .default('0')
  .transform((v) => v === '1' || v === 'true');

/** The connection variables (merged into the config schema). */
export const temporalConnectionSchema = {
  /** Temporal Cloud API key (sent as `Authorization: Bearer`); turns TLS on. */
  TEMPORAL_API_KEY: z.string().min(1).optional(),
  /** TLS without a client certificate (e.g. behind a TLS-terminating proxy); implied by the other TLS_ variables. */
  TEMPORAL_TLS: flag,
  TEMPORAL_TLS_CLIENT_CERT_PATH: z.string().optional(),
  TEMPORAL_TLS_CLIENT_KEY_PATH: z.string().optional(),
  /** The server's CA when the operating system does not trust it (self-hosted clusters). */
  TEMPORAL_TLS_SERVER_CA_CERT_PATH: z.string().optional(),
  TEMPORAL_TLS_SERVER_NAME: z.string().optional(),
};

export interface TemporalConnectionSettings {
  TEMPORAL_API_KEY?: string;
  TEMPORAL_TLS: boolean;
  TEMPORAL_TLS_CLIENT_CERT_PATH?: string;
  TEMPORAL_TLS_CLIENT_KEY_PATH?: string;
  TEMPORAL_TLS_SERVER_CA_CERT_PATH?: string;
  TEMPORAL_TLS_SERVER_NAME?: string;
}

/** What `Connection.connect` and `NativeConnection.connect` take besides the address. */
export interface TemporalConnectionOptions {
  tls?: TLSConfig;
  apiKey?: string;
}

/** Checks the settings hang together (a certificate needs its key); returns the problems, none when fine. */
export function temporalConnectionProblems(settings: TemporalConnectionSettings): string[] {
  const problems: string[] = [];
  if (Boolean(settings.TEMPORAL_TLS_CLIENT_CERT_PATH) !== Boolean(settings.TEMPORAL_TLS_CLIENT_KEY_PATH))
    problems.push('TEMPORAL_TLS_CLIENT_CERT_PATH and TEMPORAL_TLS_CLIENT_KEY_PATH: set both (mTLS) or neither');
  return problems;
}

/** Reads the certificate files; a missing or unreadable file is an error that names the variable. */
export function temporalConnectionOptions(settings: TemporalConnectionSettings): TemporalConnectionOptions {
  const read = (variable: keyof TemporalConnectionSettings): Buffer | undefined => {
    const file = settings[variable];
    if (typeof file !== 'string') return undefined;
    try {
      return readFileSync(file);
    } catch (err) {
      throw new Error(`${variable}: cannot read ${file}: ${(err as Error).message}`);
    }
  };
  const crt = read('TEMPORAL_TLS_CLIENT_CERT_PATH');
  const key = read('TEMPORAL_TLS_CLIENT_KEY_PATH');
  const ca = read('TEMPORAL_TLS_SERVER_CA_CERT_PATH');
  const tlsOn =
    settings.TEMPORAL_TLS ||
    Boolean(settings.TEMPORAL_API_KEY) ||
    Boolean(crt) ||
    Boolean(ca) ||
    Boolean(settings.TEMPORAL_TLS_SERVER_NAME);
  const options: TemporalConnectionOptions = {};
  if (tlsOn) {
    options.tls = {
      ...(crt && key ? { clientCertPair: { crt, key } } : {}),
      ...(ca ? { serverRootCACertificate: ca } : {}),
      ...(settings.TEMPORAL_TLS_SERVER_NAME ? { serverNameOverride: settings.TEMPORAL_TLS_SERVER_NAME } : {}),
    };
  }
  if (settings.TEMPORAL_API_KEY) options.apiKey = settings.TEMPORAL_API_KEY;
  return options;
}

/** How the connection is secured, for the start-up log (never the key itself). */
export function describeTemporalSecurity(options: TemporalConnectionOptions): string {
  if (!options.tls) return 'plaintext';
  const parts = ['tls'];
  if (options.tls.clientCertPair) parts.push('client certificate');
  if (options.apiKey) parts.push('API key');
  return parts.join(' + ');
}
