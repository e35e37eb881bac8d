/** Storage of attachment rows (uploads and their link to a message): the only knex user of uploads. */
import type { Dialect, Queryable } from '../db/knex.js';
import type { AttachmentRow } from './presenter.js';

export interface StoredAttachmentRow extends AttachmentRow {
  storage_name: string;
  uploader_id: string | null;
}

export const attachmentRepo = {
  find: (q: Queryable, id: string): Promise<StoredAttachmentRow | undefined> => q('attachments').where({ id }).first(),
  insert: (q: Queryable, row: StoredAttachmentRow) => q('attachments').insert(row),
  /** Bytes of every stored attachment the user uploaded (linked or not): what the quota counts. */
  usedBytes: async (q: Queryable, uploaderId: string): Promise<number> => {
    const row = await q('attachments').where({ uploader_id: uploaderId }).sum({ total: 'size_bytes' }).first();
    return Number(row?.total ?? 0);
  },
  /**
   * Serialises one user's quota checks until the transaction ends: Postgres locks the user's row;
   * SQLite needs nothing (our transactions begin IMMEDIATE, so writers already take turns).
   */
  lockUploader: async (q: Queryable, dialect: Dialect, uploaderId: string): Promise<void> => {
    if (dialect === 'pg') await q('users').where({ id: uploaderId }).forUpdate().first('id');
  },
  forMessages: (q: Queryable, messageIds: string[]): Promise<AttachmentRow[]> =>
    messageIds.length === 0
      ? Promise.resolve([])
      : q('attachments').whereIn('message_id', messageIds).orderBy('id', 'asc'),
  /** Links the caller's own unlinked uploads in this channel; returns how many matched. */
  link: (q: Queryable, ids: string[], messageId: string, channelId: string, uploaderId: string): Promise<number> =>
    q('attachments')
      .whereIn('id', ids)
      .where({ channel_id: channelId, uploader_id: uploaderId })
      .whereNull('message_id')
      .update({ message_id: messageId }),
  /** Removes a message's attachment rows and returns their storage names (files go after commit). */
  detach: async (q: Queryable, messageId: string): Promise<string[]> => {
    const rows: { storage_name: string }[] = await q('attachments')
      .where({ message_id: messageId })
      .select('storage_name');
    await q('attachments').where({ message_id: messageId }).delete();
    return rows.map((r) => r.storage_name);
  },
  /** Storage names of every attachment in a channel (its files go when the channel goes). */
  filesOfChannel: async (q: Queryable, channelId: string): Promise<string[]> =>
    (await q('attachments').where({ channel_id: channelId }).select('storage_name')).map(
      (r: { storage_name: string }) => r.storage_name,
    ),
  /** Storage names of every attachment in the guild's channels (their files go when the guild goes). */
  filesOfGuild: async (q: Queryable, guildId: string): Promise<string[]> =>
    (
      await q('attachments')
        .join('channels', 'channels.id', 'attachments.channel_id')
        .where('channels.guild_id', guildId)
        .select('attachments.storage_name')
    ).map((r: { storage_name: string }) => r.storage_name),
};
