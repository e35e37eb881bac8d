/** User verbs shared by registration, `init` and `voicechat users`. */
import type { Knex } from 'knex';
import { hashPassword, type PasswordParams } from '../auth/passwords.js';
import type { Db } from '../db/knex.js';
import { errors } from '../errors.js';
import { newId, nowMs } from '../ids.js';
import type { UserRow } from './presenter.js';
import { emailSchema, passwordSchema, usernameSchema } from './schema.js';

export interface NewUser {
  username: string;
  password: string;
  email?: string | null;
  displayName?: string | null;
  isAdmin?: boolean;
}

/** Validates, hashes (Argon2id) and inserts a user; CONFLICT when the username is taken. */
export async function createUser(db: Db | Knex.Transaction, params: PasswordParams, input: NewUser): Promise<UserRow> {
  const problems: { path: string; message: string }[] = [];
  const u = usernameSchema.safeParse(input.username);
  if (!u.success) problems.push({ path: 'username', message: u.error.issues[0]?.message ?? 'invalid' });
  const p = passwordSchema.safeParse(input.password);
  if (!p.success) problems.push({ path: 'password', message: p.error.issues[0]?.message ?? 'invalid' });
  if (input.email) {
    const e = emailSchema.safeParse(input.email);
    if (!e.success) problems.push({ path: 'email', message: e.error.issues[0]?.message ?? 'invalid' });
  }
  if (problems.length) throw errors.validation('The user is not valid.', problems);
  const existing = await db('users').where({ username: input.username }).first('id');
  if (existing) throw errors.conflict('That username is taken.');
  const now = nowMs();
  const row = {
    id: newId(),
    username: input.username,
    email: input.email ?? null,
    display_name: input.displayName ?? null,
    password_hash: await hashPassword(input.password, params),
    is_admin: Boolean(input.isAdmin),
    created_at: now,
    updated_at: now,
    password_changed_at: now,
  };
  await db('users').insert(row);
  return row;
}
