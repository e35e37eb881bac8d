/**
 * User verbs shared by registration, `init` and `voicechat users`: creating users and the admin's
 * everyday actions (list, unlock, set admin; disabling MFA is auth's). Every admin verb writes an `admin.*` audit
 * row in the same transaction as its change.
 */
import { recordAudit } from '../audit/writer.js';
import { hashPassword, type PasswordParams } from '../crypto/passwords.js';
import type { Db, Queryable } from '../db/knex.js';
import { errors } from '../errors.js';
import { newId, nowMs } from '../ids.js';
import type { UserRow } from './presenter.js';
import * as repo from './repo.js';
import { emailSchema, passwordSchema, usernameSchema } from './schema.js';

export interface NewUser {
  username: string;
  password: string;
  email?: string | null;
  displayName?: string | null;
  isAdmin?: boolean;
}

/** Validates the fields and hashes the password (no database access, so it can run before a transaction). */
export async function prepareUser(
  params: PasswordParams,
  input: NewUser,
): Promise<UserRow & { password_hash: string }> {
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
  const now = nowMs();
  return {
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
}

/** Inserts a prepared user; CONFLICT when the username is taken. */
export async function insertUser(db: Queryable, row: UserRow): Promise<UserRow> {
  if (await repo.findByUsername(db, row.username)) throw errors.conflict('That username is taken.');
  await repo.insert(db, row);
  return row;
}

/** Validates, hashes (Argon2id) and inserts a user; CONFLICT when the username is taken. */
export async function createUser(db: Queryable, params: PasswordParams, input: NewUser): Promise<UserRow> {
  return insertUser(db, await prepareUser(params, input));
}

/** Looks a user up by name for the CLI; NOT_FOUND names the user (the admin typed it). */
export async function requireUserByName(db: Queryable, username: string): Promise<UserRow> {
  const user = await repo.findByUsername(db, username);
  if (!user) throw errors.notFound(`No user named "${username}".`);
  return user;
}

export interface UserListing {
  id: string;
  username: string;
  display_name: string | null;
  email: string | null;
  is_admin: boolean;
  mfa_enabled: boolean;
  locked_until: string | null;
  disabled: boolean;
  created_at: string | null;
}

/** `voicechat users list`: audited (admin.users_list), since it discloses every account. */
export async function adminListUsers(db: Db): Promise<UserListing[]> {
  const users = await listUsers(db);
  await recordAudit(db, { action: 'admin.users_list', metadata: { via: 'cli', count: users.length } });
  return users;
}

export async function listUsers(db: Db): Promise<UserListing[]> {
  const now = nowMs();
  return (await repo.listAll(db)).map((u) => ({
    id: u.id,
    username: u.username,
    display_name: u.display_name ?? null,
    email: u.email ?? null,
    is_admin: Boolean(u.is_admin),
    mfa_enabled: Boolean(u.mfa_enabled),
    locked_until:
      u.locked_until && Number(u.locked_until) > now ? new Date(Number(u.locked_until)).toISOString() : null,
    disabled: Boolean(u.disabled_at),
    created_at: new Date(Number(u.created_at)).toISOString(),
  }));
}

/** `voicechat users create`: audited as admin.user_create. */
export async function adminCreateUser(db: Db, params: PasswordParams, input: NewUser): Promise<UserRow> {
  const row = await prepareUser(params, input);
  return db.transaction(async (trx) => {
    await insertUser(trx, row);
    await recordAudit(trx, {
      action: 'admin.user_create',
      userId: row.id,
      resourceType: 'user',
      resourceId: row.id,
      metadata: { username: row.username, is_admin: Boolean(row.is_admin), via: 'cli' },
    });
    return row;
  });
}

/** Clears the lockout and the failure counter. */
export async function unlockUser(db: Db, username: string): Promise<UserRow> {
  return db.transaction(async (trx) => {
    const user = await requireUserByName(trx, username);
    await repo.update(trx, user.id, { failed_login_count: 0, locked_until: null });
    await recordAudit(trx, {
      action: 'admin.unlock',
      userId: user.id,
      resourceType: 'user',
      resourceId: user.id,
      metadata: { via: 'cli' },
    });
    return user;
  });
}

export async function setAdmin(db: Db, username: string, isAdmin: boolean): Promise<UserRow> {
  return db.transaction(async (trx) => {
    const user = await requireUserByName(trx, username);
    await repo.update(trx, user.id, { is_admin: isAdmin });
    await recordAudit(trx, {
      action: 'admin.set_admin',
      userId: user.id,
      resourceType: 'user',
      resourceId: user.id,
      metadata: { via: 'cli', is_admin: isAdmin },
    });
    return { ...user, is_admin: isAdmin };
  });
}
