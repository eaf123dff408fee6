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
  ['fec0::', 10],
  ['ff00::', 8],
  ['2001:db8::', 32],
  // Teredo tunnels hide their IPv4 address (obfuscated): none is a callback receiver.
  ['2001::', 32],
  // Local-use NAT64 (RFC 8215): translates to whatever the operator's network holds.
  ['64:ff9b:1::', 48],
] as const) {
  NON_PUBLIC.addSubnet(net, bits, 'ipv6');
}

/** An IPv6 address as its eight 16-bit groups (dotted IPv4 tails included); undefined if it is not one. */
function ipv6Groups(address: string): number[] | undefined {
  let text = address.toLowerCase();
  const dotted = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (dotted) {
    const [a, b, c, d] = dotted.slice(1).map(Number) as [number, number, number, number];
    text = `${text.slice(0, dotted.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head, tail] = text.split('::') as [string, string | undefined];
  const part = (s: string | undefined) => (s ? s.split(':').map((g) => Number.parseInt(g, 16)) : []);
  const left = part(head);
  const right = part(tail);
  const groups = tail === undefined ? left : [...left, ...Array(8 - left.length - right.length).fill(0), ...right];
  return groups.length === 8 && groups.every((g) => Number.isInteger(g) && g >= 0 && g <= 0xffff) ? groups : undefined;
}

/**
 * The IPv4 address an IPv6 address carries, in whatever notation: IPv4-mapped (`::ffff:0:0/96`), IPv4-translated
 * (`::ffff:0:0:0/96`),
 * IPv4-compatible (`::/96`), NAT64 (`64:ff9b::/96`, dotted or hex, e.g. `64:ff9b::7f00:1`) and 6to4 (`2002::/16`).
 */
function embeddedIpv4(address: string): string | undefined {
  const g = ipv6Groups(address);
  if (!g) return undefined;
  const v4 = (hi: number, lo: number) => `${hi >> 8}.${hi & 0xff}.${lo >> 8}.${lo & 0xff}`;
  const zeros = (from: number, to: number) => g.slice(from, to).every((x) => x === 0);
  if (zeros(0, 5) && (g[5] === 0xffff || (g[5] === 0 && (g[6]! !== 0 || g[7]! > 1)))) return v4(g[6]!, g[7]!);
  // IPv4-translated (`::ffff:0:a.b.c.d`, RFC 2765's SIIT form).
  if (zeros(0, 4) && g[4] === 0xffff && g[5] === 0) return v4(g[6]!, g[7]!);
  if (g[0] === 0x64 && g[1] === 0xff9b && zeros(2, 6)) return v4(g[6]!, g[7]!);
  if (g[0] === 0x2002) return v4(g[1]!, g[2]!);
  return undefined;
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
  /** Ports a public callback target may use besides 80 and 443 (CALLBACK_ALLOWED_PORTS). */
  ports: Set<number>;
}

/** Ports every public callback target may use. */
const STANDARD_PORTS = new Set([80, 443]);

/** Parses CALLBACK_ALLOWED_HOSTS entries: `localhost`, `127.0.0.1`, `10.0.0.0/8`, `::1`. Throws on a bad range. */
export function parseAllowList(entries: string[], ports: number[] = []): AllowList {
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
  return { hosts, ranges, ports: new Set(ports) };
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
  const listed = allow.hosts.has(host.toLowerCase()) || (family !== 0 && allow.ranges.check(host, family === 4 ? 'ipv4' : 'ipv6'));
  if (family && isNonPublicAddress(host) && !listed) {
    throw new CallbackTargetRefused(`callback address ${host} is private or loopback; allow it with CALLBACK_ALLOWED_HOSTS`);
  }
  // A public target speaks on 80 or 443 (or a port the admin allowed); any other port would let callbacks
  // probe services. Hosts the admin listed are trusted with any port.
  const port = url.port ? Number(url.port) : url.protocol === 'https:' ? 443 : 80;
  if (!listed && !STANDARD_PORTS.has(port) && !allow.ports.has(port)) {
    throw new CallbackTargetRefused(`callback port ${port} is not allowed: use 80 or 443, or allow it with CALLBACK_ALLOWED_PORTS`);
  }
  return url;
}

/** Where a job's callback stands, as shown on the job. */
export interface CallbackState {
  url: string;
  state: 'retrying' | 'delivered' | 'refused' | 'failed';
  attempts: number;
  lastStatus?: number;
  lastError?: string;
  deliveredAt?: string;
}
