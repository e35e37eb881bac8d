/**
 * Presence on the gateway: a user is online while they hold a gateway connection anywhere in the
 * cluster, and shown with the status they chose (`presence` op; invisible = offline to others).
 * When their last socket on this node closes, a grace period (VOICECHAT_PRESENCE_GRACE_MS) runs
 * first, so a reload or a reconnect to this or another node sends nothing; only then does the node
 * release the user in the presence store and, if no other live node holds them, announce `offline`
 * to every guild they are in. A user's first connection anywhere announces their status the same way.
 * Work per user is serialised, so a connect racing a release cannot reorder the events.
 */
import type { AppContext } from '../context.js';
import { type ChosenStatus, type VisibleStatus, visibleStatus } from '../presence/store.js';
import { guildIdsOf, presenceCandidates } from './repo.js';

/** `ready` reports presences for at most the first 1,000 members (by user id) of each guild… */
export const READY_PRESENCE_PER_GUILD = 1000;
/** …and for at most 5,000 members across all of the user's guilds. */
export const READY_PRESENCE_TOTAL = 5000;

type Deps = Pick<AppContext, 'db' | 'events' | 'logger' | 'presence'> & { graceMs: number };

export class Presence {
  readonly #deps: Deps;
  /** This node's open sockets per user, and the pending release of users with none left. */
  readonly #local = new Map<string, { sockets: number; release?: NodeJS.Timeout }>();
  readonly #queue = new Map<string, Promise<void>>();
  /** The sockets counted in #local (a socket closed before it was counted must not uncount another). */
  readonly #counted = new WeakSet<object>();
  #closed = false;

  constructor(deps: Deps) {
    this.#deps = deps;
  }

  /** A socket opened on this node. */
  opened(conn: { userId: string }): void {
    if (this.#closed || this.#counted.has(conn)) return;
    this.#counted.add(conn);
    const userId = conn.userId;
    const entry = this.#local.get(userId);
    if (entry) {
      entry.sockets++;
      if (entry.release) {
        // Back within the grace period: nothing changed for anyone else.
        clearTimeout(entry.release);
        entry.release = undefined;
      }
      return;
    }
    this.#local.set(userId, { sockets: 1 });
    this.#serially(userId, async () => {
      const { elsewhere, status } = await this.#deps.presence.attach(userId);
      const shown = visibleStatus(status);
      if (!elsewhere && shown) await this.#announce(userId, shown);
    });
  }

  /** A socket closed on this node. */
  closed(conn: { userId: string }): void {
    if (!this.#counted.has(conn)) return;
    this.#counted.delete(conn);
    const userId = conn.userId;
    const entry = this.#local.get(userId);
    if (!entry) return;
    entry.sockets--;
    if (entry.sockets > 0 || this.#closed) return;
    const release = () => {
      if (this.#local.get(userId) !== entry || entry.sockets > 0) return;
      this.#local.delete(userId);
      this.#serially(userId, async () => {
        const { elsewhere, status } = await this.#deps.presence.detach(userId);
        // An invisible user was already shown offline.
        if (!elsewhere && visibleStatus(status)) await this.#announce(userId, 'offline');
      });
    };
    if (this.#deps.graceMs === 0) release();
    else {
      entry.release = setTimeout(release, this.#deps.graceMs);
      entry.release.unref();
    }
  }

  /** The `presence` op: remembered for this user's next `ready`s and reconnects. */
  async chose(userId: string, status: ChosenStatus): Promise<void> {
    try {
      await this.#deps.presence.setStatus(userId, status);
    } catch (err) {
      // The live update still goes out; only the memory of it (for later readies) is missing.
      this.#deps.logger.debug({ err, user_id: userId }, 'presence status not stored'); // the store logs the outage
    }
  }

  /** Per guild, the members shown online/idle/dnd (bounded: READY_PRESENCE_PER_GUILD / _TOTAL). */
  async snapshot(
    guilds: { id: string; membersCount: number }[],
  ): Promise<Map<string, { user_id: string; status: VisibleStatus }[]>> {
    const candidates = await presenceCandidates(this.#deps.db, guilds, READY_PRESENCE_PER_GUILD, READY_PRESENCE_TOTAL);
    const all = [...new Set([...candidates.values()].flat())];
    let statuses: Map<string, VisibleStatus>;
    try {
      statuses = await this.#deps.presence.visible(all);
    } catch (err) {
      this.#deps.logger.debug({ err }, 'presence snapshot unavailable; ready shows everyone offline');
      statuses = new Map();
    }
    const out = new Map<string, { user_id: string; status: VisibleStatus }[]>();
    for (const [guildId, ids] of candidates) {
      const list: { user_id: string; status: VisibleStatus }[] = [];
      for (const id of ids) {
        const status = statuses.get(id);
        if (status) list.push({ user_id: id, status });
      }
      out.set(guildId, list);
    }
    return out;
  }

  /** Stops the timers (shutdown). Users held here are released by the store (node key removed). */
  close(): void {
    this.#closed = true;
    for (const entry of this.#local.values()) if (entry.release) clearTimeout(entry.release);
    this.#local.clear();
  }

  async #announce(userId: string, status: VisibleStatus | 'offline'): Promise<void> {
    const guildIds = await guildIdsOf(this.#deps.db, userId);
    const out = this.#deps.events.outbox();
    for (const guildId of guildIds)
      out.toGuild(guildId, 'presence_update', { guild_id: guildId, user_id: userId, status });
    out.flush();
  }

  #serially(userId: string, work: () => Promise<void>): void {
    const prev = this.#queue.get(userId) ?? Promise.resolve();
    const next = prev
      .then(work)
      .catch((err) => this.#deps.logger.debug({ err, user_id: userId }, 'presence update failed'))
      .finally(() => {
        if (this.#queue.get(userId) === next) this.#queue.delete(userId);
      });
    this.#queue.set(userId, next);
  }
}
