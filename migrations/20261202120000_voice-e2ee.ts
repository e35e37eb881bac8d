/**
 * End-to-end encrypted voice (issue 15): a voice channel setting under which clients must declare
 * that they encrypt their media (`voice_join` with `"e2ee": true`, else E2EE_REQUIRED). Only voice
 * channels may turn it on (checked by the channels service, like user_limit).
 */
import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('channels', (t) => {
    t.boolean('e2ee_voice').notNullable().defaultTo(false);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('channels', (t) => {
    t.dropColumn('e2ee_voice');
  });
}
