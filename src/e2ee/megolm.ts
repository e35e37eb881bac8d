/**
 * The Megolm session store and its rotation. Session data is sealed at rest with the channel's key
 * (src/crypto/megolm.ts: HKDF of the megolm master key, AAD `megolm:<channel>:<session>`), so the
 * database never holds it in clear and a value copied to another row does not open. Members only:
 * anyone else gets 404. When someone leaves a group DM, or leaves / is kicked / is banned from a guild
 * whose channels carry sessions, those sessions are marked expired and the remaining members get
 * `megolm_session_rotation {channel_id}` (sent after the leaver's subscriptions were recomputed, so the
 * leaver does not receive it).
 */
import { channelOr404 } from '../access/loaders.js';
import type { Actor } from '../actor.js';
import { DecryptError } from '../crypto/aead.js';
import type { Keyring } from '../crypto/keyring.js';
import { openMegolmSessionData, sealMegolmSessionData } from '../crypto/megolm.js';
import type { Db, Queryable } from '../db/knex.js';
import type { EventHub } from '../events/hub.js';
import { iso, newId, nowMs } from '../ids.js';
import type { Logger } from '../logger.js';
import { type MegolmSessionRow, megolmRepo } from './repo.js';
import type { MegolmSessionCreate } from './schema.js';

export interface MegolmDeps {
  db: Db;
  events: EventHub;
  keyring: Keyring;
  logger: Logger;
}

export interface MegolmSessionWire {
  session_id: string;
  sender_key: string;
  sender_user_id: string;
  session_data: string;
  created_at: string | null;
  expired_at: string | null;
}

const present = (row: MegolmSessionRow, sessionData: string): MegolmSessionWire => ({
  session_id: row.session_id,
  sender_key: row.sender_key,
  sender_user_id: row.sender_user_id,
  session_data: sessionData,
  created_at: iso(row.created_at),
  expired_at: iso(row.expired_at),
});

export async function storeMegolmSession(
  ctx: MegolmDeps,
  actor: Actor,
  channelId: string,
  input: MegolmSessionCreate,
): Promise<MegolmSessionWire> {
  return ctx.db.transaction(async (trx) => {
    await channelOr404(trx, channelId, actor.userId);
    const row: MegolmSessionRow = {
      id: newId(),
      channel_id: channelId,
      session_id: input.session_id,
      sender_user_id: actor.userId,
      sender_key: input.sender_key,
      session_data: sealMegolmSessionData(ctx.keyring, channelId, input.session_id, input.session_data),
      created_at: nowMs(),
      expired_at: null,
    };
    await megolmRepo.insert(trx, row); // (channel_id, session_id) unique → 409 CONFLICT
    return present(row, input.session_data);
  });
}

export async function listMegolmSessions(
  ctx: MegolmDeps,
  actor: Actor,
  channelId: string,
): Promise<MegolmSessionWire[]> {
  await channelOr404(ctx.db, channelId, actor.userId);
  const out: MegolmSessionWire[] = [];
  for (const row of await megolmRepo.list(ctx.db, channelId)) {
    try {
      out.push(
        present(row, openMegolmSessionData(ctx.keyring, channelId, row.session_id, row.session_data).toString()),
      );
    } catch (e) {
      if (!(e instanceof DecryptError)) throw e;
      // A value that does not open under this row's key and AAD (moved from another row, or a key
      // that is gone) is never served; the operator sees which row.
      ctx.logger.warn({ channel_id: channelId, row_id: row.id }, 'megolm session data does not decrypt');
    }
  }
  return out;
}

/** Marks the live sessions of these channels expired (in the caller's transaction). */
export const expireChannelSessions = (q: Queryable, channelIds: string[]): Promise<string[]> =>
  megolmRepo.expire(q, channelIds, nowMs());

/**
 * A member left, was kicked or was banned from a guild: the guild's channels that carry live Megolm
 * sessions rotate. Call after the departure's own Outbox was flushed (its `access_changed` first).
 */
export async function rotateGuildMegolmSessions(ctx: { db: Db; events: EventHub }, guildId: string): Promise<void> {
  const rotated = await ctx.db.transaction(async (trx) =>
    expireChannelSessions(trx, await megolmRepo.guildChannelIds(trx, guildId)),
  );
  if (rotated.length === 0) return;
  const out = ctx.events.outbox();
  for (const channelId of rotated) out.toChannel(channelId, 'megolm_session_rotation', { channel_id: channelId });
  out.flush();
}
