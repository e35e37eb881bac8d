/**
 * Client address handling: one canonical text form per address (IPv4-mapped IPv6 in any spelling
 * becomes plain IPv4, IPv6 is compressed) and the rate-limit key (IPv4 as is, IPv6 by its /64).
 * A dual-stack uWS socket reports IPv4 peers as `0000:…:ffff:7f00:0001`; without this every IPv4
 * client would share one rate-limit bucket.
 */
import { isIPv4, isIPv6 } from 'node:net';

/** The 8 hextets of an IPv6 address (with any embedded IPv4 tail converted), or undefined. */
function hextets(ip: string): number[] | undefined {
  let addr = ip.split('%')[0] as string;
  if (!isIPv6(addr)) return undefined;
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(addr);
  if (v4) {
    const o = (v4[1] as string).split('.').map(Number) as [number, number, number, number];
    addr = `${addr.slice(0, -(v4[1] as string).length)}${((o[0] << 8) | o[1]).toString(16)}:${((o[2] << 8) | o[3]).toString(16)}`;
  }
  const [head = '', tail] = addr.split('::') as [string, string | undefined];
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const fill = tail === undefined ? [] : Array(8 - left.length - right.length).fill('0');
  const parts = [...left, ...fill, ...right].map((h) => Number.parseInt(h, 16));
  return parts.length === 8 && parts.every((n) => Number.isInteger(n) && n >= 0 && n <= 0xffff) ? parts : undefined;
}

export function normalizeIp(ip: string | undefined): string {
  if (!ip) return 'unknown';
  const trimmed = ip.trim();
  if (isIPv4(trimmed)) return trimmed;
  const h = hextets(trimmed);
  if (!h) return trimmed;
  // ::ffff:a.b.c.d (IPv4-mapped)
  if (h.slice(0, 5).every((x) => x === 0) && h[5] === 0xffff) {
    const a = h[6] as number;
    const b = h[7] as number;
    return `${a >> 8}.${a & 0xff}.${b >> 8}.${b & 0xff}`;
  }
  return h.map((x) => x.toString(16)).join(':');
}

/** Rate-limit key: IPv4 as is, IPv6 grouped by its /64. */
export function ipKey(ip: string): string {
  const n = normalizeIp(ip);
  if (!n.includes(':')) return n;
  const h = hextets(n);
  return h
    ? `${h
        .slice(0, 4)
        .map((x) => x.toString(16))
        .join(':')}::/64`
    : n;
}
