/**
 * Message verbs: history with cursor pagination, create, edit (author only) and delete (soft delete
 * with a GDPR scrub). The create path is the hot one: rate limit → cached channel access → one
 * group-committed INSERT → publish; nothing else touches the database unless the message has a reply
 * or attachments.
 */
import type { ChannelAccessCache } from '../access/cache.js';
import type { ChannelAccess } from '../access/loaders.js';
import { has, P } from '../access/permissions.js';
import type { Actor } from '../actor.js';
import { recordActorAudit } from '../audit/writer.js';
import type { Config } from '../config/index.js';
import type { Db } from '../db/knex.js';
import { errors } from '../errors.js';
import type { MessageWire } from '../events/event-map.js';
import type { EventHub } from '../events/hub.js';
import { isId, newId, nowMs } from '../ids.js';
import type { Logger } from '../logger.js';
import type { RateLimits } from '../ratelimit/index.js';
import { attachmentRepo } from '../uploads/repo.js';
import { removeStoredFiles } from '../uploads/storage.js';
import { type MessageRow, presentMessage } from './presenter.js';
import { type MessageInserter, messageRepo } from './repo.js';
import type { HistoryQuery, MessageCreate, MessageEdit } from './schema.js';

export interface MessageDeps {
  db: Db;
  events: EventHub;
  config: Pick<Config, 'dataDir'>;
  logger: Logger;
  limits: RateLimits;
  channelAccess: ChannelAccessCache;
  messageWriter: MessageInserter;
}
type Ctx = MessageDeps;

const isDm = (a: ChannelAccess) => a.channel.type === 'dm' || a.channel.type === 'group_dm';

/** The channel as the caller sees it (cached for the hot path); 404 when not visible. */
export async function viewableChannel(ctx: Ctx, channelId: string, userId: string): Promise<ChannelAccess> {
  const access = await ctx.channelAccess.get(channelId, userId);
  if (!access) throw errors.notFound('No such channel.');
  return access;
}

async function withAttachments(ctx: Ctx, rows: MessageRow[]) {
  const attachments = await attachmentRepo.forMessages(
    ctx.db,
    rows.filter((r) => !r.deleted_at).map((r) => r.id),
  );
  return rows.map((r) =>
    presentMessage(
      r,
      attachments.filter((a) => a.message_id === r.id),
    ),
  );
}

export async function listMessages(ctx: Ctx, actor: Actor, channelId: string, page: HistoryQuery) {
  await viewableChannel(ctx, channelId, actor.userId);
  return withAttachments(ctx, await messageRepo.page(ctx.db, channelId, page, page.limit));
}

export async function createMessage(ctx: Ctx, actor: Actor, channelId: string, input: MessageCreate) {
  await ctx.limits.consume('message_user', actor.userId);
  const access = await viewableChannel(ctx, channelId, actor.userId);
  if (!has(access.permissions, P.SEND_MESSAGES)) throw errors.forbidden('You cannot send messages here.');
  if (access.channel.type === 'voice') throw errors.validation('Voice channels have no messages.');
  if (isDm(access) && !input.encrypted) {
    throw errors.validation('Direct messages must be end-to-end encrypted.', [
      { path: 'encrypted', message: 'must be true in a DM channel' },
    ]);
  }
  const row: MessageRow = {
    id: newId(),
    channel_id: channelId,
    author_id: actor.userId,
    content: input.content,
    encrypted: Boolean(input.encrypted),
    nonce: input.encrypted ? (input.nonce ?? null) : null,
    reply_to: input.reply_to ?? null,
    created_at: nowMs(),
    edited_at: null,
    deleted_at: null,
  };
  const attachmentIds = input.attachment_ids ?? [];
  let wire: MessageWire;
  if (!row.reply_to && attachmentIds.length === 0) {
    await ctx.messageWriter.insert(row);
    wire = presentMessage(row);
  } else {
    wire = await ctx.db.transaction(async (trx) => {
      if (row.reply_to) {
        const parent = await messageRepo.find(trx, row.reply_to);
        if (!parent || parent.channel_id !== channelId) {
          throw errors.validation('The replied-to message is not in this channel.', [
            { path: 'reply_to', message: 'not a message in this channel' },
          ]);
        }
      }
      await messageRepo.insert(trx, row);
      if (attachmentIds.length > 0) {
        if (!has(access.permissions, P.ATTACH_FILES)) throw errors.forbidden('You cannot attach files here.');
        const linked = await attachmentRepo.link(trx, attachmentIds, row.id, channelId, actor.userId);
        if (linked !== attachmentIds.length) {
          throw errors.validation('Attachments must be your own unused uploads in this channel.', [
            { path: 'attachment_ids', message: 'unknown or already used' },
          ]);
        }
      }
      return presentMessage(row, await attachmentRepo.forMessages(trx, [row.id]));
    });
  }
  ctx.events.outbox().toChannel(channelId, 'message_new', wire).flush();
  return wire;
}

/** A message whose channel the caller may view, or 404. */
async function visibleMessage(ctx: Ctx, messageId: string, userId: string) {
  const message = isId(messageId) ? await messageRepo.find(ctx.db, messageId) : undefined;
  if (!message) throw errors.notFound('No such message.');
  const access = await ctx.channelAccess.get(message.channel_id, userId);
  if (!access) throw errors.notFound('No such message.');
  return { message, access };
}

export async function editMessage(ctx: Ctx, actor: Actor, messageId: string, input: MessageEdit) {
  const { message, access } = await visibleMessage(ctx, messageId, actor.userId);
  if (message.author_id !== actor.userId) throw errors.forbidden('Only the author can edit a message.');
  if (message.deleted_at) throw errors.notFound('No such message.');
  // Editing is writing: an author who may no longer send in the channel may not rewrite history there.
  if (!has(access.permissions, P.SEND_MESSAGES)) throw errors.forbidden('You cannot send messages here.');
  const encrypted = Boolean(message.encrypted);
  if (encrypted && (!input.nonce || input.nonce === message.nonce)) {
    throw errors.validation('An encrypted message is edited with a new nonce.', [
      { path: 'nonce', message: 'required and must differ from the previous nonce' },
    ]);
  }
  if (!encrypted && input.nonce !== undefined) {
    throw errors.validation('Only encrypted messages carry a nonce.', [{ path: 'nonce', message: 'not allowed' }]);
  }
  const patch = { content: input.content, nonce: encrypted ? input.nonce! : null, edited_at: nowMs() };
  if ((await messageRepo.edit(ctx.db, messageId, patch)) === 0) throw errors.notFound('No such message.');
  const [wire] = (await withAttachments(ctx, [{ ...message, ...patch }])) as [MessageWire];
  ctx.events.outbox().toChannel(message.channel_id, 'message_edit', wire).flush();
  return wire;
}

/** Author, or MANAGE_MESSAGES in the channel (audited). Scrubs the row and removes attachment files. */
export async function deleteMessage(ctx: Ctx, actor: Actor, messageId: string): Promise<void> {
  const { message, access } = await visibleMessage(ctx, messageId, actor.userId);
  const isAuthor = message.author_id === actor.userId;
  if (!isAuthor && !has(access.permissions, P.MANAGE_MESSAGES)) {
    throw errors.forbidden('You cannot delete this message.');
  }
  if (message.deleted_at) return;
  const now = nowMs();
  const files = await ctx.db.transaction(async (trx) => {
    if ((await messageRepo.scrub(trx, messageId, now)) === 0) return undefined;
    const files = await attachmentRepo.detach(trx, messageId);
    if (!isAuthor) {
      await recordActorAudit(trx, actor, 'message.delete_moderator', 'message', messageId, {
        guild_id: access.channel.guild_id,
        channel_id: message.channel_id,
        author_id: message.author_id,
      });
    }
    return files;
  });
  if (!files) return;
  const wire = presentMessage({ ...message, content: '[deleted]', nonce: null, encrypted: false, deleted_at: now });
  ctx.events.outbox().toChannel(message.channel_id, 'message_delete', wire).flush();
  await removeStoredFiles(ctx.config.dataDir, files, ctx.logger);
}
