/**
 * Loads what permission checks need from the database: a member's roles in a guild, a channel's
 * overrides, and the set of channels a user may view (the gateway's subscriptions). Every feature and
 * transport asks here; nobody recomputes permissions elsewhere.
 */
import type { Knex } from 'knex';
import type { Db } from '../db/knex.js';
import type { EventBus } from '../events/bus.js';
import { basePermissions, channelPermissions, has, P, type RoleLike } from './permissions.js';

type Q = Db | Knex.Transaction;

export interface MemberContext {
  guildId: string;
  userId: string;
  isOwner: boolean;
  roles: RoleLike[];
  everyoneRoleId: string;
  /** Guild-level permissions. */
  permissions: bigint;
}

export interface ChannelRow {
  id: string;
  guild_id: string | null;
  type: 'text' | 'voice' | 'dm' | 'group_dm';
  name: string | null;
  position: number;
  user_limit: number | null;
  created_at: number;
  [k: string]: unknown;
}

export interface ChannelAccess {
  channel: ChannelRow;
  /** For guild channels; undefined for DMs. */
  member?: MemberContext;
  permissions: bigint;
}

/** The member's context in a guild, or undefined when the user is not a member. */
export async function loadMember(db: Q, guildId: string, userId: string): Promise<MemberContext | undefined> {
  const guild = await db('guilds').where({ id: guildId }).first('id', 'owner_id');
  if (!guild) return undefined;
  const member = await db('guild_members').where({ guild_id: guildId, user_id: userId }).first('user_id');
  if (!member) return undefined;
  const roles: RoleLike[] = await db('roles')
    .leftJoin('member_roles', function () {
      this.on('member_roles.role_id', '=', 'roles.id').andOn('member_roles.user_id', '=', db.raw('?', [userId]));
    })
    .where('roles.guild_id', guildId)
    .andWhere((q) => q.where('roles.is_everyone', true).orWhereNotNull('member_roles.role_id'))
    .select('roles.id', 'roles.permissions', 'roles.position', 'roles.is_everyone');
  const everyone = roles.find((r) => Boolean(r.is_everyone));
  const isOwner = guild.owner_id === userId;
  return {
    guildId,
    userId,
    isOwner,
    roles,
    everyoneRoleId: everyone?.id ?? '',
    permissions: basePermissions(isOwner, roles),
  };
}

/**
 * A channel as the user sees it, or undefined when it does not exist or the user may not VIEW it
 * (callers answer 404 either way: no existence leak).
 */
export async function loadChannelAccess(db: Q, channelId: string, userId: string): Promise<ChannelAccess | undefined> {
  const channel: ChannelRow | undefined = await db('channels').where({ id: channelId }).first();
  if (!channel) return undefined;
  if (!channel.guild_id) {
    const p = await db('dm_participants')
      .where({ channel_id: channelId, user_id: userId })
      .whereNull('left_at')
      .first('user_id');
    if (!p) return undefined;
    return {
      channel,
      permissions: P.VIEW_CHANNEL | P.SEND_MESSAGES | P.ATTACH_FILES | P.VOICE_CONNECT | P.VOICE_SPEAK,
    };
  }
  const member = await loadMember(db, channel.guild_id, userId);
  if (!member) return undefined;
  const overrides = await db('channel_overrides').where({ channel_id: channelId }).select('role_id', 'allow', 'deny');
  const permissions = channelPermissions(member.isOwner, member.roles, overrides, member.everyoneRoleId);
  if (!has(permissions, P.VIEW_CHANNEL)) return undefined;
  return { channel, member, permissions };
}

export interface Visibility {
  guildIds: string[];
  /** Guild channels the user may VIEW plus DM channels they are in. */
  channelIds: string[];
}

/** Everything a user may currently see: the gateway subscribes a connection to exactly this. */
export async function visibleTo(db: Q, userId: string): Promise<Visibility> {
  const guildIds: string[] = (await db('guild_members').where({ user_id: userId }).select('guild_id')).map(
    (r: { guild_id: string }) => r.guild_id,
  );
  const channelIds: string[] = [];
  for (const guildId of guildIds) {
    const member = await loadMember(db, guildId, userId);
    if (!member) continue;
    const channels = await db('channels').where({ guild_id: guildId }).select('id');
    const overrides = await db('channel_overrides')
      .whereIn(
        'channel_id',
        channels.map((c: { id: string }) => c.id),
      )
      .select('channel_id', 'role_id', 'allow', 'deny');
    for (const c of channels) {
      const own = overrides.filter((o: { channel_id: string }) => o.channel_id === c.id);
      if (has(channelPermissions(member.isOwner, member.roles, own, member.everyoneRoleId), P.VIEW_CHANNEL)) {
        channelIds.push(c.id);
      }
    }
  }
  const dms = await db('dm_participants').where({ user_id: userId }).whereNull('left_at').select('channel_id');
  for (const d of dms) channelIds.push(d.channel_id);
  return { guildIds, channelIds };
}

interface CachedAccess {
  access: ChannelAccess;
  guildId: string;
  until: number;
}

/**
 * A short-lived cache of positive `loadChannelAccess` answers for guild channels, for the hot message
 * path. Entries live `ttlMs` at most and are dropped at once when the bus reports `access_changed`
 * for their guild (roles, overrides, membership, bans, channel changes), on every node. Refusals and
 * DM channels are never cached, so a join or a DM leave takes effect immediately.
 */
export class ChannelAccessCache {
  readonly #entries = new Map<string, CachedAccess>();
  readonly #byGuild = new Map<string, Set<string>>();
  readonly #ttlMs: number;
  readonly #maxEntries: number;
  /** Bumped by every invalidation: a lookup that started before one must not store its answer. */
  #generation = 0;

  constructor(bus: EventBus, opts: { ttlMs?: number; maxEntries?: number } = {}) {
    this.#ttlMs = opts.ttlMs ?? 5000;
    this.#maxEntries = opts.maxEntries ?? 100_000;
    bus.subscribe((m) => {
      if (m.kind === 'access_changed') this.invalidate(m.guildId, m.userIds);
    });
  }

  async get(db: Q, channelId: string, userId: string): Promise<ChannelAccess | undefined> {
    const key = `${userId}:${channelId}`;
    const now = Date.now();
    const hit = this.#entries.get(key);
    if (hit && hit.until > now) return hit.access;
    const generation = this.#generation;
    const access = await loadChannelAccess(db, channelId, userId);
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
}

const caches = new WeakMap<EventBus, ChannelAccessCache>();

/** The access cache of an app (one per bus, so every app in a process has its own). */
export function channelAccessCache(bus: EventBus): ChannelAccessCache {
  let c = caches.get(bus);
  if (!c) {
    c = new ChannelAccessCache(bus);
    caches.set(bus, c);
  }
  return c;
}
