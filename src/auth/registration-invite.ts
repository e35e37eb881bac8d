/**
 * Registration in `invite` mode: redeeming a guild invite code while creating the account. Kept as one
 * small function so it can later be merged with the guild feature's "join by invite" verb.
 */
import type { Knex } from 'knex';
import { errors } from '../errors.js';

/**
 * Checks the invite (exists, not expired, uses left, guild exists), consumes one use and makes the
 * user a member of its guild, in the caller's transaction. FORBIDDEN when the code is not usable.
 */
export async function redeemInviteForRegistration(
  trx: Knex.Transaction,
  code: string,
  userId: string,
  now: number,
): Promise<{ guildId: string }> {
  const invalid = () => errors.forbidden('The invite code is not valid.');
  const invite = await trx('invites').where({ code }).first();
  if (!invite) throw invalid();
  if (invite.expires_at !== null && Number(invite.expires_at) <= now) throw invalid();
  const guild = await trx('guilds').where({ id: invite.guild_id }).first('id');
  if (!guild) throw invalid();
  // The use is claimed with a guarded update so concurrent registrations cannot exceed max_uses.
  const claimed = await trx('invites')
    .where({ code })
    .andWhere((q) => q.whereNull('max_uses').orWhere('uses', '<', trx.ref('max_uses')))
    .andWhere((q) => q.whereNull('expires_at').orWhere('expires_at', '>', now))
    .increment('uses', 1);
  if (claimed !== 1) throw invalid();
  await trx('guild_members').insert({ guild_id: invite.guild_id, user_id: userId, nickname: null, joined_at: now });
  return { guildId: invite.guild_id };
}
