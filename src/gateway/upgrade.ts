/**
 * The `/ws` upgrade: its rules that need no I/O — where the token may come from (only the
 * `access_token.<jwt>` subprotocol, never the URL or a cookie), which browser origins may connect, the
 * client address for the per-IP upgrade limit — and the handler that applies them in order: per-IP
 * limit (counts every attempt) → handshake (version 13, a valid key: else 400) → URL token → Origin →
 * token and live session. A refusal is an HTTP answer (400/401/403/429/503) and no socket.
 */

import { STATUS_CODES } from 'node:http';
import { BlockList, isIP } from 'node:net';
import type { Config } from '../config/index.js';
import type { AppContext } from '../context.js';
import { randomToken } from '../crypto/random.js';
import { AppError, errors, toAppError } from '../errors.js';
import { normalizeIp } from '../net/ip.js';
import type { HttpRequest, HttpResponse, us_socket_context_t } from '../net/uws.js';
import { ipKey } from '../ratelimit/index.js';
import { Connection, type ConnectionHost } from './connection.js';

export const TOKEN_PROTOCOL_PREFIX = 'access_token.';
export const SELECTED_PROTOCOL = 'access_token';

/** The JWT from `Sec-WebSocket-Protocol: access_token.<jwt>, access_token`, or undefined. */
export function tokenFromProtocols(header: string): string | undefined {
  const offered = header
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean);
  // Without the bare `access_token` we could only answer by echoing the token: refuse instead.
  if (!offered.includes(SELECTED_PROTOCOL)) return undefined;
  const withToken = offered.filter((p) => p.startsWith(TOKEN_PROTOCOL_PREFIX));
  if (withToken.length !== 1) return undefined;
  const token = (withToken[0] as string).slice(TOKEN_PROTOCOL_PREFIX.length);
  return token.length > 0 && token.length <= 4096 ? token : undefined;
}

const JWT_LIKE = /eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+/;
const TOKEN_PARAM = /(^|&)[^=&]*(token|jwt|auth|bearer|session)[^=&]*=/i;

/** Throws 401 when the query string carries anything that looks like a credential. */
export function refuseTokenInUrl(query: string): void {
  if (!query) return;
  let decoded = query;
  try {
    decoded = decodeURIComponent(query);
  } catch {}
  if (TOKEN_PARAM.test(query) || JWT_LIKE.test(decoded)) {
    throw errors.unauthenticated('Tokens in the URL are not accepted; use the access_token subprotocol.');
  }
}

const originOf = (url: string): string | undefined => {
  try {
    const u = new URL(url);
    return u.origin === 'null' ? undefined : u.origin.toLowerCase();
  } catch {
    return undefined;
  }
};

/**
 * DESIGN.md §7: no Origin (native client) → allowed; else it must be in VOICECHAT_ALLOWED_ORIGINS, else
 * equal the origin of VOICECHAT_PUBLIC_URL, else (nothing configured) match the request's Host.
 */
export function originAllowed(config: Config, origin: string, host: string): boolean {
  if (!origin) return true;
  const given = originOf(origin);
  if (!given) return false;
  if (config.allowedOrigins.length > 0) return config.allowedOrigins.some((o) => originOf(o) === given);
  if (config.publicUrl) return originOf(config.publicUrl) === given;
  if (!host) return false;
  return new URL(given).host === host.toLowerCase();
}

/** Text form of a uWS peer address, canonical (an IPv4-mapped IPv6 peer is shown as IPv4). */
export const peerAddress = (raw: ArrayBuffer): string => normalizeIp(Buffer.from(raw).toString());

/**
 * VOICECHAT_TRUSTED_PROXIES as a BlockList: addresses, CIDR ranges and the keyword `loopback`;
 * undefined when no proxy is trusted. Built once per gateway.
 */
export function trustedProxyList(entries: string[]): BlockList | undefined {
  if (entries.length === 0) return undefined;
  const list = new BlockList();
  for (const raw of entries) {
    const entry = raw === 'loopback' ? '127.0.0.0/8' : raw;
    if (raw === 'loopback') list.addAddress('::1', 'ipv6');
    const [addr = '', bits] = entry.split('/');
    const family = isIP(addr) === 6 ? 'ipv6' : isIP(addr) === 4 ? 'ipv4' : undefined;
    if (!family) continue;
    if (bits === undefined) list.addAddress(addr, family);
    else list.addSubnet(addr, Number(bits), family);
  }
  return list;
}

const trusted = (list: BlockList, ip: string) => {
  const family = isIP(ip) === 6 ? 'ipv6' : isIP(ip) === 4 ? 'ipv4' : undefined;
  return family ? list.check(ip, family) : false;
};

/**
 * The client address: the peer, or — when the peer is a trusted proxy — the nearest X-Forwarded-For
 * hop that is not itself trusted (the HTTP side applies the same rule through Express `trust proxy`).
 */
export function upgradeClientIp(list: BlockList | undefined, peer: string, forwardedFor: string): string {
  if (!list || !forwardedFor) return peer;
  if (!trusted(list, peer)) return peer;
  const hops = forwardedFor
    .split(',')
    .map((h) => normalizeIp(h.trim()))
    .filter(Boolean);
  for (let i = hops.length - 1; i >= 0; i--) {
    const hop = hops[i] as string;
    if (!isIP(hop)) return peer;
    if (!trusted(list, hop)) return hop;
  }
  return hops[0] ?? peer;
}

export interface UpgradeDeps {
  ctx: Pick<AppContext, 'config' | 'limits' | 'sessions' | 'logger'>;
  host: ConnectionHost;
  /** True once the gateway is closing: upgrades finishing after that are refused (503). */
  isClosed(): boolean;
}

/**
 * RFC 6455 §4.2.1: version 13 and a 16-byte base64 key, or 400 at once (with the version we speak,
 * §4.4) — uWS would otherwise hold a bad handshake open until its idle timeout.
 */
export function checkHandshake(version: string, key: string): void {
  if (version.trim() !== '13') {
    throw new AppError('VALIDATION_FAILED', 400, 'Unsupported WebSocket version; this server speaks 13.', {
      details: [{ path: 'Sec-WebSocket-Version', message: 'must be 13' }],
      headers: { 'Sec-WebSocket-Version': '13' },
    });
  }
  if (!/^[A-Za-z0-9+/]{22}==$/.test(key.trim())) {
    throw errors.validation('Invalid Sec-WebSocket-Key.', [
      { path: 'Sec-WebSocket-Key', message: 'must be 16 bytes in base64' },
    ]);
  }
}

/** The uWS `upgrade` handler of `/ws`. */
export function upgradeHandler(deps: UpgradeDeps) {
  const { config, limits, sessions, logger } = deps.ctx;
  const proxies = trustedProxyList(config.trustedProxies);
  return (res: HttpResponse, req: HttpRequest, context: us_socket_context_t): void => {
    // The request object dies at the first await: copy what we need now.
    const key = req.getHeader('sec-websocket-key');
    const version = req.getHeader('sec-websocket-version');
    const protocols = req.getHeader('sec-websocket-protocol');
    const extensions = req.getHeader('sec-websocket-extensions');
    const origin = req.getHeader('origin');
    const host = req.getHeader('host');
    const query = req.getQuery() ?? '';
    const ip = upgradeClientIp(proxies, peerAddress(res.getRemoteAddressAsText()), req.getHeader('x-forwarded-for'));
    let aborted = false;
    res.onAborted(() => {
      aborted = true;
    });
    void (async () => {
      let conn: Connection;
      try {
        if (deps.isClosed()) throw errors.unavailable('The server is shutting down.');
        await limits.consume('ws_upgrade_ip', ipKey(ip));
        checkHandshake(version, key);
        refuseTokenInUrl(query);
        if (!originAllowed(config, origin, host)) throw errors.forbidden('This origin may not connect.');
        const authAt = Date.now();
        const auth = await sessions.authenticate(tokenFromProtocols(protocols));
        if (aborted) return;
        if (deps.isClosed()) throw errors.unavailable('The server is shutting down.');
        conn = new Connection(deps.host, {
          userId: auth.userId,
          authSessionId: auth.sessionId,
          gatewaySessionId: randomToken(16),
          authAt,
          ip,
        });
      } catch (e) {
        if (aborted) return;
        const err = toAppError(e, logger, { during: 'gateway upgrade' });
        logger.debug({ code: err.code, status: err.status, ip }, 'gateway upgrade refused');
        res.cork(() => {
          res.writeStatus(`${err.status} ${STATUS_CODES[err.status] ?? 'Error'}`);
          res.writeHeader('Content-Type', 'application/json');
          res.writeHeader('Cache-Control', 'no-store');
          for (const [name, value] of Object.entries(err.headers ?? {})) res.writeHeader(name, value);
          res.end(JSON.stringify({ error: err.toJSON() }), true);
        });
        return;
      }
      // uWS runs `open` inside `upgrade`: after this line the response is gone, whatever happens.
      res.cork(() => res.upgrade({ conn }, key, SELECTED_PROTOCOL, extensions, context));
    })();
  };
}
