/**
 * Message verbs: history with cursor pagination, create, edit (author only) and delete (soft delete
 * with a GDPR scrub). The create path is the hot one: rate limit → cached channel access → one
 * group-committed INSERT → publish; nothing else touches the database unless the message has a reply
 * or attachments.
 */
import type { AppContext } from '../app/context.js';
import { recordActorAudit } from '../audit/writer.js';
import { errors } from '../errors.js';
import { type ChannelAccess, channelAccessCache } from '../guilds/access.js';
import { Outbox } from '../guilds/events.js';
import { has, P } from '../guilds/permissions.js';
import { isId } from '../guilds/schema.js';
import type { Actor } from '../guilds/service.js';
import { newId, nowMs } from '../ids.js';
import { removeStoredFiles } from '../uploads/storage.js';
import { type MessageRow, presentMessage } from './presenter.js';
import { attachmentRepo, messageRepo, messageWriter } from './repo.js';
import type { MessageCreate } from './schema.js';

type Ctx = Pick<AppContext, 'db' | 'bus' | 'config' | 'logger' | 'limits'>;

const isDm = (a: ChannelAccess) => a.channel.type === 'dm' || a.channel.type === 'group_dm';

/** The channel as the caller sees it (cached for the hot path); 404 when not visible. */
export async function viewableChannel(ctx: Ctx, channelId: string, userId: string): Promise<ChannelAccess> {
  const access = isId(channelId) ? await channelAccessCache(ctx.bus).get(ctx.db, channelId, userId) : undefined;
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

export async function listMessages(
  ctx: Ctx,
  actor: Actor,
  channelId: string,
  page: { before?: string | undefined; after?: string | undefined; limit: number },
) {
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
  let wire: ReturnType<typeof presentMessage>;
  if (!row.reply_to && attachmentIds.length === 0) {
    await messageWriter(ctx.db).insert(row);
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
  new Outbox().message(channelId, 'message_new', wire).flush(ctx.bus);
  return wire;
}

/** A message whose channel the caller may view, or 404. */
async function visibleMessage(ctx: Ctx, messageId: string, userId: string) {
  const message = isId(messageId) ? await messageRepo.find(ctx.db, messageId) : undefined;
  if (!message) throw errors.notFound('No such message.');
  const access = isId(message.channel_id)
    ? await channelAccessCache(ctx.bus).get(ctx.db, message.channel_id, userId)
    : undefined;
  if (!access) throw errors.notFound('No such message.');
  return { message, access };
}

export async function editMessage(
  ctx: Ctx,
  actor: Actor,
  messageId: string,
  input: { content: string; nonce?: string | undefined },
) {
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
  const [wire] = await withAttachments(ctx, [{ ...message, ...patch }]);
  new Outbox().message(message.channel_id, 'message_edit', wire).flush(ctx.bus);
  return wire!;
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
  new Outbox().message(message.channel_id, 'message_delete', wire).flush(ctx.bus);
  await removeStoredFiles(ctx.config.dataDir, files, ctx.logger);
}
