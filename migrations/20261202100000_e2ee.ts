/**
 * End-to-end encrypted DMs (issue 10):
 * - `channels.dm_key`: the sorted participant pair of a 1:1 DM, unique, so the same pair always gets
 *   the same channel, also when two requests race;
 * - `dm_requires_encryption`: a trigger on both dialects refusing a plaintext message in a DM channel
 *   (a CHECK cannot read another table); the service refuses it first;
 * - indexes the E2EE reads need: a device's one-time keys and queued to-device messages in age order
 *   (the claim takes the oldest key), queued messages by expiry (the cleanup job).
 */
import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  const pg = knex.client.config.client === 'pg';
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
  if (pg) {
    await knex.raw(`
      CREATE FUNCTION dm_requires_encryption() RETURNS trigger AS $$
      BEGIN
        IF NEW.encrypted = false AND EXISTS (
          SELECT 1 FROM channels WHERE id = NEW.channel_id AND type IN ('dm', 'group_dm')
        ) THEN
          RAISE EXCEPTION 'dm_requires_encryption'
            USING ERRCODE = 'check_violation', CONSTRAINT = 'dm_requires_encryption';
        END IF;
        RETURN NEW;
      END;
      $$ LANGUAGE plpgsql`);
    await knex.raw(`
      CREATE TRIGGER dm_requires_encryption BEFORE INSERT ON messages
      FOR EACH ROW EXECUTE FUNCTION dm_requires_encryption()`);
  } else {
    await knex.raw(`
      CREATE TRIGGER dm_requires_encryption BEFORE INSERT ON messages
      WHEN NEW.encrypted = 0 AND EXISTS (
        SELECT 1 FROM channels WHERE id = NEW.channel_id AND type IN ('dm', 'group_dm')
      )
      BEGIN SELECT RAISE(ABORT, 'dm_requires_encryption'); END`);
  }
}

export async function down(knex: Knex): Promise<void> {
  const pg = knex.client.config.client === 'pg';
  await knex.raw(`DROP TRIGGER IF EXISTS dm_requires_encryption${pg ? ' ON messages' : ''}`);
  if (pg) await knex.raw('DROP FUNCTION IF EXISTS dm_requires_encryption()');
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
