/**
 * A short-lived cache of positive channel-access answers for guild channels, for the hot message
 * path. One per app (built by createApp). Entries live `ttlMs` at most and are dropped at once when
 * the bus reports `access_changed` for their guild (roles, overrides, membership, bans, channel
 * changes), on every node. Refusals and DM channels are never cached, so a join or a DM leave takes
 * effect immediately.
 */
import type { Db } from '../db/knex.js';
import type { EventHub } from '../events/hub.js';
import { isId } from '../ids.js';
import { type ChannelAccess, loadChannelAccess } from './loaders.js';

interface CachedAccess {
  access: ChannelAccess;
  guildId: string;
  until: number;
}

export class ChannelAccessCache {
  readonly #db: Db;
  readonly #entries = new Map<string, CachedAccess>();
  readonly #byGuild = new Map<string, Set<string>>();
  readonly #ttlMs: number;
  readonly #maxEntries: number;
  readonly #unsubscribe: () => void;
  /** Bumped by every invalidation: a lookup that started before one must not store its answer. */
  #generation = 0;

  constructor(db: Db, events: EventHub, opts: { ttlMs?: number; maxEntries?: number } = {}) {
    this.#db = db;
    this.#ttlMs = opts.ttlMs ?? 5000;
    this.#maxEntries = opts.maxEntries ?? 100_000;
    this.#unsubscribe = events.on('access_changed', (m) => this.invalidate(m.guildId, m.userIds));
  }

  /** The channel as the user sees it, or undefined (missing, malformed id or not visible). */
  async get(channelId: string, userId: string): Promise<ChannelAccess | undefined> {
    if (!isId(channelId)) return undefined;
    const key = `${userId}:${channelId}`;
    const now = Date.now();
    const hit = this.#entries.get(key);
    if (hit && hit.until > now) return hit.access;
    const generation = this.#generation;
    const access = await loadChannelAccess(this.#db, channelId, userId);
    const guildId = access?.channel.guild_id;
    if (!access || !guildId || generation !== this.#generation) return access;
    if (this.#entries.size >= this.#maxEntries) this.clear();
    this.#entries.set(key, { access, guildId, until: now + this.#ttlMs });
    let keys = this.#byGuild.get(guildId);
    if (!keys) {
      keys = new Set();
      this.#byGuild.set(guildId, keys);
    }
    keys.add(key);
    return access;
  }

  invalidate(guildId: string, userIds?: string[]): void {
    this.#generation++;
    const keys = this.#byGuild.get(guildId);
    if (!keys) return;
    if (!userIds) {
      for (const k of keys) this.#entries.delete(k);
      this.#byGuild.delete(guildId);
      return;
    }
    const prefixes = userIds.map((u) => `${u}:`);
    for (const k of keys) {
      if (prefixes.some((p) => k.startsWith(p))) {
        this.#entries.delete(k);
        keys.delete(k);
      }
    }
  }

  clear(): void {
    this.#generation++;
    this.#entries.clear();
    this.#byGuild.clear();
  }

  /** Stops listening to the bus and forgets everything (app shutdown). */
  close(): void {
    this.#unsubscribe();
    this.clear();
  }
}
