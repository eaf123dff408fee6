/**
 * Which callback targets are allowed (SSRF guard), without any lookup: a callback may reach only public
 * addresses, unless an allow-list (CALLBACK_ALLOWED_HOSTS: host names, addresses or CIDR ranges) names the
 * target. The API checks a URL's form at submission; the delivery activity resolves the name and checks
 * every address (src/activities/callbacks/target-guard.ts).
 */
import { BlockList, isIP } from 'node:net';

/** Address ranges a callback never reaches unless allowed: loopback, private, link-local, CGNAT, multicast, reserved. */
const NON_PUBLIC = new BlockList();
for (const [net, bits] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.0.2.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['198.51.100.0', 24],
  ['203.0.113.0', 24],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
] as const) {
  NON_PUBLIC.addSubnet(net, bits, 'ipv4');
}
for (const [net, bits] of [
  ['::', 128],
  ['::1', 128],
  ['fc00::', 7],
  ['fe80::', 10],
  ['ff00::', 8],
  ['2001:db8::', 32],
] as const) {
  NON_PUBLIC.addSubnet(net, bits, 'ipv6');
}

/** The IPv4 address an IPv4-mapped or NAT64 IPv6 address carries, if any. */
function embeddedIpv4(address: string): string | undefined {
  const match = /^(?:::ffff:|64:ff9b::)(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  return match?.[1];
}

/** Whether an address is anything but a public unicast address. */
export function isNonPublicAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 4) return NON_PUBLIC.check(address, 'ipv4');
  if (family === 6) {
    const v4 = embeddedIpv4(address);
    return v4 ? NON_PUBLIC.check(v4, 'ipv4') : NON_PUBLIC.check(address, 'ipv6');
  }
  return true;
}

/** A parsed allow-list. */
export interface AllowList {
  hosts: Set<string>;
  ranges: BlockList;
}

/** Parses CALLBACK_ALLOWED_HOSTS entries: `localhost`, `127.0.0.1`, `10.0.0.0/8`, `::1`. Throws on a bad range. */
export function parseAllowList(entries: string[]): AllowList {
  const hosts = new Set<string>();
  const ranges = new BlockList();
  for (const raw of entries.map((e) => e.trim()).filter(Boolean)) {
    const [address, bits] = raw.split('/');
    const family = isIP(address);
    if (bits !== undefined) {
      const prefix = Number(bits);
      if (!family || !Number.isInteger(prefix) || prefix < 0 || prefix > (family === 4 ? 32 : 128))
        throw new Error(`bad allow-list range: ${raw}`);
      ranges.addSubnet(address, prefix, family === 4 ? 'ipv4' : 'ipv6');
    } else if (family) {
      ranges.addAddress(address, family === 4 ? 'ipv4' : 'ipv6');
    } else {
      hosts.add(raw.toLowerCase());
    }
  }
  return { hosts, ranges };
}

/** A refused target: never retried. */
export class CallbackTargetRefused extends Error {
  override readonly name = 'CallbackTargetRefused';
}

/** Checks the URL's form only (no lookup): for a quick answer at submission. */
export function checkCallbackUrlForm(raw: string, allow: AllowList): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new CallbackTargetRefused('callback URL is not a valid URL');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new CallbackTargetRefused('callback URL must be http or https');
  if (url.username || url.password) throw new CallbackTargetRefused('callback URL must not carry credentials');
  const host = url.hostname.replace(/^\[|\]$/g, '');
  const family = isIP(host);
  if (family && isNonPublicAddress(host) && !allow.ranges.check(host, family === 4 ? 'ipv4' : 'ipv6')) {
    throw new CallbackTargetRefused(`callback address ${host} is private or loopback; allow it with CALLBACK_ALLOWED_HOSTS`);
  }
  return url;
}
