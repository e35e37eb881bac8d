/**
 * The one place where guild, channel and message changes become bus messages. Services collect what
 * happened in an `Outbox` while their transaction runs and flush it only after the commit, so a
 * rolled-back change never reaches the gateway, and the order rules live here:
 * - channel create/update: `access_changed` first (subscriptions grow), then the dispatch;
 * - channel delete: the dispatch first (still delivered to old subscribers), then `access_changed`.
 */
import type { BusMessage, EventBus } from '../events/bus.js';

export type GuildEvent =
  | 'member_join'
  | 'member_leave'
  | 'member_update'
  | 'role_create'
  | 'role_update'
  | 'role_delete'
  | 'guild_update'
  | 'guild_delete';

export type MessageEvent = 'message_new' | 'message_edit' | 'message_delete';

export class Outbox {
  readonly #messages: BusMessage[] = [];

  guild(guildId: string, type: GuildEvent, data: unknown): this {
    this.#messages.push({ kind: 'dispatch', topic: `guild:${guildId}`, type, data });
    return this;
  }

  message(channelId: string, type: MessageEvent, data: unknown): this {
    this.#messages.push({ kind: 'dispatch', topic: `channel:${channelId}`, type, data });
    return this;
  }

  channelCreated(guildId: string, channelId: string, data: unknown): this {
    this.accessChanged(guildId);
    this.#messages.push({ kind: 'dispatch', topic: `channel:${channelId}`, type: 'channel_create', data });
    return this;
  }

  channelUpdated(guildId: string, channelId: string, data: unknown): this {
    this.accessChanged(guildId);
    this.#messages.push({ kind: 'dispatch', topic: `channel:${channelId}`, type: 'channel_update', data });
    return this;
  }

  channelDeleted(guildId: string, channelId: string, data: unknown): this {
    this.#messages.push({ kind: 'dispatch', topic: `channel:${channelId}`, type: 'channel_delete', data });
    return this.accessChanged(guildId);
  }

  /** What some (or all) members of a guild may see changed: roles, overrides, membership, bans. */
  accessChanged(guildId: string, userIds?: string[]): this {
    this.#messages.push(userIds ? { kind: 'access_changed', guildId, userIds } : { kind: 'access_changed', guildId });
    return this;
  }

  /** Publishes everything collected, in order. Call after the transaction committed. */
  flush(bus: EventBus): void {
    for (const m of this.#messages.splice(0)) bus.publish(m);
  }
}
