/**
 * Upload and download of channel attachments. The body is streamed to `<dataDir>/uploads/<random>.part`
 * while its size is counted (over the size limit or the user's quota: stop, delete the partial file,
 * 413) and its text-ness checked; the type is then decided from magic bytes and must agree with the
 * extension. Only then is the file renamed to its storage name and its row and `upload.create` audit
 * entry written, in one transaction that re-checks the quota under a per-user lock (concurrent
 * uploads cannot together pass it). Any failure or client abort removes the file.
 */
import { createReadStream, createWriteStream, type ReadStream } from 'node:fs';
import { rename, stat, unlink } from 'node:fs/promises';
import { type Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ChannelAccessCache } from '../access/cache.js';
import { has, P } from '../access/permissions.js';
import type { Actor } from '../actor.js';
import { recordActorAudit } from '../audit/writer.js';
import type { Config } from '../config/index.js';
import { type Db, dialectOf } from '../db/knex.js';
import { errors, isAppError } from '../errors.js';
import { isId, newId, nowMs } from '../ids.js';
import type { RateLimits } from '../ratelimit/index.js';
import { contentDisposition, extensionOf, headerFilename, sanitizeFilename } from './filename.js';
import { classify, TEXT_MIME, TextSniffer } from './mime.js';
import { presentAttachment } from './presenter.js';
import { attachmentRepo, type StoredAttachmentRow } from './repo.js';
import { newStorageName, partPath, storagePath } from './storage.js';

export interface UploadDeps {
  db: Db;
  config: Pick<Config, 'dataDir' | 'uploadMaxBytes' | 'uploadQuotaBytes'>;
  limits: RateLimits;
  channelAccess: ChannelAccessCache;
}
type Ctx = UploadDeps;

export interface UploadInput {
  /** The client's filename (X-Filename, percent-encoded UTF-8 or plain ASCII), decoded and cleaned here. */
  filename: string | undefined;
  /** Declared Content-Length, if any: refused up front when over the limit. */
  contentLength: number | undefined;
  body: Readable;
  /** Sent as application/json: the JSON reader consumed it, so it cannot be a file. */
  jsonTyped?: boolean;
}

export async function createUpload(ctx: Ctx, actor: Actor, channelId: string, input: UploadInput) {
  await ctx.limits.consume('upload_user', actor.userId);
  const access = await ctx.channelAccess.get(channelId, actor.userId);
  if (!access) throw errors.notFound('No such channel.');
  if (!has(access.permissions, P.ATTACH_FILES)) throw errors.forbidden('You cannot attach files here.');
  if (access.channel.type === 'voice') throw errors.validation('Voice channels have no attachments.');
  if (input.jsonTyped) {
    throw errors.unsupportedMediaType('Send the file as the raw body (e.g. application/octet-stream).');
  }
  if (!input.filename) {
    throw errors.validation('The X-Filename header is required.', [{ path: 'X-Filename', message: 'required' }]);
  }
  const max = ctx.config.uploadMaxBytes;
  if (input.contentLength !== undefined && input.contentLength > max) throw errors.payloadTooLarge();
  const quota = ctx.config.uploadQuotaBytes;
  const used = await attachmentRepo.usedBytes(ctx.db, actor.userId);
  if (input.contentLength !== undefined && used + input.contentLength > quota) {
    throw errors.quotaExceeded(used, quota, input.contentLength);
  }
  const cap = Math.min(max, Math.max(0, quota - used));
  const filename = sanitizeFilename(headerFilename(input.filename));

  const storageName = newStorageName();
  const part = partPath(ctx.config.dataDir, storageName);
  const file = storagePath(ctx.config.dataDir, storageName);
  let renamed = false;
  const sniffer = new TextSniffer();
  let size = 0;
  const meter = new Transform({
    transform(chunk: Buffer, _enc, done) {
      size += chunk.length;
      if (size > cap) return done(size > max ? errors.payloadTooLarge() : errors.quotaExceeded(used, quota, size));
      sniffer.update(chunk);
      done(null, chunk);
    },
  });
  try {
    await pipeline(input.body, meter, createWriteStream(part, { flags: 'wx', mode: 0o600 }));
    if (size === 0) throw errors.validation('The file is empty.');
    const mime = await classify(part, extensionOf(filename), sniffer);
    if (!mime) throw errors.unsupportedMediaType('That file type is not allowed, or does not match its extension.');
    const row: StoredAttachmentRow = {
      id: newId(),
      channel_id: channelId,
      message_id: null,
      uploader_id: actor.userId,
      filename,
      storage_name: storageName,
      mime_type: mime,
      size_bytes: size,
      created_at: nowMs(),
    };
    // Renamed before the row commits: a crash in between leaves a row-less file (swept after a day),
    // never a row without its file.
    await rename(part, file);
    renamed = true;
    await ctx.db.transaction(async (trx) => {
      await attachmentRepo.lockUploader(trx, dialectOf(ctx.db), actor.userId);
      const usedNow = await attachmentRepo.usedBytes(trx, actor.userId);
      if (usedNow + size > quota) throw errors.quotaExceeded(usedNow, quota, size);
      await attachmentRepo.insert(trx, row);
      await recordActorAudit(trx, actor, 'upload.create', 'attachment', row.id, {
        guild_id: access.channel.guild_id,
        channel_id: channelId,
        mime_type: mime,
        size_bytes: size,
      });
    });
    return presentAttachment(row);
  } catch (e) {
    await unlink(renamed ? file : part).catch(() => {});
    if (isAppError(e)) throw e;
    const code = (e as { code?: string }).code;
    if (code === 'ERR_STREAM_PREMATURE_CLOSE' || code === 'ECONNRESET' || code === 'ECONNABORTED')
      throw errors.validation('The upload was cut off.');
    throw e;
  }
}

export interface Download {
  stream: ReadStream;
  headers: Record<string, string>;
}

/** An attachment for someone who can view its channel (unlinked uploads: the uploader only), or 404. */
export async function openAttachment(ctx: Ctx, actor: Actor, attachmentId: string): Promise<Download> {
  const a = isId(attachmentId) ? await attachmentRepo.find(ctx.db, attachmentId) : undefined;
  const access = a ? await ctx.channelAccess.get(a.channel_id, actor.userId) : undefined;
  if (!a || !access || (a.message_id === null && a.uploader_id !== actor.userId)) {
    throw errors.notFound('No such attachment.');
  }
  const file = storagePath(ctx.config.dataDir, a.storage_name);
  const info = await stat(file).catch(() => undefined);
  if (!info) throw errors.notFound('No such attachment.');
  return {
    stream: createReadStream(file),
    headers: {
      'Content-Type': a.mime_type === TEXT_MIME ? 'text/plain; charset=utf-8' : a.mime_type,
      'Content-Length': String(info.size),
      'Content-Disposition': contentDisposition(a.filename),
      'X-Content-Type-Options': 'nosniff',
    },
  };
}
