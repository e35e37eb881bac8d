/**
 * Storage of accounts' security state: sessions (one row per refresh token, grouped by family),
 * failed-login counters and locks, MFA columns and backup codes, password-reset tokens. The only knex
 * user of the auth feature. Tokens and codes arrive here already hashed.
 */
import type { Queryable as Q } from '../db/knex.js';
import { newId, nowMs } from '../ids.js';
import type { UserRow } from '../users/presenter.js';

export interface AuthUserRow extends UserRow {
  password_hash: string;
  mfa_secret: string | null;
  mfa_pending_secret: string | null;
  mfa_last_step: number | null;
  failed_login_count: number;
  locked_until: number | null;
  disabled_at: number | null;
}

export interface SessionRow {
  id: string;
  family_id: string;
  user_id: string;
  token_hash: string;
  ip_address: string | null;
  user_agent: string | null;
  created_at: number;
  last_used_at: number | null;
  expires_at: number;
  rotated_at: number | null;
  revoked_at: number | null;
  revoked_reason: string | null;
}

export const userByName = (db: Q, username: string): Promise<AuthUserRow | undefined> =>
  db('users').where({ username }).first();

export const userById = (db: Q, id: string): Promise<AuthUserRow | undefined> => db('users').where({ id }).first();

export async function updateUser(db: Q, id: string, patch: Record<string, unknown>): Promise<void> {
  await db('users')
    .where({ id })
    .update({ ...patch, updated_at: nowMs() });
}

/** Adds one failure and returns the new count (the row lock of the update serialises concurrent failures). */
export async function incrementFailures(trx: Q, id: string): Promise<number> {
  await trx('users').where({ id }).increment('failed_login_count', 1);
  const row = await trx('users').where({ id }).first('failed_login_count');
  return Number(row?.failed_login_count ?? 0);
}

/** Records the TOTP step as used unless it (or a later one) already was: false means replay. */
export async function claimTotpStep(db: Q, userId: string, step: number): Promise<boolean> {
  const n = await db('users')
    .where({ id: userId })
    .andWhere((q) => q.whereNull('mfa_last_step').orWhere('mfa_last_step', '<', step))
    .update({ mfa_last_step: step });
  return n === 1;
}

/** Turns MFA on with the verified pending secret; false when the pending secret changed meanwhile. */
export async function enableMfa(db: Q, userId: string, pendingSecret: string, step: number, now: number) {
  const n = await db('users').where({ id: userId, mfa_enabled: false, mfa_pending_secret: pendingSecret }).update({
    mfa_enabled: true,
    mfa_secret: pendingSecret,
    mfa_pending_secret: null,
    mfa_last_step: step,
    updated_at: now,
  });
  return n === 1;
}

/** Turns MFA off: secrets, last step and backup codes go. */
export async function clearMfa(db: Q, userId: string): Promise<void> {
  await updateUser(db, userId, { mfa_enabled: false, mfa_secret: null, mfa_pending_secret: null, mfa_last_step: null });
  await db('mfa_backup_codes').where({ user_id: userId }).delete();
}

// --- sessions ---------------------------------------------------------------------------------

export async function insertSession(db: Q, row: SessionRow): Promise<void> {
  await db('sessions').insert(row);
}

/** The same insert, for a writer that commits it with its audit row (src/audit/threaded-writer.ts). */
export const sessionInsert = (row: SessionRow) => ({ table: 'sessions', row: { ...row } });

export const sessionByTokenHash = (db: Q, tokenHash: string): Promise<SessionRow | undefined> =>
  db('sessions').where({ token_hash: tokenHash }).first();

/** Whether a session family is live (not revoked, not rotated away, not expired) for this user. */
export async function isLiveSession(db: Q, familyId: string, userId: string, now: number): Promise<boolean> {
  const row = await db('sessions')
    .where({ family_id: familyId, user_id: userId })
    .whereNull('revoked_at')
    .whereNull('rotated_at')
    .where('expires_at', '>', now)
    .first('id');
  return Boolean(row);
}

/** Marks a token row used; false when it was already rotated or revoked (a concurrent refresh won). */
export async function markRotated(db: Q, id: string, now: number): Promise<boolean> {
  const n = await db('sessions')
    .where({ id })
    .whereNull('rotated_at')
    .whereNull('revoked_at')
    .update({ rotated_at: now });
  return n === 1;
}

/** The live token row of every session family of a user. */
export const liveSessions = (db: Q, userId: string, now: number): Promise<SessionRow[]> =>
  db('sessions')
    .where({ user_id: userId })
    .whereNull('rotated_at')
    .whereNull('revoked_at')
    .where('expires_at', '>', now)
    .orderBy('created_at', 'desc');

/**
 * Revokes session families of a user: the given ids, or all of them (optionally but one).
 * Returns the number of token rows revoked.
 */
export async function revokeFamilies(
  db: Q,
  userId: string,
  families: string[] | 'all',
  reason: string,
  now: number,
  exceptFamily?: string,
): Promise<number> {
  let q = db('sessions').where({ user_id: userId }).whereNull('revoked_at');
  if (families !== 'all') q = q.whereIn('family_id', families);
  if (exceptFamily) q = q.whereNot('family_id', exceptFamily);
  return q.update({ revoked_at: now, revoked_reason: reason });
}

// --- MFA backup codes ------------------------------------------------------------------------------

export async function replaceBackupCodes(trx: Q, userId: string, hashes: string[], now: number) {
  await trx('mfa_backup_codes').where({ user_id: userId }).delete();
  await trx('mfa_backup_codes').insert(
    hashes.map((code_hash) => ({ id: newId(), user_id: userId, code_hash, created_at: now })),
  );
}

/** Uses a backup code once: false when unknown or already used. */
export async function useBackupCode(db: Q, userId: string, codeHash: string, now: number): Promise<boolean> {
  const n = await db('mfa_backup_codes')
    .where({ user_id: userId, code_hash: codeHash })
    .whereNull('used_at')
    .update({ used_at: now });
  return n === 1;
}

// --- password reset tokens ---------------------------------------------------------------------

export async function insertResetToken(
  db: Q,
  row: { id: string; user_id: string; token_hash: string; created_at: number; expires_at: number },
): Promise<void> {
  await db('password_reset_tokens').insert(row);
}

export const usableResetToken = (db: Q, tokenHash: string, now: number) =>
  db('password_reset_tokens')
    .where({ token_hash: tokenHash })
    .whereNull('used_at')
    .where('expires_at', '>', now)
    .first<{ id: string; user_id: string } | undefined>('id', 'user_id');

export async function claimResetToken(db: Q, id: string, now: number): Promise<boolean> {
  const n = await db('password_reset_tokens').where({ id }).whereNull('used_at').update({ used_at: now });
  return n === 1;
}

/** Voids every outstanding reset token of a user (a new one was issued, or the password changed). */
export async function voidResetTokens(db: Q, userId: string, now: number): Promise<void> {
  await db('password_reset_tokens').where({ user_id: userId }).whereNull('used_at').update({ used_at: now });
}
