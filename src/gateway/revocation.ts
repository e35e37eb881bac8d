/**
 * `sessions_revoked` on this node: every socket opened with a revoked session gets `session_revoked`
 * and is closed with 4001, and its gateway session can no longer be resumed. A socket whose upgrade
 * was authenticated before a revocation of its user and opened after it may have been one of them:
 * it is closed on open (the client reconnects if its own session is still live).
 */
import type { SessionsRevokedMessage } from '../events/bus.js';
import type { Connection } from './connection.js';
import { CLOSE } from './protocol.js';
import type { ConnectionRegistry } from './registry.js';
import { RESUME_WINDOW_MS, type Resumption } from './resume.js';

export class Revocations {
  readonly #registry: ConnectionRegistry;
  readonly #resumption: Resumption;
  /** user id → when some of their sessions were last revoked (for upgrades in flight at that moment). */
  readonly #recent = new Map<string, number>();

  constructor(registry: ConnectionRegistry, resumption: Resumption) {
    this.#registry = registry;
    this.#resumption = resumption;
  }

  apply(m: SessionsRevokedMessage): void {
    if (this.#recent.size > 100_000) this.#recent.clear();
    this.#recent.set(m.userId, Date.now());
    const hit = (authSessionId: string) =>
      m.sessionIds === 'all' ? authSessionId !== m.exceptSessionId : m.sessionIds.includes(authSessionId);
    this.#resumption.revoke(m.userId, hit);
    for (const conn of this.#registry.ofUser(m.userId)) if (hit(conn.authSessionId)) closeRevoked(conn);
  }

  /** At open: closes (and returns true for) a socket whose upgrade raced a revocation of its user. */
  closeIfRaced(conn: Connection): boolean {
    const revokedAt = this.#recent.get(conn.userId);
    if (revokedAt === undefined || revokedAt < conn.authAt) return false;
    closeRevoked(conn);
    return true;
  }

  prune(now: number): void {
    for (const [user, at] of this.#recent) if (now - at > RESUME_WINDOW_MS) this.#recent.delete(user);
  }
}

function closeRevoked(conn: Connection): void {
  conn.send('session_revoked', {});
  conn.end(CLOSE.SESSION_REVOKED, 'session revoked');
}
