/**
 * Account verbs: register, login (with lockout and the second factor), refresh rotation with reuse
 * detection, logout, session listing and revocation, profile and password change. Every change is
 * audited in its own transaction; `sessions_revoked` is published on the bus after the commit so the
 * gateway and every node's session cache drop the revoked sessions at once.
 */
import type { AuditedWriter } from '../audit/threaded-writer.js';
import { recordAudit } from '../audit/writer.js';
import type { Config } from '../config/index.js';
import type { Keyring } from '../crypto/keyring.js';
import { type DummyPassword, hashPassword, needsRehash, verifyPassword } from '../crypto/passwords.js';
import { hashToken, randomToken } from '../crypto/random.js';
import type { Db, Queryable } from '../db/knex.js';
import { errors } from '../errors.js';
import type { EventHub } from '../events/hub.js';
import { announceJoin } from '../guilds/service.js';
import { newId, nowMs } from '../ids.js';
import type { Logger } from '../logger.js';
import { ipKey, type RateLimits } from '../ratelimit/index.js';
import { presentSelf } from '../users/presenter.js';
import { insertUser, prepareUser } from '../users/service.js';
import type { Mailer } from './mailer.js';
import { LOCKOUT_THRESHOLD, lockoutMs, truncateUserAgent } from './policy.js';
import { presentSession, type TokenPair } from './presenter.js';
import { redeemInviteForRegistration } from './registration-invite.js';
import * as repo from './repo.js';
import type { ChangePasswordBody, LoginBody, RegisterBody, UpdateMeBody } from './schema.js';
import { checkSecondFactor } from './second-factor.js';
import type { AuthInfo } from './session-guard.js';
import { signAccessToken } from './tokens.js';

const NO_SUCH_USER_ID = '00000000-0000-0000-0000-000000000000';

export interface AuthDeps {
  db: Db;
  config: Config;
  keyring: Keyring;
  events: EventHub;
  limits: RateLimits;
  logger: Logger;
  /** What unknown usernames are verified against (same Argon2 work as a real account). */
  dummyPassword: DummyPassword;
  /** SMTP for reset mail; undefined when VOICECHAT_SMTP_URL is not set. */
  mailer: Mailer | undefined;
  /** Commits a login's session row with its audit row (off the event loop on SQLite). */
  auditedWriter: AuditedWriter;
}

/** Where a request came from: recorded on sessions and audit rows. */
export interface RequestMeta {
  ip: string;
  userAgent?: string | undefined;
}

// --- sessions ------------------------------------------------------------------------------------

/**
 * Mints a refresh token and stores its hash as a new row: a new family (login) or the next row of an
 * existing family (refresh, which keeps the family's creation time).
 */
async function issueTokens(
  deps: AuthDeps,
  trx: Queryable,
  userId: string,
  meta: RequestMeta,
  family?: { id: string; createdAt: number },
): Promise<{ tokens: TokenPair; familyId: string }> {
  const { row, ...issued } = newSession(deps, userId, meta, family);
  await repo.insertSession(trx, row);
  return issued;
}

/** A session row (not yet stored) and the tokens that go with it. */
function newSession(
  deps: AuthDeps,
  userId: string,
  meta: RequestMeta,
  family?: { id: string; createdAt: number },
): { row: repo.SessionRow; tokens: TokenPair; familyId: string } {
  const now = nowMs();
  const refreshToken = randomToken(32);
  const id = newId();
  const familyId = family?.id ?? id;
  const row: repo.SessionRow = {
    id,
    family_id: familyId,
    user_id: userId,
    token_hash: hashToken(refreshToken),
    ip_address: meta.ip,
    user_agent: truncateUserAgent(meta.userAgent),
    created_at: family?.createdAt ?? now,
    last_used_at: now,
    expires_at: now + deps.config.refreshTokenTtlSeconds * 1000,
    rotated_at: null,
    revoked_at: null,
    revoked_reason: null,
  };
  const ttl = deps.config.accessTokenTtlSeconds;
  return {
    row,
    familyId,
    tokens: {
      access_token: signAccessToken(deps.keyring, { userId, sessionId: familyId }, ttl),
      refresh_token: refreshToken,
      expires_in: ttl,
    },
  };
}

/** After the revoking transaction committed: every node drops the sessions and closes their sockets. */
export function publishSessionsRevoked(
  deps: Pick<AuthDeps, 'events'>,
  userId: string,
  sessionIds: string[] | 'all',
  exceptSessionId?: string,
): void {
  deps.events.outbox().sessionsRevoked(userId, sessionIds, exceptSessionId).flush();
}

// --- register ------------------------------------------------------------------------------------

export type RegisterInput = RegisterBody;

export async function register(deps: AuthDeps, input: RegisterInput, meta: RequestMeta) {
  await deps.limits.consume('register_ip', ipKey(meta.ip));
  const policy = deps.config.registration;
  if (policy === 'closed') throw errors.forbidden('Registration is closed on this server.');
  if (policy === 'invite' && !input.invite_code) {
    throw errors.validation('An invite code is required to register.', [
      { path: 'invite_code', message: 'is required' },
    ]);
  }
  // Hash before the transaction: Argon2 must not hold the (SQLite: only) connection.
  const row = await prepareUser(deps.config, {
    username: input.username,
    password: input.password,
    email: input.email ?? null,
    displayName: input.display_name ?? null,
  });
  const now = nowMs();
  const result = await deps.db.transaction(async (trx) => {
    await insertUser(trx, row);
    const joined = input.invite_code
      ? await redeemInviteForRegistration(trx, input.invite_code, row.id, now)
      : undefined;
    const issued = await issueTokens(deps, trx, row.id, meta);
    await recordAudit(trx, {
      action: 'user.register',
      userId: row.id,
      resourceType: 'user',
      resourceId: row.id,
      ip: meta.ip,
      metadata: { session_id: issued.familyId, ...(joined ? { guild_id: joined.guildId } : {}) },
    });
    return { ...issued, guildId: joined?.guildId, joined: joined?.joined };
  });
  if (result.joined) announceJoin(deps.events, result.joined.guild_id, row.id, result.joined);
  return { user: presentSelf(row), ...result.tokens };
}

// --- login ---------------------------------------------------------------------------------------

export type LoginInput = LoginBody;

/**
 * Counts a failed login against the IP (block after 10 in 5 min) and the account (lock after 10 in a
 * row), audited with the reason, never the secret.
 */
async function recordLoginFailure(
  deps: AuthDeps,
  user: repo.AuthUserRow | undefined,
  meta: RequestMeta,
  reason: string,
  attemptedName = '',
): Promise<void> {
  await deps.limits.penalize('login_failures_ip', ipKey(meta.ip));
  if (!user && reason === 'unknown_user')
    await deps.limits.penalize('login_unknown_account', unknownKey(attemptedName));
  await deps.db.transaction(async (trx) => {
    await recordAudit(trx, {
      action: 'auth.login_failed',
      userId: user?.id ?? null,
      resourceType: 'user',
      resourceId: user?.id ?? null,
      ip: meta.ip,
      metadata: { reason },
    });
    if (reason === 'account_locked') return;
    // An unknown user runs the same statements against an id that matches nothing, so both kinds of
    // failure cost the same round trips (timing must not tell them apart).
    const failures = await repo.incrementFailures(trx, user?.id ?? NO_SUCH_USER_ID);
    if (user && failures >= LOCKOUT_THRESHOLD) {
      const until = nowMs() + lockoutMs(deps.config);
      await repo.updateUser(trx, user.id, { locked_until: until, failed_login_count: 0 });
      await recordAudit(trx, {
        action: 'auth.locked',
        userId: user.id,
        resourceType: 'user',
        resourceId: user.id,
        ip: meta.ip,
        metadata: { failures, locked_until: new Date(until).toISOString() },
      });
    }
  });
}

/** Limiter key for a login name that matches no account. */
const unknownKey = (name: string): string => name.toLowerCase().slice(0, 64);

export async function login(deps: AuthDeps, input: LoginInput, meta: RequestMeta) {
  const ip = ipKey(meta.ip);
  await deps.limits.consume('login_ip', ip);
  const blocked = await deps.limits.retryAfter('login_failures_ip', ip);
  if (blocked > 0) throw errors.rateLimited(blocked);

  const user = await repo.userByName(deps.db, input.username);
  const now = nowMs();
  // Names that do not exist lock like real accounts do, so the 403 tells nothing about existence.
  const unknownLock = user ? 0 : await deps.limits.retryAfter('login_unknown_account', unknownKey(input.username));
  if (unknownLock > 0) {
    await recordLoginFailure(deps, undefined, meta, 'account_locked', input.username);
    throw errors.accountLocked(unknownLock);
  }
  if (user?.locked_until && Number(user.locked_until) > now) {
    // A correct password does not bypass the lock, so the password is not even checked.
    await recordLoginFailure(deps, user, meta, 'account_locked');
    throw errors.accountLocked(Math.ceil((Number(user.locked_until) - now) / 1000));
  }
  // Unknown users cost the same Argon2 work and get the same answer as a wrong password.
  const passwordOk = user
    ? await verifyPassword(user.password_hash, input.password)
    : await deps.dummyPassword.verify(input.password);
  if (!user || !passwordOk || user.disabled_at) {
    await recordLoginFailure(
      deps,
      user,
      meta,
      !user ? 'unknown_user' : !passwordOk ? 'bad_password' : 'disabled',
      input.username,
    );
    throw errors.invalidCredentials();
  }

  let factor: string | undefined;
  if (user.mfa_enabled) {
    if (!input.mfa_code) throw errors.mfaRequired();
    factor = (await checkSecondFactor(deps, user, input.mfa_code)) ?? undefined;
    if (!factor) {
      await recordLoginFailure(deps, user, meta, 'bad_mfa_code');
      throw errors.invalidMfaCode();
    }
  }

  const rehash = needsRehash(user.password_hash, deps.config)
    ? await hashPassword(input.password, deps.config)
    : undefined;
  const loginAudit = (familyId: string) => ({
    action: 'auth.login',
    userId: user.id,
    resourceType: 'session',
    resourceId: familyId,
    ip: meta.ip,
    metadata: { mfa: factor ?? null, ...(rehash ? { password_rehashed: true } : {}) },
  });
  if (!rehash && Number(user.failed_login_count) === 0 && user.locked_until === null) {
    // The common login writes a session and its audit row only: one group-committed write, whose
    // fsync (SQLite) happens on the writer's thread instead of the event loop.
    const { row, ...issued } = newSession(deps, user.id, meta);
    await deps.auditedWriter.commit({ inserts: [repo.sessionInsert(row)], audit: loginAudit(issued.familyId) });
    return { user: presentSelf(user), ...issued.tokens };
  }
  const issued = await deps.db.transaction(async (trx) => {
    // A counter to reset or a hash to upgrade: the user row changes in the same transaction.
    await repo.updateUser(trx, user.id, {
      failed_login_count: 0,
      locked_until: null,
      ...(rehash ? { password_hash: rehash } : {}),
    });
    const out = await issueTokens(deps, trx, user.id, meta);
    await recordAudit(trx, loginAudit(out.familyId));
    return out;
  });
  return { user: presentSelf(user), ...issued.tokens };
}

// --- refresh -------------------------------------------------------------------------------------

/** Rotates a refresh token. A token that was already rotated is a theft signal: its family dies. */
export async function refresh(deps: AuthDeps, refreshToken: string, meta: RequestMeta): Promise<TokenPair> {
  const now = nowMs();
  const outcome = await deps.db.transaction(
    async (
      trx,
    ): Promise<{ kind: 'ok'; tokens: TokenPair } | { kind: 'invalid' } | { kind: 'reused'; row: repo.SessionRow }> => {
      const row = await repo.sessionByTokenHash(trx, hashToken(refreshToken));
      if (!row) return { kind: 'invalid' };
      const reuse = async () => {
        await repo.revokeFamilies(trx, row.user_id, [row.family_id], 'token_reused', now);
        await recordAudit(trx, {
          action: 'auth.token_reused',
          userId: row.user_id,
          resourceType: 'session',
          resourceId: row.family_id,
          ip: meta.ip,
          metadata: {},
        });
        return { kind: 'reused' as const, row };
      };
      if (row.rotated_at) return reuse();
      if (row.revoked_at || Number(row.expires_at) <= now) return { kind: 'invalid' };
      const user = await repo.userById(trx, row.user_id);
      if (!user || user.disabled_at) return { kind: 'invalid' };
      // A concurrent refresh with the same token may have won: that is reuse too.
      if (!(await repo.markRotated(trx, row.id, now))) return reuse();
      const issued = await issueTokens(deps, trx, row.user_id, meta, {
        id: row.family_id,
        createdAt: Number(row.created_at),
      });
      await recordAudit(trx, {
        action: 'auth.refresh',
        userId: row.user_id,
        resourceType: 'session',
        resourceId: row.family_id,
        ip: meta.ip,
        metadata: {},
      });
      return { kind: 'ok', tokens: issued.tokens };
    },
  );
  if (outcome.kind === 'ok') return outcome.tokens;
  if (outcome.kind === 'reused') {
    publishSessionsRevoked(deps, outcome.row.user_id, [outcome.row.family_id]);
    deps.logger.warn({ user_id: outcome.row.user_id, session_id: outcome.row.family_id }, 'refresh token reused');
    throw errors.tokenReused();
  }
  throw errors.unauthenticated('The refresh token is not valid.');
}

// --- logout and sessions -------------------------------------------------------------------------

/**
 * Ends the caller's session. With a refresh token (of the same user) its family ends too, so a client
 * whose access token expired can still log out with the refresh token alone.
 */
export async function logout(
  deps: AuthDeps,
  who: { auth?: AuthInfo | undefined; refreshToken?: string | undefined },
  meta: RequestMeta,
): Promise<void> {
  const now = nowMs();
  const byToken = who.refreshToken ? await repo.sessionByTokenHash(deps.db, hashToken(who.refreshToken)) : undefined;
  const userId = who.auth?.userId ?? byToken?.user_id;
  if (!userId) throw errors.unauthenticated();
  const families = new Set<string>();
  if (who.auth) families.add(who.auth.sessionId);
  if (byToken && byToken.user_id === userId && !byToken.rotated_at && !byToken.revoked_at)
    families.add(byToken.family_id);
  if (families.size === 0) throw errors.unauthenticated('The refresh token is not valid.');
  await deps.db.transaction(async (trx) => {
    await repo.revokeFamilies(trx, userId, [...families], 'logout', now);
    await recordAudit(trx, {
      action: 'auth.logout',
      userId,
      resourceType: 'session',
      resourceId: [...families][0],
      ip: meta.ip,
      metadata: { session_ids: [...families] },
    });
  });
  publishSessionsRevoked(deps, userId, [...families]);
}

export async function listSessions(deps: AuthDeps, auth: AuthInfo) {
  const rows = await repo.liveSessions(deps.db, auth.userId, nowMs());
  return rows.map((r) => presentSession(r, auth.sessionId));
}

/** DELETE /auth/sessions: every session of the caller, this one included. */
export async function logoutAll(deps: AuthDeps, auth: AuthInfo, meta: RequestMeta): Promise<void> {
  await deps.db.transaction(async (trx) => {
    const n = await repo.revokeFamilies(trx, auth.userId, 'all', 'logout_all', nowMs());
    await recordAudit(trx, {
      action: 'auth.logout_all',
      userId: auth.userId,
      resourceType: 'user',
      resourceId: auth.userId,
      ip: meta.ip,
      metadata: { revoked_tokens: n },
    });
  });
  publishSessionsRevoked(deps, auth.userId, 'all');
}

/** DELETE /auth/sessions/:id — one of the caller's own sessions; anyone else's is NOT_FOUND. */
export async function logoutSession(deps: AuthDeps, auth: AuthInfo, familyId: string, meta: RequestMeta) {
  const now = nowMs();
  const found = await deps.db.transaction(async (trx) => {
    const live = (await repo.liveSessions(trx, auth.userId, now)).some((s) => s.family_id === familyId);
    if (!live) return false;
    await repo.revokeFamilies(trx, auth.userId, [familyId], 'logout', now);
    await recordAudit(trx, {
      action: 'auth.logout',
      userId: auth.userId,
      resourceType: 'session',
      resourceId: familyId,
      ip: meta.ip,
      metadata: { session_ids: [familyId], current: familyId === auth.sessionId },
    });
    return true;
  });
  if (!found) throw errors.notFound('No such session.');
  publishSessionsRevoked(deps, auth.userId, [familyId]);
}

// --- profile and password ------------------------------------------------------------------------

async function requireUser(db: Queryable, userId: string): Promise<repo.AuthUserRow> {
  const user = await repo.userById(db, userId);
  if (!user) throw errors.unauthenticated();
  return user;
}

export async function getMe(deps: AuthDeps, auth: AuthInfo) {
  return presentSelf(await requireUser(deps.db, auth.userId));
}

/**
 * PATCH /auth/me. An email change re-authenticates (password, and a second factor when MFA is on):
 * reset links go to that address, so a stolen access token alone must not be able to redirect them.
 * The old address, if any, is told once the change is committed.
 */
export async function updateMe(deps: AuthDeps, auth: AuthInfo, patch: UpdateMeBody, meta: RequestMeta) {
  const changes: Record<string, unknown> = {};
  if (patch.display_name !== undefined) changes.display_name = patch.display_name;
  if (patch.email !== undefined) {
    const user = await requireUser(deps.db, auth.userId);
    // Sending the unchanged address back (a form that posts every field) is no change.
    if ((user.email ?? null) !== patch.email) {
      await confirmIdentity(deps, user, patch.current_password, patch.mfa_code);
      changes.email = patch.email;
    }
  }
  if (Object.keys(changes).length === 0) return getMe(deps, auth);
  const oldEmail = await deps.db.transaction(async (trx) => {
    const before = await requireUser(trx, auth.userId);
    await repo.updateUser(trx, auth.userId, changes);
    const emailChanged = 'email' in changes && (before.email ?? null) !== changes.email;
    // Reset links go to the email address: one mailed to the old address must not outlive it.
    if (emailChanged) await repo.voidResetTokens(trx, auth.userId, nowMs());
    await recordAudit(trx, {
      action: 'user.update',
      userId: auth.userId,
      resourceType: 'user',
      resourceId: auth.userId,
      ip: meta.ip,
      metadata: { fields: Object.keys(changes).sort(), email_changed: emailChanged },
    });
    return emailChanged ? before.email : null;
  });
  const me = await getMe(deps, auth);
  if (oldEmail) notifyEmailChanged(deps, { id: auth.userId, username: me.username }, oldEmail);
  return me;
}

/**
 * Re-authentication before a change that could take the account (the email): the password, then a
 * TOTP or backup code when MFA is on. Attempts count against the per-user confirmation limit.
 */
async function confirmIdentity(
  deps: AuthDeps,
  user: repo.AuthUserRow,
  password: string | undefined,
  mfaCode: string | undefined,
): Promise<void> {
  if (password === undefined) {
    throw errors.validation('Changing the email needs the current password.', [
      { path: 'current_password', message: 'is required to change the email' },
    ]);
  }
  await confirmPassword(deps, user, password);
  if (!user.mfa_enabled) return;
  if (!mfaCode) throw errors.mfaRequired();
  if (!(await checkSecondFactor(deps, user, mfaCode))) throw errors.invalidMfaCode();
}

/** Tells the previous address that the account's email changed; never blocks or fails the change. */
function notifyEmailChanged(deps: AuthDeps, user: { id: string; username: string }, oldEmail: string): void {
  const mailer = deps.mailer;
  if (!mailer) return;
  mailer
    .send({
      to: oldEmail,
      subject: 'The email address of your VoiceChat account was changed',
      text: [
        `The email address of the VoiceChat account "${user.username}" was changed; password reset links now go to the new address.`,
        '',
        'If it was you, nothing needs doing.',
        "If it was not you, someone knows your password: contact your server's administrator.",
      ].join('\n'),
    })
    .then(
      () => deps.logger.info({ user_id: user.id }, 'email change notice sent'),
      (err: unknown) => deps.logger.error({ err, user_id: user.id }, 'email change notice could not be sent'),
    );
}

/** Re-checks the caller's password before a sensitive change; limited per user against guessing. */
export async function confirmPassword(deps: AuthDeps, user: repo.AuthUserRow, password: string): Promise<void> {
  await deps.limits.consume('password_confirm_user', user.id);
  if (!(await verifyPassword(user.password_hash, password))) throw errors.invalidCredentials();
}

/** POST /auth/me/password: every other session of the user is revoked. */
export async function changePassword(
  deps: AuthDeps,
  auth: AuthInfo,
  input: ChangePasswordBody,
  meta: RequestMeta,
): Promise<void> {
  const user = await requireUser(deps.db, auth.userId);
  await confirmPassword(deps, user, input.current_password);
  const hash = await hashPassword(input.new_password, deps.config);
  const now = nowMs();
  await deps.db.transaction(async (trx) => {
    await repo.updateUser(trx, user.id, { password_hash: hash, password_changed_at: now });
    await repo.voidResetTokens(trx, user.id, now);
    const n = await repo.revokeFamilies(trx, user.id, 'all', 'password_change', now, auth.sessionId);
    await recordAudit(trx, {
      action: 'password.change',
      userId: user.id,
      resourceType: 'user',
      resourceId: user.id,
      ip: meta.ip,
      metadata: { revoked_tokens: n },
    });
  });
  publishSessionsRevoked(deps, user.id, 'all', auth.sessionId);
}
