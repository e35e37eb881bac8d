/** Storage of guild channels and their per-role overrides: the only knex user of the channels feature. */
import type { Knex } from 'knex';
import type { Db } from '../db/knex.js';
import type { ChannelRow } from '../guilds/access.js';

type Q = Db | Knex.Transaction;

export interface OverrideRow {
  channel_id: string;
  role_id: string;
  allow: number | string;
  deny: number | string;
}

export const channelRepo = {
  find: (q: Q, id: string): Promise<ChannelRow | undefined> => q('channels').where({ id }).first(),
  insert: (q: Q, row: Record<string, unknown>) => q('channels').insert(row),
  update: (q: Q, id: string, patch: Record<string, unknown>) => q('channels').where({ id }).update(patch),
  delete: (q: Q, id: string) => q('channels').where({ id }).delete(),
  listForGuild: (q: Q, guildId: string): Promise<ChannelRow[]> =>
    q('channels').where({ guild_id: guildId }).orderBy('position', 'asc').orderBy('id', 'asc'),
  overridesFor: (q: Q, channelIds: string[]): Promise<OverrideRow[]> =>
    channelIds.length === 0
      ? Promise.resolve([])
      : q('channel_overrides').whereIn('channel_id', channelIds).select('channel_id', 'role_id', 'allow', 'deny'),
  findOverride: (q: Q, channelId: string, roleId: string): Promise<OverrideRow | undefined> =>
    q('channel_overrides').where({ channel_id: channelId, role_id: roleId }).first(),
  upsertOverride: (q: Q, row: OverrideRow) =>
    q('channel_overrides').insert(row).onConflict(['channel_id', 'role_id']).merge(['allow', 'deny']),
  deleteOverride: (q: Q, channelId: string, roleId: string): Promise<number> =>
    q('channel_overrides').where({ channel_id: channelId, role_id: roleId }).delete(),
  attachmentFiles: async (q: Q, channelId: string): Promise<string[]> =>
    (await q('attachments').where({ channel_id: channelId }).select('storage_name')).map(
      (r: { storage_name: string }) => r.storage_name,
    ),
};
