/**
 * TOTP two-factor authentication: setup (pending secret) → verify (enabled, 10 backup codes) →
 * disable / regenerate codes, and the admin's way out for a user who lost both factors. Secrets exist
 * at rest only as keyring `mfa` ciphertext bound to the user id, so a ciphertext copied to another row
 * does not decrypt. Each TOTP time step is accepted once (users.mfa_last_step); backup codes are
 * stored as SHA-256 and used once.
 */
import { randomBytes } from 'node:crypto';
import { recordActorAudit, recordAudit } from '../audit/writer.js';
import type { Db, Queryable } from '../db/knex.js';
import { errors } from '../errors.js';
import { nowMs } from '../ids.js';
import type { UserRow } from '../users/presenter.js';
import { requireUserByName } from '../users/service.js';
import { BACKUP_CODE_COUNT } from './policy.js';
import * as repo from './repo.js';
import { checkSecondFactor, hashBackupCode, mfaAad } from './second-factor.js';
import type { AuthDeps, RequestMeta } from './service.js';
import { confirmPassword } from './service.js';
import type { AuthInfo } from './session-guard.js';
import { matchTotpStep, newTotpSecret, otpauthUri } from './totp.js';

/** Backup codes: 64 random bits shown as `xxxx-xxxx-xxxx-xxxx` (hex). */
function newBackupCodes(): string[] {
  return Array.from({ length: BACKUP_CODE_COUNT }, () =>
    (randomBytes(8).toString('hex').match(/.{4}/g) as string[]).join('-'),
  );
}

async function loadUser(deps: AuthDeps, userId: string): Promise<repo.AuthUserRow> {
  const user = await repo.userById(deps.db, userId);
  if (!user) throw errors.unauthenticated();
  return user;
}

/** POST /auth/mfa/setup: a new pending secret (replacing any earlier pending one). */
export async function setupMfa(deps: AuthDeps, auth: AuthInfo, password: string) {
  const user = await loadUser(deps, auth.userId);
  if (user.mfa_enabled) throw errors.conflict('Two-factor authentication is already enabled.');
  await confirmPassword(deps, user, password);
  const secret = newTotpSecret();
  await repo.updateUser(deps.db, user.id, { mfa_pending_secret: deps.keyring.seal('mfa', secret, mfaAad(user.id)) });
  return { secret, otpauth_uri: otpauthUri(user.username, secret) };
}

/** POST /auth/mfa/verify: the first code from the authenticator turns MFA on. */
export async function verifyMfa(deps: AuthDeps, auth: AuthInfo, code: string, meta: RequestMeta) {
  const user = await loadUser(deps, auth.userId);
  if (user.mfa_enabled) throw errors.conflict('Two-factor authentication is already enabled.');
  const pending = user.mfa_pending_secret;
  if (!pending) throw errors.conflict('Start two-factor setup first.');
  const secret = deps.keyring.open('mfa', pending, mfaAad(user.id)).toString('utf8');
  const step = matchTotpStep(code.replace(/\s/g, ''), secret);
  if (step === null) throw errors.invalidMfaCode();
  const codes = newBackupCodes();
  const now = nowMs();
  const enabled = await deps.db.transaction(async (trx) => {
    // Guarded on the pending secret, so two racing verifications enable it once.
    if (!(await repo.enableMfa(trx, user.id, pending, step, now))) return false;
    await repo.replaceBackupCodes(trx, user.id, codes.map(hashBackupCode), now);
    await recordAudit(trx, {
      action: 'mfa.enable',
      userId: user.id,
      resourceType: 'user',
      resourceId: user.id,
      ip: meta.ip,
      metadata: {},
    });
    return true;
  });
  if (!enabled) throw errors.conflict('Two-factor setup changed; start again.');
  return { backup_codes: codes };
}

async function confirmBoth(deps: AuthDeps, auth: AuthInfo, password: string, code: string) {
  const user = await loadUser(deps, auth.userId);
  if (!user.mfa_enabled) throw errors.conflict('Two-factor authentication is not enabled.');
  await confirmPassword(deps, user, password);
  if (!(await checkSecondFactor(deps, user, code))) throw errors.invalidMfaCode();
  return user;
}

/**
 * The one way MFA is turned off (by its owner or by the admin): secret, pending secret, last step and
 * backup codes go, and the action is audited, in the caller's transaction.
 */
async function turnOffMfa(
  trx: Queryable,
  userId: string,
  audit: { action: 'mfa.disable' | 'admin.mfa_disable'; ip?: string | null; metadata?: Record<string, unknown> },
): Promise<void> {
  await repo.clearMfa(trx, userId);
  await recordActorAudit(trx, { userId, ip: audit.ip ?? null }, audit.action, 'user', userId, audit.metadata ?? {});
}

/** POST /auth/mfa/disable: password + a current code (or a backup code). */
export async function disableMfa(deps: AuthDeps, auth: AuthInfo, password: string, code: string, meta: RequestMeta) {
  const user = await confirmBoth(deps, auth, password, code);
  await deps.db.transaction((trx) => turnOffMfa(trx, user.id, { action: 'mfa.disable', ip: meta.ip }));
}

/** `voicechat users disable-mfa NAME`: for a user who lost their authenticator and backup codes. */
export async function adminDisableMfa(db: Db, username: string): Promise<{ user: UserRow; wasEnabled: boolean }> {
  return db.transaction(async (trx) => {
    const user = await requireUserByName(trx, username);
    const wasEnabled = Boolean(user.mfa_enabled);
    await turnOffMfa(trx, user.id, { action: 'admin.mfa_disable', metadata: { via: 'cli', was_enabled: wasEnabled } });
    return { user, wasEnabled };
  });
}

/** POST /auth/mfa/backup-codes: a new set; the old set is void. */
export async function regenerateBackupCodes(
  deps: AuthDeps,
  auth: AuthInfo,
  password: string,
  code: string,
  meta: RequestMeta,
) {
  const user = await confirmBoth(deps, auth, password, code);
  const codes = newBackupCodes();
  await deps.db.transaction(async (trx) => {
    await repo.replaceBackupCodes(trx, user.id, codes.map(hashBackupCode), nowMs());
    await recordAudit(trx, {
      action: 'mfa.backup_codes',
      userId: user.id,
      resourceType: 'user',
      resourceId: user.id,
      ip: meta.ip,
      metadata: { count: codes.length },
    });
  });
  return { backup_codes: codes };
}
