/**
 * Registration in `invite` mode redeems a guild invite with the guild feature's own verb (the same
 * rules as "join by invite"), in the registration transaction. Any unusable code — unknown, expired,
 * used up — is one FORBIDDEN answer.
 */
import type { Queryable } from '../db/knex.js';
import { AppError, errors } from '../errors.js';
import type { MemberWire } from '../events/event-map.js';
import { redeemInvite } from '../guilds/service.js';

export async function redeemInviteForRegistration(
  trx: Queryable,
  code: string,
  userId: string,
  now: number,
): Promise<{ guildId: string; joined: MemberWire | undefined }> {
  try {
    const { guild, joined } = await redeemInvite(trx, code, userId, now);
    return { guildId: guild.id, joined };
  } catch (e) {
    if (e instanceof AppError && e.code === 'NOT_FOUND') throw errors.forbidden('The invite code is not valid.');
    throw e;
  }
}
