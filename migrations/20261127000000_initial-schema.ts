/**
 * The whole data model (DESIGN.md §5), identical on SQLite and Postgres. Ids are application-generated
 * UUIDv7 strings; timestamps are epoch milliseconds (bigint) on both dialects; JSON is text. Named CHECK
 * constraints carry the contract names and reject the same inputs on both dialects (SQLite's REGEXP is
 * a JavaScript function registered on every connection by src/db/knex.ts).
 */
import type { Knex } from 'knex';

const USERNAME = '^[a-z0-9_]{3,32}$';
const EMAIL = '^[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\\.[A-Za-z]{2,}$';
const COLOR = '^#[0-9A-Fa-f]{6}$';

export async function up(knex: Knex): Promise<void> {
  const pg = knex.client.config.client === 'pg';
  const matches = (col: string, pattern: string) => (pg ? `"${col}" ~ '${pattern}'` : `"${col}" REGEXP '${pattern}'`);
  const charLength = (col: string) => (pg ? `char_length("${col}")` : `length("${col}")`);
  const id = (t: Knex.CreateTableBuilder) => t.string('id', 36).primary();
  const ref = (t: Knex.CreateTableBuilder, col: string, table: string, onDelete = 'CASCADE') =>
    t.string(col, 36).references('id').inTable(table).onDelete(onDelete);
  const ts = (t: Knex.CreateTableBuilder, col: string) => t.bigInteger(col);

  await knex.schema.createTable('users', (t) => {
    id(t);
    t.string('username', 32).notNullable().unique();
    t.string('email', 254).nullable();
    t.string('display_name', 64).nullable();
    t.text('password_hash').notNullable();
    t.boolean('is_admin').notNullable().defaultTo(false);
    t.boolean('mfa_enabled').notNullable().defaultTo(false);
    t.text('mfa_secret').nullable(); // v1.<kid>.… ciphertext, AAD "mfa:<user_id>"
    t.text('mfa_pending_secret').nullable(); // set by setup, moved to mfa_secret by verify
    t.bigInteger('mfa_last_step').nullable(); // last accepted TOTP time step (replay guard)
    t.integer('failed_login_count').notNullable().defaultTo(0);
    ts(t, 'locked_until').nullable();
    ts(t, 'disabled_at').nullable();
    ts(t, 'password_changed_at').nullable();
    ts(t, 'created_at').notNullable();
    ts(t, 'updated_at').notNullable();
    t.check(matches('username', USERNAME), [], 'username_format');
    t.check(`"email" IS NULL OR ${matches('email', EMAIL)}`, [], 'email_format');
  });

  await knex.schema.createTable('sessions', (t) => {
    // One row per refresh token. A login starts a family; every refresh adds a row to it and marks
    // the previous row rotated. Access tokens carry the family id as `sid`.
    id(t);
    t.string('family_id', 36).notNullable().index();
    ref(t, 'user_id', 'users').notNullable().index();
    t.string('token_hash', 64).notNullable().unique();
    t.string('ip_address', 64).nullable();
    t.string('user_agent', 512).nullable();
    ts(t, 'created_at').notNullable();
    ts(t, 'last_used_at').nullable();
    ts(t, 'expires_at').notNullable();
    ts(t, 'rotated_at').nullable();
    ts(t, 'revoked_at').nullable();
    t.string('revoked_reason', 32).nullable();
    t.check('"expires_at" > "created_at"', [], 'valid_expiration');
  });

  await knex.schema.createTable('mfa_backup_codes', (t) => {
    id(t);
    ref(t, 'user_id', 'users').notNullable().index();
    t.string('code_hash', 64).notNullable();
    ts(t, 'created_at').notNullable();
    ts(t, 'used_at').nullable();
  });

  await knex.schema.createTable('password_reset_tokens', (t) => {
    id(t);
    ref(t, 'user_id', 'users').notNullable().index();
    t.string('token_hash', 64).notNullable().unique();
    ts(t, 'created_at').notNullable();
    ts(t, 'expires_at').notNullable();
    ts(t, 'used_at').nullable();
    t.check('"expires_at" > "created_at"', [], 'reset_valid_expiration');
  });

  await knex.schema.createTable('guilds', (t) => {
    id(t);
    t.string('name', 100).notNullable();
    ref(t, 'owner_id', 'users', 'RESTRICT').notNullable().index();
    ts(t, 'created_at').notNullable();
    ts(t, 'updated_at').notNullable();
  });

  await knex.schema.createTable('guild_members', (t) => {
    ref(t, 'guild_id', 'guilds').notNullable();
    ref(t, 'user_id', 'users').notNullable().index();
    t.string('nickname', 64).nullable();
    ts(t, 'joined_at').notNullable();
    t.primary(['guild_id', 'user_id']);
  });

  await knex.schema.createTable('roles', (t) => {
    id(t);
    ref(t, 'guild_id', 'guilds').notNullable().index();
    t.string('name', 100).notNullable();
    t.string('color', 7).nullable();
    t.bigInteger('permissions').notNullable().defaultTo(0);
    t.integer('position').notNullable().defaultTo(0);
    t.boolean('is_everyone').notNullable().defaultTo(false);
    ts(t, 'created_at').notNullable();
    t.check(`"color" IS NULL OR ${matches('color', COLOR)}`, [], 'valid_color');
    t.check('"position" >= 0', [], 'valid_position');
  });

  await knex.schema.createTable('member_roles', (t) => {
    ref(t, 'guild_id', 'guilds').notNullable();
    ref(t, 'user_id', 'users').notNullable();
    ref(t, 'role_id', 'roles').notNullable().index();
    t.primary(['guild_id', 'user_id', 'role_id']);
  });

  await knex.schema.createTable('channels', (t) => {
    id(t);
    ref(t, 'guild_id', 'guilds').nullable().index(); // NULL for DM channels
    t.string('type', 16).notNullable();
    t.string('name', 100).nullable();
    t.string('topic', 1024).nullable();
    t.integer('position').notNullable().defaultTo(0);
    t.integer('user_limit').nullable();
    ref(t, 'owner_id', 'users', 'SET NULL').nullable();
    ts(t, 'created_at').notNullable();
    ts(t, 'updated_at').notNullable();
    t.check(`"type" IN ('text', 'voice', 'dm', 'group_dm')`, [], 'channel_type');
    t.check('"position" >= 0', [], 'valid_position');
    t.check('"user_limit" IS NULL OR ("user_limit" >= 0 AND "user_limit" <= 99)', [], 'valid_user_limit');
  });

  await knex.schema.createTable('channel_overrides', (t) => {
    ref(t, 'channel_id', 'channels').notNullable();
    ref(t, 'role_id', 'roles').notNullable().index();
    t.bigInteger('allow').notNullable().defaultTo(0);
    t.bigInteger('deny').notNullable().defaultTo(0);
    t.primary(['channel_id', 'role_id']);
  });

  await knex.schema.createTable('invites', (t) => {
    t.string('code', 32).primary();
    ref(t, 'guild_id', 'guilds').notNullable().index();
    ref(t, 'creator_id', 'users', 'SET NULL').nullable();
    t.integer('max_uses').nullable();
    t.integer('uses').notNullable().defaultTo(0);
    ts(t, 'expires_at').nullable();
    ts(t, 'created_at').notNullable();
    t.check('"max_uses" IS NULL OR "max_uses" > 0', [], 'valid_max_uses');
  });

  await knex.schema.createTable('bans', (t) => {
    ref(t, 'guild_id', 'guilds').notNullable();
    ref(t, 'user_id', 'users').notNullable();
    t.string('reason', 512).nullable();
    ref(t, 'moderator_id', 'users', 'SET NULL').nullable();
    ts(t, 'created_at').notNullable();
    t.primary(['guild_id', 'user_id']);
  });

  await knex.schema.createTable('messages', (t) => {
    id(t);
    ref(t, 'channel_id', 'channels').notNullable();
    ref(t, 'author_id', 'users', 'SET NULL').nullable();
    t.text('content').notNullable();
    t.boolean('encrypted').notNullable().defaultTo(false);
    t.string('nonce', 128).nullable();
    t.string('reply_to', 36).nullable();
    ts(t, 'created_at').notNullable();
    ts(t, 'edited_at').nullable();
    ts(t, 'deleted_at').nullable();
    t.index(['channel_id', 'id']);
    t.check('"encrypted" = false OR "nonce" IS NOT NULL', [], 'encrypted_requires_nonce');
    t.check(`${charLength('content')} <= 4000`, [], 'message_length');
  });

  await knex.schema.createTable('attachments', (t) => {
    id(t);
    ref(t, 'channel_id', 'channels').notNullable().index();
    ref(t, 'message_id', 'messages', 'SET NULL').nullable().index();
    ref(t, 'uploader_id', 'users', 'SET NULL').nullable();
    t.string('filename', 255).notNullable();
    t.string('storage_name', 64).notNullable().unique();
    t.string('mime_type', 127).notNullable();
    t.bigInteger('size_bytes').notNullable();
    ts(t, 'created_at').notNullable();
    t.check('"size_bytes" > 0 AND "size_bytes" <= 104857600', [], 'valid_file_size');
  });

  await knex.schema.createTable('dm_participants', (t) => {
    ref(t, 'channel_id', 'channels').notNullable();
    ref(t, 'user_id', 'users').notNullable().index();
    ts(t, 'joined_at').notNullable();
    ts(t, 'left_at').nullable();
    t.primary(['channel_id', 'user_id']);
  });

  await knex.schema.createTable('devices', (t) => {
    id(t);
    ref(t, 'user_id', 'users').notNullable();
    t.string('device_id', 64).notNullable();
    t.string('curve25519', 64).notNullable();
    t.string('ed25519', 64).notNullable();
    t.text('signature').nullable();
    t.string('fallback_key_id', 64).nullable();
    t.string('fallback_key', 64).nullable();
    ts(t, 'created_at').notNullable();
    ts(t, 'last_seen_at').nullable();
    t.unique(['user_id', 'device_id']);
  });

  await knex.schema.createTable('one_time_keys', (t) => {
    id(t);
    ref(t, 'device_id', 'devices').notNullable();
    t.string('key_id', 64).notNullable();
    t.string('key', 64).notNullable();
    ts(t, 'created_at').notNullable();
    t.unique(['device_id', 'key_id']);
  });

  await knex.schema.createTable('to_device_messages', (t) => {
    id(t);
    ref(t, 'recipient_user_id', 'users').notNullable();
    t.string('recipient_device_id', 64).notNullable();
    ref(t, 'sender_user_id', 'users').notNullable();
    t.string('sender_device_id', 64).nullable();
    t.string('type', 64).notNullable();
    t.text('ciphertext').notNullable();
    ts(t, 'created_at').notNullable();
    ts(t, 'expires_at').notNullable();
    t.index(['recipient_user_id', 'recipient_device_id']);
  });

  await knex.schema.createTable('megolm_sessions', (t) => {
    id(t);
    ref(t, 'channel_id', 'channels').notNullable();
    t.string('session_id', 128).notNullable();
    ref(t, 'sender_user_id', 'users').notNullable();
    t.string('sender_key', 64).notNullable();
    t.text('session_data').notNullable(); // v1.<kid>.… under HKDF(megolm master, channel_id)
    ts(t, 'created_at').notNullable();
    ts(t, 'expired_at').nullable();
    t.unique(['channel_id', 'session_id']);
  });

  await knex.schema.createTable('audit_log', (t) => {
    // Sequential id: the hash chain is ordered by it.
    t.bigIncrements('id').primary();
    t.string('user_id', 36).nullable().index(); // no FK: audit rows outlive users
    t.string('action', 64).notNullable().index();
    t.string('resource_type', 32).nullable();
    t.string('resource_id', 64).nullable();
    t.string('ip_address', 64).nullable();
    t.text('metadata').notNullable().defaultTo('{}');
    ts(t, 'created_at').notNullable().index();
    t.string('prev_hash', 64).notNullable();
    t.string('hash', 64).notNullable();
    t.index(['resource_type', 'resource_id']);
  });

  // Single-row table locked while appending to the audit chain (serialises writers on Postgres).
  await knex.schema.createTable('audit_chain_head', (t) => {
    t.integer('id').primary();
    t.bigInteger('last_id').notNullable().defaultTo(0);
    t.string('last_hash', 64).notNullable();
  });
  await knex('audit_chain_head').insert({ id: 1, last_id: 0, last_hash: '0'.repeat(64) });

  // Online key rotation progress (rotate-keys): resumable after a crash.
  await knex.schema.createTable('key_rotations', (t) => {
    id(t);
    t.string('purpose', 16).notNullable();
    t.string('from_key_id', 64).nullable();
    t.string('to_key_id', 64).notNullable();
    t.string('state', 16).notNullable();
    t.string('cursor', 64).nullable();
    t.integer('rows_done').notNullable().defaultTo(0);
    ts(t, 'started_at').notNullable();
    ts(t, 'finished_at').nullable();
    t.check(`"state" IN ('running', 'done', 'failed')`, [], 'rotation_state');
  });

  // Background job bookkeeping (retention, pruning): last run per job, for ops visibility.
  await knex.schema.createTable('job_runs', (t) => {
    t.string('name', 64).primary();
    ts(t, 'last_started_at').nullable();
    ts(t, 'last_finished_at').nullable();
    t.string('last_status', 16).nullable();
    t.text('last_error').nullable();
  });
}

export async function down(knex: Knex): Promise<void> {
  for (const table of [
    'job_runs',
    'key_rotations',
    'audit_chain_head',
    'audit_log',
    'megolm_sessions',
    'to_device_messages',
    'one_time_keys',
    'devices',
    'dm_participants',
    'attachments',
    'messages',
    'bans',
    'invites',
    'channel_overrides',
    'channels',
    'member_roles',
    'roles',
    'guild_members',
    'guilds',
    'password_reset_tokens',
    'mfa_backup_codes',
    'sessions',
    'users',
  ]) {
    await knex.schema.dropTableIfExists(table);
  }
}
