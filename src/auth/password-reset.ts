/**
 * Password reset: forgot-password (always 202; the work happens after the answer so neither body nor
 * timing tells whether the account exists), one-time reset tokens (32 random bytes, stored as SHA-256,
 * 1 hour), delivered by SMTP when configured or issued by the admin's CLI, and the reset itself, which
 * revokes every session. MFA stays on: the next login still needs a code.
 */
import { recordAudit } from '../audit/writer.js';
import { hashPassword } from '../crypto/passwords.js';
import { hashToken, randomToken } from '../crypto/random.js';
import { type Db, type Queryable, withTransaction } from '../db/knex.js';
import { errors } from '../errors.js';
import { newId, nowMs } from '../ids.js';
import { ipKey } from '../ratelimit/index.js';
import { RESET_TOKEN_TTL_SECONDS } from './policy.js';
import * as repo from './repo.js';
import type { ResetPasswordBody } from './schema.js';
import { type AuthDeps, publishSessionsRevoked, type RequestMeta } from './service.js';

/** The link printed or mailed with a token; the token rides in the fragment so no server logs it. */
export const resetLink = (publicUrl: string | undefined, token: string): string | undefined =>
  publicUrl ? `${publicUrl.replace(/\/+$/, '')}/reset-password#token=${token}` : undefined;

/** Creates a reset token for a user (voiding earlier ones) and audits it under `action`. */
export async function issuePasswordResetToken(
  db: Queryable,
  userId: string,
  audit: { action: string; ip?: string | null; metadata?: Record<string, unknown> },
): Promise<{ token: string; expiresAt: number }> {
  const token = randomToken(32);
  const now = nowMs();
  const expiresAt = now + RESET_TOKEN_TTL_SECONDS * 1000;
  await withTransaction(db, async (trx) => {
    await repo.voidResetTokens(trx, userId, now);
    await repo.insertResetToken(trx, {
      id: newId(),
      user_id: userId,
      token_hash: hashToken(token),
      created_at: now,
      expires_at: expiresAt,
    });
    await recordAudit(trx, {
      action: audit.action,
      userId,
      resourceType: 'user',
      resourceId: userId,
      ip: audit.ip ?? null,
      metadata: audit.metadata ?? {},
    });
  });
  return { token, expiresAt };
}

/**
 * POST /auth/forgot-password. Rate limits are checked before answering (they are per IP and per
 * submitted name, so they tell nothing); the rest runs after the 202. Returns the background work so
 * callers may await it (tests), never its outcome.
 */
export async function requestPasswordReset(
  deps: AuthDeps,
  username: string,
  meta: RequestMeta,
): Promise<{ background: Promise<void> }> {
  await deps.limits.consume('password_reset_ip', ipKey(meta.ip));
  await deps.limits.consume('password_reset_account', username.toLowerCase());
  const background = sendResetIfPossible(deps, username, meta).catch((err) => {
    deps.logger.error({ err }, 'password reset request failed');
  });
  return { background };
}

async function sendResetIfPossible(deps: AuthDeps, username: string, meta: RequestMeta): Promise<void> {
  await new Promise((r) => setImmediate(r));
  const user = await repo.userByName(deps.db, username);
  if (!user || user.disabled_at) return;
  const mailer = deps.mailer;
  if (!mailer || !user.email) {
    deps.logger.warn(
      { user_id: user.id, smtp: Boolean(mailer), email: Boolean(user.email) },
      mailer
        ? 'password reset requested for a user without an email address; an admin can run `voicechat users reset-password`'
        : 'password reset requested but SMTP is not configured (VOICECHAT_SMTP_URL); an admin can run `voicechat users reset-password`',
    );
    await recordAudit(deps.db, {
      action: 'password.reset_request',
      userId: user.id,
      resourceType: 'user',
      resourceId: user.id,
      ip: meta.ip,
      metadata: { delivery: 'none', reason: mailer ? 'no_email' : 'smtp_not_configured' },
    });
    return;
  }
  const { token } = await issuePasswordResetToken(deps.db, user.id, {
    action: 'password.reset_request',
    ip: meta.ip,
    metadata: { delivery: 'email' },
  });
  const link = resetLink(deps.config.publicUrl, token);
  await mailer.send({
    to: user.email,
    subject: 'Reset your VoiceChat password',
    text: [
      `Someone asked to reset the password of the VoiceChat account "${user.username}".`,
      'If it was you, use this one-time token within an hour:',
      '',
      link ?? token,
      '',
      'If it was not you, ignore this message; your password has not changed.',
    ].join('\n'),
  });
  deps.logger.info({ user_id: user.id }, 'password reset mail sent');
}

/** POST /auth/reset-password: single use; revokes every session of the user. */
export async function resetPassword(deps: AuthDeps, input: ResetPasswordBody, meta: RequestMeta): Promise<void> {
  await deps.limits.consume('password_reset_ip', ipKey(meta.ip));
  const invalid = () =>
    errors.validation('The reset token is not valid or has expired.', [{ path: 'token', message: 'is not valid' }]);
  const found = await repo.usableResetToken(deps.db, hashToken(input.token), nowMs());
  if (!found) throw invalid();
  const user = await repo.userById(deps.db, found.user_id);
  if (!user) throw invalid();
  await deps.limits.consume('password_reset_submit_account', user.username.toLowerCase());
  const hash = await hashPassword(input.new_password, deps.config);
  const now = nowMs();
  const ok = await deps.db.transaction(async (trx) => {
    if (!(await repo.claimResetToken(trx, found.id, now))) return false;
    // The lock guarded the old password against guessing; the owner proved control another way.
    await repo.updateUser(trx, user.id, {
      password_hash: hash,
      password_changed_at: now,
      failed_login_count: 0,
      locked_until: null,
    });
    await repo.voidResetTokens(trx, user.id, now);
    const n = await repo.revokeFamilies(trx, user.id, 'all', 'password_reset', now);
    await recordAudit(trx, {
      action: 'password.reset',
      userId: user.id,
      resourceType: 'user',
      resourceId: user.id,
      ip: meta.ip,
      metadata: { revoked_tokens: n },
    });
    return true;
  });
  if (!ok) throw invalid();
  publishSessionsRevoked(deps, user.id, 'all');
}

/** `voicechat users reset-password NAME`: a one-time token (and link when the public URL is known). */
export async function adminIssueResetToken(db: Db, username: string, publicUrl: string | undefined) {
  const user = await repo.userByName(db, username);
  if (!user) throw errors.notFound(`No user named "${username}".`);
  const { token, expiresAt } = await issuePasswordResetToken(db, user.id, {
    action: 'admin.password_reset',
    metadata: { via: 'cli' },
  });
  return { user, token, link: resetLink(publicUrl, token), expiresAt };
}
