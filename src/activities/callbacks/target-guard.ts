/**
 * Resolves and checks a callback's target before each delivery (SSRF guard; the rules are in
 * src/domain/callback-target.ts). The name is resolved once and the request is pinned to the checked
 * address, so a second lookup cannot rebind it elsewhere.
 */
import { lookup as dnsLookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { type AllowList, CallbackTargetRefused, checkCallbackUrlForm, isNonPublicAddress } from '../../domain/callback-target';

/** Where a callback may go: the URL and the one address it is pinned to. */
export interface CheckedTarget {
  url: URL;
  address: string;
  family: 4 | 6;
}

type Resolver = (host: string) => Promise<Array<{ address: string; family: number }>>;
const systemResolver: Resolver = (host) => dnsLookup(host, { all: true, verbatim: true });

/**
 * Resolves and checks a callback URL. Every address the name resolves to must be public or allowed
 * (one bad answer refuses the lot: the resolver could hand it out next time).
 */
export async function checkCallbackTarget(raw: string, allow: AllowList, resolve: Resolver = systemResolver): Promise<CheckedTarget> {
  const url = checkCallbackUrlForm(raw, allow);
  const host = url.hostname.replace(/^\[|\]$/g, '');
  const hostAllowed = allow.hosts.has(host.toLowerCase());
  const answers = isIP(host)
    ? [{ address: host, family: isIP(host) }]
    : await resolve(host).catch((err: Error) => {
        throw new Error(`cannot resolve ${host}: ${err.message}`);
      });
  if (answers.length === 0) throw new Error(`cannot resolve ${host}: no addresses`);
  for (const { address, family } of answers) {
    const allowed = hostAllowed || allow.ranges.check(address, family === 6 ? 'ipv6' : 'ipv4');
    if (!allowed && isNonPublicAddress(address)) {
      throw new CallbackTargetRefused(
        `callback host ${host} resolves to ${address}, a private or loopback address; allow it with CALLBACK_ALLOWED_HOSTS`,
      );
    }
  }
  return { url, address: answers[0].address, family: answers[0].family === 6 ? 6 : 4 };
}
