/**
 * ICE servers handed to voice clients: the configured STUN URLs, and the TURN URLs with time-limited
 * credentials in coturn's REST scheme (`use-auth-secret`): username = `<expiry unix seconds>:<user id>`,
 * credential = base64(HMAC-SHA1(shared secret, username)). coturn recomputes the HMAC and refuses the
 * username once its expiry has passed, so nothing is stored.
 */
import { createHmac } from 'node:crypto';
import type { Config } from '../config/index.js';

export interface IceServer {
  urls: string[];
  username?: string;
  credential?: string;
}

export interface IceServers {
  ice_servers: IceServer[];
  /** When the TURN credentials stop working (ISO-8601); absent without TURN. */
  expires_at?: string;
}

export function turnCredential(secret: string, userId: string, expiresAtSeconds: number) {
  const username = `${expiresAtSeconds}:${userId}`;
  return { username, credential: createHmac('sha1', secret).update(username).digest('base64') };
}

export function iceServersFor(
  config: Pick<Config, 'stunUrls' | 'turnUrls' | 'turnSecret' | 'turnCredentialTtlSeconds'>,
  userId: string,
  nowMs = Date.now(),
): IceServers {
  const out: IceServers = { ice_servers: [] };
  if (config.stunUrls.length > 0) out.ice_servers.push({ urls: config.stunUrls });
  if (config.turnUrls.length > 0 && config.turnSecret) {
    const expires = Math.floor(nowMs / 1000) + config.turnCredentialTtlSeconds;
    out.ice_servers.push({ urls: config.turnUrls, ...turnCredential(config.turnSecret, userId, expires) });
    out.expires_at = new Date(expires * 1000).toISOString();
  }
  return out;
}
