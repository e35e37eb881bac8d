/** Storage of guild channels and their per-role overrides: the only knex user of the channels feature. */
import type { ChannelRow } from '../access/repo.js';
import type { Queryable } from '../db/knex.js';

export interface OverrideRow {
  channel_id: string;
  role_id: string;
  allow: number | string;
  deny: number | string;
}

export const channelRepo = {
  find: (q: Queryable, id: string): Promise<ChannelRow | undefined> => q('channels').where({ id }).first(),
  insert: (q: Queryable, row: ChannelRow | ChannelRow[]) => q('channels').insert(row),
  update: (q: Queryable, id: string, patch: Partial<ChannelRow>) => q('channels').where({ id }).update(patch),
  delete: (q: Queryable, id: string) => q('channels').where({ id }).delete(),
  countInGuild: async (q: Queryable, guildId: string): Promise<number> =>
    Number((await q('channels').where({ guild_id: guildId }).count({ n: '*' }).first())?.n ?? 0),
  findOverride: (q: Queryable, channelId: string, roleId: string): Promise<OverrideRow | undefined> =>
    q('channel_overrides').where({ channel_id: channelId, role_id: roleId }).first(),
  upsertOverride: (q: Queryable, row: OverrideRow) =>
    q('channel_overrides').insert(row).onConflict(['channel_id', 'role_id']).merge(['allow', 'deny']),
  deleteOverride: (q: Queryable, channelId: string, roleId: string): Promise<number> =>
    q('channel_overrides').where({ channel_id: channelId, role_id: roleId }).delete(),
};
