/**
 * Topic subscriptions: every connection receives `user:<id>`, and `guild:<id>` / `channel:<id>` for
 * exactly what its user may VIEW. Set from the user's view at `ready`, and recomputed when an
 * `access_changed` arrives: named users get their whole view reloaded; a guild-wide change evaluates
 * every connected member of that guild from one read of the guild. What a connection loses, it is told
 * about: a lost guild yields `member_leave`, a lost channel that still exists `channel_delete`
 * (a deleted one already had its real event). Reads are in repo.ts.
 */

import type { Db } from '../db/knex.js';
import type { AccessChangedMessage, DispatchMessage } from '../events/bus.js';
import type { Connection } from './connection.js';
import type { ConnectionRegistry } from './registry.js';
import { existingChannelIds, existingGuildIds, loadGuildVisibility, loadUserView, type UserView } from './repo.js';
import { RESUME_WINDOW_MS } from './resume.js';

export class Subscriptions {
  readonly #db: Db;
  readonly #registry: ConnectionRegistry;
  /** channel id → guild id ('' for DMs), learnt when a connection subscribes. */
  readonly #channelGuild = new Map<string, string>();
  /**
   * `guild:user` → when a real `member_leave` for that user was published: they already received it
   * (publishers send it before the `access_changed`), so no second, synthetic one.
   */
  readonly #publishedLeaves = new Map<string, number>();
  /** Bumped by every access change: a view loaded across one is stale. */
  #epoch = 0;

  constructor(db: Db, registry: ConnectionRegistry) {
    this.#db = db;
    this.#registry = registry;
  }

  /**
   * The user's current view, reloaded (up to 5 times) while access changes were processed during
   * the load; undefined when the connection closed meanwhile.
   */
  async loadView(conn: Connection): Promise<UserView | undefined> {
    let view: UserView;
    for (let attempt = 0; ; attempt++) {
      const epoch = this.#epoch;
      view = await loadUserView(this.#db, conn.userId);
      if (conn.closed) return undefined;
      if (epoch === this.#epoch || attempt >= 5) return view;
    }
  }

  /** Subscribes the socket to exactly what `view` entitles it to. */
  subscribe(conn: Connection, view: UserView): void {
    this.#apply(conn, this.#topicsOf(conn.userId, view));
  }

  /** Remembers real `member_leave` events, so no synthetic duplicate follows. */
  noteDispatch(m: DispatchMessage): void {
    if (m.type !== 'member_leave') return;
    const d = m.data as { guild_id?: unknown; user_id?: unknown } | null;
    if (typeof d?.guild_id !== 'string' || typeof d.user_id !== 'string') return;
    if (this.#publishedLeaves.size > 100_000) this.#publishedLeaves.clear();
    this.#publishedLeaves.set(`${d.guild_id}:${d.user_id}`, Date.now());
  }

  /** Brings subscriptions in line with the database after roles, overrides, membership or bans changed. */
  async recompute(m: AccessChangedMessage): Promise<void> {
    this.#epoch++;
    const guildTopic = `guild:${m.guildId}`;
    const targets: Connection[] = [];
    if (m.userIds) {
      for (const u of m.userIds) targets.push(...this.#registry.ofUser(u));
    } else {
      for (const conn of this.#registry.all()) if (conn.isSubscribed(guildTopic)) targets.push(conn);
    }
    if (targets.length === 0) return;
    if (m.userIds) await this.#recomputeUsers(targets);
    else await this.#recomputeGuild(m.guildId, targets);
  }

  /** Named users: their whole view. */
  async #recomputeUsers(targets: Connection[]): Promise<void> {
    const views = new Map<string, Set<string>>();
    for (const conn of targets) {
      if (!views.has(conn.userId))
        views.set(conn.userId, this.#topicsOf(conn.userId, await loadUserView(this.#db, conn.userId)));
    }
    const wanted = (conn: Connection) => views.get(conn.userId) as Set<string>;
    const candidates = lostCandidates(targets, wanted);
    const channels = await existingChannelIds(this.#db, candidates.channels);
    const guilds = await existingGuildIds(this.#db, candidates.guilds);
    for (const conn of targets) this.#update(conn, wanted(conn), channels, guilds);
  }

  /** A guild-wide change: every connected member of the guild, from one read of it. */
  async #recomputeGuild(guildId: string, targets: Connection[]): Promise<void> {
    const guildTopic = `guild:${guildId}`;
    const userIds = [...new Set(targets.map((c) => c.userId))];
    const vis = await loadGuildVisibility(this.#db, guildId, userIds);
    const inGuild = (t: string) =>
      t === guildTopic || (t.startsWith('channel:') && this.#channelGuild.get(t.slice(8)) === guildId);
    const wantedFor = (conn: Connection): Set<string> => {
      const visible = vis?.visible.get(conn.userId);
      const wanted = new Set<string>();
      if (!visible) return wanted;
      wanted.add(guildTopic);
      for (const id of visible) {
        wanted.add(`channel:${id}`);
        this.#channelGuild.set(id, guildId);
      }
      return wanted;
    };
    const wanted = new Map(targets.map((c) => [c, wantedFor(c)]));
    const want = (conn: Connection) => wanted.get(conn) as Set<string>;
    const candidates = lostCandidates(targets, want, inGuild);
    const channels = vis ? new Set(candidates.channels.filter((id) => vis.channelIds.has(id))) : new Set<string>();
    const guilds = vis ? new Set([guildId]) : new Set<string>();
    for (const conn of targets) this.#update(conn, want(conn), channels, guilds, inGuild);
    if (vis)
      for (const [id, g] of this.#channelGuild)
        if (g === guildId && !vis.channelIds.has(id)) this.#channelGuild.delete(id);
  }

  #update(
    conn: Connection,
    wanted: Set<string>,
    existingChannels: Set<string>,
    existingGuilds: Set<string>,
    scope?: (topic: string) => boolean,
  ): void {
    if (conn.closed) return;
    conn.cork(() => {
      const lost = this.#apply(conn, wanted, scope);
      this.#sendLossViews(conn, lost, existingChannels, existingGuilds);
    });
  }

  /** The topics a view entitles a connection to, remembering each channel's guild. */
  #topicsOf(userId: string, view: UserView): Set<string> {
    const topics = new Set<string>([`user:${userId}`]);
    for (const g of view.guilds) {
      topics.add(`guild:${g.guild.id}`);
      for (const ch of g.channels) {
        topics.add(`channel:${ch.id}`);
        this.#channelGuild.set(ch.id, g.guild.id);
      }
    }
    for (const d of view.dms) {
      topics.add(`channel:${d.channel.id}`);
      this.#channelGuild.set(d.channel.id, '');
    }
    return topics;
  }

  /**
   * Makes the socket's subscriptions equal `wanted` (restricted to `scope` when given: only topics the
   * predicate accepts are touched). Returns the topics it lost.
   */
  #apply(conn: Connection, wanted: Set<string>, scope?: (topic: string) => boolean): string[] {
    const ws = conn.ws;
    const lost: string[] = [];
    const current = ws.getTopics();
    for (const t of current) {
      if (scope && !scope(t)) continue;
      if (!wanted.has(t)) {
        ws.unsubscribe(t);
        lost.push(t);
      }
    }
    const have = new Set(current);
    for (const t of wanted) if (!have.has(t)) ws.subscribe(t);
    return lost;
  }

  #sendLossViews(conn: Connection, lost: string[], existingChannels: Set<string>, existingGuilds: Set<string>): void {
    const lostGuilds = new Set(lost.filter((t) => t.startsWith('guild:')).map((t) => t.slice(6)));
    for (const g of lostGuilds) {
      if (!existingGuilds.has(g) || this.#publishedLeaves.has(`${g}:${conn.userId}`)) continue;
      conn.send('member_leave', { guild_id: g, user_id: conn.userId });
    }
    for (const t of lost) {
      if (!t.startsWith('channel:')) continue;
      const id = t.slice(8);
      const guildId = this.#channelGuild.get(id) ?? null;
      if (guildId && lostGuilds.has(guildId)) continue; // implied by member_leave
      if (existingChannels.has(id)) conn.send('channel_delete', { id, guild_id: guildId || null });
    }
  }

  prune(now: number): void {
    for (const [key, at] of this.#publishedLeaves) if (now - at > RESUME_WINDOW_MS) this.#publishedLeaves.delete(key);
  }
}

/** Channel and guild ids some target is about to lose (to check which still exist). */
function lostCandidates(
  targets: Connection[],
  wanted: (conn: Connection) => Set<string>,
  scope?: (t: string) => boolean,
) {
  const channels = new Set<string>();
  const guilds = new Set<string>();
  for (const conn of targets) {
    if (conn.closed) continue;
    const w = wanted(conn);
    for (const t of conn.topics()) {
      if ((scope && !scope(t)) || w.has(t)) continue;
      if (t.startsWith('channel:')) channels.add(t.slice(8));
      else if (t.startsWith('guild:')) guilds.add(t.slice(6));
    }
  }
  return { channels: [...channels], guilds: [...guilds] };
}
