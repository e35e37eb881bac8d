/**
 * DM messages must be encrypted, also at the database (issue 10): a trigger on both dialects refuses a
 * plaintext message in a DM or group DM channel (a CHECK cannot read the channel's type); the service
 * refuses it first with a clearer error. Inserts only: a delete scrub legitimately clears `encrypted`.
 *
 * Its own migration, after every migration that alters `channels`: on SQLite, knex drops a column by
 * rebuilding the table, and that rebuild fails while a trigger names the table. A later migration that
 * alters `channels` or `messages` on SQLite must call `dropDmEncryptionTrigger` first and
 * `createDmEncryptionTrigger` after (and the reverse in its `down`).
 */
import type { Knex } from 'knex';

export async function createDmEncryptionTrigger(knex: Knex): Promise<void> {
  const pg = knex.client.config.client === 'pg';
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

export async function dropDmEncryptionTrigger(knex: Knex): Promise<void> {
  const pg = knex.client.config.client === 'pg';
  await knex.raw(`DROP TRIGGER IF EXISTS dm_requires_encryption${pg ? ' ON messages' : ''}`);
  if (pg) await knex.raw('DROP FUNCTION IF EXISTS dm_requires_encryption()');
}

export const up = createDmEncryptionTrigger;
export const down = dropDmEncryptionTrigger;
