/**
 * The one way anything reaches clients or other nodes. A service collects what happened in an Outbox
 * while its transaction runs and flushes it only after the commit, so a rolled-back change never
 * reaches the gateway; names and payloads are checked against the EventMap. The order rules live here:
 * - channel create/update: `access_changed` first (subscriptions grow), then the dispatch;
 * - channel delete: the dispatch first (still delivered to old subscribers), then `access_changed`.
 */
import type { BusMessage, EventBus } from './bus.js';
import type { ChannelWire, EventMap, EventName, Topic } from './event-map.js';

export class Outbox {
  readonly #bus: EventBus;
  readonly #messages: BusMessage[] = [];

  /** Made by `EventHub.outbox()`; features never hold the bus itself. */
  constructor(bus: EventBus) {
    this.#bus = bus;
  }

  /** An event for every connection subscribed to `topic`. */
  to<K extends EventName>(topic: Topic, type: K, data: EventMap[K]): this {
    this.#messages.push({ kind: 'dispatch', topic, type, data });
    return this;
  }

  toGuild<K extends EventName>(guildId: string, type: K, data: EventMap[K]): this {
    return this.to(`guild:${guildId}`, type, data);
  }

  toChannel<K extends EventName>(channelId: string, type: K, data: EventMap[K]): this {
    return this.to(`channel:${channelId}`, type, data);
  }

  toUser<K extends EventName>(userId: string, type: K, data: EventMap[K]): this {
    return this.to(`user:${userId}`, type, data);
  }

  channelCreated(guildId: string, channel: ChannelWire): this {
    return this.accessChanged(guildId).toChannel(channel.id, 'channel_create', channel);
  }

  channelUpdated(guildId: string, channel: ChannelWire): this {
    return this.accessChanged(guildId).toChannel(channel.id, 'channel_update', channel);
  }

  channelDeleted(guildId: string, channelId: string): this {
    return this.toChannel(channelId, 'channel_delete', { id: channelId, guild_id: guildId }).accessChanged(guildId);
  }

  /** What some (or all) members of a guild may see changed: roles, overrides, membership, bans. */
  accessChanged(guildId: string, userIds?: string[]): this {
    this.#messages.push(userIds ? { kind: 'access_changed', guildId, userIds } : { kind: 'access_changed', guildId });
    return this;
  }

  /**
   * DM participation changed for these users (a DM created, joined or left): their subscriptions are
   * recomputed like a named-user access change. DM channels belong to no guild, so the guild id is ''
   * (the access cache never caches DMs; other subscribers should ignore the empty guild id).
   */
  dmAccessChanged(userIds: string[]): this {
    this.#messages.push({ kind: 'access_changed', guildId: '', userIds });
    return this;
  }

  /** Sessions ended: every node drops its cached auth and closes their sockets (4001). */
  sessionsRevoked(userId: string, sessionIds: string[] | 'all', exceptSessionId?: string): this {
    this.#messages.push({
      kind: 'sessions_revoked',
      userId,
      sessionIds,
      ...(exceptSessionId ? { exceptSessionId } : {}),
    });
    return this;
  }

  /** Publishes everything collected, in order. Call after the transaction committed. */
  flush(): void {
    for (const m of this.#messages.splice(0)) this.#bus.publish(m);
  }
}
