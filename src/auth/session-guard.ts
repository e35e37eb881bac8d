/**
 * Authenticates access tokens for every transport: JWT verification (tokens.ts) plus a check that the
 * token's session (family) is still live, cached for at most `cacheMs` and dropped at once on revocation
 * (locally, and on every node through the event bus).
 */
import type { Keyring } from '../crypto/keyring.js';
import type { Db } from '../db/knex.js';
import { errors } from '../errors.js';
import type { EventHub } from '../events/hub.js';
import { nowMs } from '../ids.js';
import { isLiveSession } from './repo.js';
import { type AccessClaims, verifyAccessToken } from './tokens.js';

export interface AuthInfo extends AccessClaims {}

export class SessionGuard {
  #db: Db;
  #keyring: () => Keyring;
  #cacheMs: number;
  #cache = new Map<string, { userId: string; until: number }>();
  /** Bumped by every revocation: a lookup that started before one must not cache its result. */
  #generation = 0;
  /** Recently verified tokens (same bound as the session cache, never past `exp`): skips HMAC + JSON. */
  #verified = new Map<string, { claims: AccessClaims; until: number }>();

  readonly #unsubscribe: () => void;

  constructor(opts: { db: Db; keyring: () => Keyring; events: EventHub; cacheMs?: number }) {
    this.#db = opts.db;
    this.#keyring = opts.keyring;
    this.#cacheMs = opts.cacheMs ?? 2000;
    this.#unsubscribe = opts.events.on('sessions_revoked', (m) => {
      this.#generation++;
      for (const [token, v] of this.#verified) {
        const hit =
          v.claims.userId === m.userId &&
          (m.sessionIds === 'all'
            ? v.claims.sessionId !== m.exceptSessionId
            : m.sessionIds.includes(v.claims.sessionId));
        if (hit) this.#verified.delete(token);
      }
      if (m.sessionIds === 'all') {
        for (const [sid, v] of this.#cache)
          if (v.userId === m.userId && sid !== m.exceptSessionId) this.#cache.delete(sid);
      } else {
        for (const sid of m.sessionIds) this.#cache.delete(sid);
      }
    });
  }

  /** Throws 401 (TOKEN_EXPIRED or UNAUTHENTICATED) unless the token and its session are valid. */
  async authenticate(token: string | undefined): Promise<AuthInfo> {
    if (!token) throw errors.unauthenticated();
    const now = nowMs();
    const seen = this.#verified.get(token);
    const cachedClaims = seen && seen.until > now ? seen.claims : undefined;
    const claims = cachedClaims ?? verifyAccessToken(this.#keyring(), token);
    const cached = this.#cache.get(claims.sessionId);
    if (cached && cached.until > now && cached.userId === claims.userId) {
      if (!cachedClaims) this.#remember(token, claims, now);
      return claims;
    }
    const generation = this.#generation;
    if (!(await isLiveSession(this.#db, claims.sessionId, claims.userId, now))) {
      this.#cache.delete(claims.sessionId);
      throw errors.unauthenticated('The session has ended.');
    }
    if (generation !== this.#generation) return claims; // a revocation raced this lookup: do not cache
    if (this.#cache.size > 100_000) this.#cache.clear();
    this.#cache.set(claims.sessionId, { userId: claims.userId, until: now + this.#cacheMs });
    if (!cachedClaims) this.#remember(token, claims, now);
    return claims;
  }

  #remember(token: string, claims: AccessClaims, now: number): void {
    const exp = (JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString()) as { exp: number }).exp;
    if (this.#verified.size > 100_000) this.#verified.clear();
    this.#verified.set(token, { claims, until: Math.min(now + this.#cacheMs, exp * 1000) });
  }

  /** Stops listening to the bus (app shutdown). */
  close(): void {
    this.#unsubscribe();
    this.#cache.clear();
    this.#verified.clear();
  }

  /** Forget a session locally (the bus does this on every node). */
  forget(sessionId: string): void {
    this.#cache.delete(sessionId);
    for (const [token, v] of this.#verified) if (v.claims.sessionId === sessionId) this.#verified.delete(token);
  }
}
