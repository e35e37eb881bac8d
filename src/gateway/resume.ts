/**
 * `resume`: which gateway sessions may be resumed (open, or closed less than 60 s ago, same user, not
 * revoked) and the node's replay buffer of recent topic events. A resumed connection gets the events
 * with `old seq < seq ≤ its ready seq` whose topic it is subscribed to now (never more than it may
 * see today); otherwise `resume_failed` and a fresh `ready`.
 */
import { errors } from '../errors.js';
import type { Connection } from './connection.js';
import { ReplayBuffer } from './replay.js';

export const RESUME_WINDOW_MS = 60_000;

interface Resumable {
  userId: string;
  authSessionId: string;
  /** When the socket closed; undefined while it is open. */
  closedAt: number | undefined;
}

export class Resumption {
  readonly #replay: ReplayBuffer;
  readonly #resumable = new Map<string, Resumable>();

  constructor(opts: { maxEntries?: number; maxBytes?: number } = {}) {
    this.#replay = new ReplayBuffer({
      maxEntries: opts.maxEntries ?? 50_000,
      maxBytes: opts.maxBytes ?? 32 * 1024 * 1024,
      maxAgeMs: RESUME_WINDOW_MS,
    });
  }

  /** Remembers a published topic event for later resumes. */
  record(seq: number, topic: string, frame: string, at: number): void {
    this.#replay.push({ seq, topic, frame, at });
  }

  opened(conn: Connection): void {
    this.#resumable.set(conn.gatewaySessionId, {
      userId: conn.userId,
      authSessionId: conn.authSessionId,
      closedAt: undefined,
    });
  }

  closed(conn: Connection, now: number): void {
    const r = this.#resumable.get(conn.gatewaySessionId);
    if (r) r.closedAt = now;
  }

  /** This gateway session can never be resumed (slow consumer, revoked). */
  forget(gatewaySessionId: string): void {
    this.#resumable.delete(gatewaySessionId);
  }

  /** Forgets the user's gateway sessions opened with a revoked auth session. */
  revoke(userId: string, revoked: (authSessionId: string) => boolean): void {
    for (const [gsid, r] of this.#resumable)
      if (r.userId === userId && revoked(r.authSessionId)) this.#resumable.delete(gsid);
  }

  /**
   * Replays what the old session missed onto `conn`. On failure sends `resume_failed`, then (through
   * `sendReady`) a fresh `ready`, and throws RESUME_FAILED for the op's error reply.
   */
  async resume(
    conn: Connection,
    sessionId: string,
    seq: number,
    sendReady: () => Promise<void>,
  ): Promise<{ replayed: number }> {
    const old = this.#resumable.get(sessionId);
    const now = Date.now();
    const ok =
      old !== undefined &&
      sessionId !== conn.gatewaySessionId &&
      old.userId === conn.userId &&
      (old.closedAt === undefined || now - old.closedAt <= RESUME_WINDOW_MS) &&
      seq <= conn.readySeq &&
      this.#replay.covers(seq);
    if (!ok) {
      conn.send('resume_failed', { session_id: sessionId });
      await sendReady();
      throw errors.resumeFailed();
    }
    this.#resumable.delete(sessionId);
    let replayed = 0;
    conn.cork(() => {
      for (const e of this.#replay.range(seq, conn.readySeq)) {
        if (!conn.isSubscribed(e.topic)) continue;
        conn.sendFrame(e.frame);
        replayed++;
      }
    });
    return { replayed };
  }

  prune(now: number): void {
    this.#replay.prune(now);
    for (const [gsid, r] of this.#resumable) {
      if (r.closedAt !== undefined && now - r.closedAt > RESUME_WINDOW_MS) this.#resumable.delete(gsid);
    }
  }
}
