/**
 * End-to-end encrypted DMs (issue 10):
 * - `channels.dm_key`: the sorted participant pair of a 1:1 DM, unique, so the same pair always gets
 *   the same channel, also when two requests race;
 * - indexes the E2EE reads need: a device's one-time keys and queued to-device messages in age order
 *   (the claim takes the oldest key), queued messages by expiry (the cleanup job).
 */
import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('channels', (t) => {
    t.string('dm_key', 80).nullable().unique();
  });
  await knex.schema.alterTable('one_time_keys', (t) => {
    t.index(['device_id', 'created_at', 'id']);
  });
  await knex.schema.alterTable('to_device_messages', (t) => {
    t.index(['expires_at']);
    t.index(['recipient_user_id', 'recipient_device_id', 'created_at', 'id']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('to_device_messages', (t) => {
    t.dropIndex(['recipient_user_id', 'recipient_device_id', 'created_at', 'id']);
    t.dropIndex(['expires_at']);
  });
  await knex.schema.alterTable('one_time_keys', (t) => {
    t.dropIndex(['device_id', 'created_at', 'id']);
  });
  await knex.schema.alterTable('channels', (t) => {
    t.dropUnique(['dm_key']);
    t.dropColumn('dm_key');
  });
}
