/**
 * Callback signatures. Each callback carries `X-Zeropool-Timestamp` (unix seconds) and
 * `X-Zeropool-Signature: v1=<hex HMAC-SHA256 of "<timestamp>.<raw body>" under the workspace's secret>`.
 * A receiver recomputes the HMAC over the raw body, compares in constant time and rejects old timestamps.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

export const TIMESTAMP_HEADER = 'x-zeropool-timestamp';
export const SIGNATURE_HEADER = 'x-zeropool-signature';

/** The signature header value for a body sent at `timestamp` (unix seconds). */
export function signCallback(secret: string, timestamp: number, body: string): string {
  return `v1=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`;
}

/** Verifies a received callback: signature over the raw body, timestamp within `toleranceSeconds` of `now`. */
export function verifyCallback(
  secret: string,
  headers: { timestamp: string | undefined; signature: string | undefined },
  body: string,
  options: { now?: number; toleranceSeconds?: number } = {},
): boolean {
  const timestamp = Number(headers.timestamp);
  if (!Number.isInteger(timestamp) || !headers.signature) return false;
  const now = Math.floor((options.now ?? Date.now()) / 1000);
  if (Math.abs(now - timestamp) > (options.toleranceSeconds ?? 300)) return false;
  const expected = Buffer.from(signCallback(secret, timestamp, body));
  const presented = Buffer.from(headers.signature);
  return expected.length === presented.length && timingSafeEqual(expected, presented);
}
