/**
 * TOTP two-factor authentication: setup (pending secret) → verify (enabled, 10 backup codes) →
 * disable / regenerate codes. Secrets exist at rest only as keyring `mfa` ciphertext bound to the user
 * id (AAD "mfa:<user id>"), so a ciphertext copied to another row does not decrypt. Each TOTP time
 * step is accepted once (users.mfa_last_step); backup codes are stored as SHA-256 and used once.
 */
import { randomBytes } from 'node:crypto';
import { recordAudit } from '../audit/writer.js';
import { hashToken } from '../crypto/random.js';
import { errors } from '../errors.js';
import { nowMs } from '../ids.js';
import { BACKUP_CODE_COUNT } from './policy.js';
import * as repo from './repo.js';
import type { AuthDeps, RequestMeta } from './service.js';
import { confirmPassword } from './service.js';
import type { AuthInfo } from './session-guard.js';
import { matchTotpStep, newTotpSecret, otpauthUri } from './totp.js';

const aad = (userId: string) => `mfa:${userId}`;

/** Backup codes: 64 random bits shown as `xxxx-xxxx-xxxx-xxxx` (hex); compared case- and dash-insensitively. */
function newBackupCodes(): string[] {
  return Array.from({ length: BACKUP_CODE_COUNT }, () =>
    (randomBytes(8).toString('hex').match(/.{4}/g) as string[]).join('-'),
  );
}

const normalizeBackupCode = (code: string): string | undefined => {
  const c = code.toLowerCase().replace(/[\s-]/g, '');
  return /^[0-9a-f]{16}$/.test(c) ? c : undefined;
};

const hashBackupCode = (code: string) => hashToken(normalizeBackupCode(code) ?? code);

async function loadUser(deps: AuthDeps, userId: string): Promise<repo.AuthUserRow> {
  const user = await repo.userById(deps.db, userId);
  if (!user) throw errors.unauthenticated();
  return user;
}

/**
 * Checks a second factor for a user with MFA on: a TOTP code (current step ±1, each step once) or an
 * unused backup code. Returns which factor matched, or null.
 */
export async function checkSecondFactor(
  deps: Pick<AuthDeps, 'db' | 'keyring' | 'logger'>,
  user: repo.AuthUserRow,
  code: string,
): Promise<'totp' | 'backup_code' | null> {
  const compact = code.replace(/\s/g, '');
  if (/^\d{6}$/.test(compact)) {
    if (!user.mfa_secret) return null;
    let secret: string;
    try {
      secret = deps.keyring.open('mfa', user.mfa_secret, aad(user.id)).toString('utf8');
    } catch (err) {
      deps.logger.error({ err, user_id: user.id }, 'MFA secret cannot be decrypted (wrong key or moved ciphertext)');
      return null;
    }
    const step = matchTotpStep(compact, secret);
    if (step === null) return null;
    return (await repo.claimTotpStep(deps.db, user.id, step)) ? 'totp' : null;
  }
  const normalized = normalizeBackupCode(compact);
  if (!normalized) return null;
  return (await repo.useBackupCode(deps.db, user.id, hashToken(normalized), nowMs())) ? 'backup_code' : null;
}

/** POST /auth/mfa/setup: a new pending secret (replacing any earlier pending one). */
export async function setupMfa(deps: AuthDeps, auth: AuthInfo, password: string) {
  const user = await loadUser(deps, auth.userId);
  if (user.mfa_enabled) throw errors.conflict('Two-factor authentication is already enabled.');
  await confirmPassword(deps, user, password);
  const secret = newTotpSecret();
  await repo.updateUser(deps.db, user.id, { mfa_pending_secret: deps.keyring.seal('mfa', secret, aad(user.id)) });
  return { secret, otpauth_uri: otpauthUri(user.username, secret) };
}

/** POST /auth/mfa/verify: the first code from the authenticator turns MFA on. */
export async function verifyMfa(deps: AuthDeps, auth: AuthInfo, code: string, meta: RequestMeta) {
  const user = await loadUser(deps, auth.userId);
  if (user.mfa_enabled) throw errors.conflict('Two-factor authentication is already enabled.');
  if (!user.mfa_pending_secret) throw errors.conflict('Start two-factor setup first.');
  const secret = deps.keyring.open('mfa', user.mfa_pending_secret, aad(user.id)).toString('utf8');
  const step = matchTotpStep(code.replace(/\s/g, ''), secret);
  if (step === null) throw errors.invalidMfaCode();
  const codes = newBackupCodes();
  const now = nowMs();
  const enabled = await deps.db.transaction(async (trx) => {
    // Guarded on the pending secret, so two racing verifications enable it once.
    const n = await trx('users')
      .where({ id: user.id, mfa_enabled: false, mfa_pending_secret: user.mfa_pending_secret })
      .update({
        mfa_enabled: true,
        mfa_secret: user.mfa_pending_secret,
        mfa_pending_secret: null,
        mfa_last_step: step,
        updated_at: now,
      });
    if (n !== 1) return false;
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

/** POST /auth/mfa/disable: password + a current code (or a backup code). */
export async function disableMfa(deps: AuthDeps, auth: AuthInfo, password: string, code: string, meta: RequestMeta) {
  const user = await confirmBoth(deps, auth, password, code);
  await deps.db.transaction(async (trx) => {
    await repo.updateUser(trx, user.id, {
      mfa_enabled: false,
      mfa_secret: null,
      mfa_pending_secret: null,
      mfa_last_step: null,
    });
    await repo.deleteBackupCodes(trx, user.id);
    await recordAudit(trx, {
      action: 'mfa.disable',
      userId: user.id,
      resourceType: 'user',
      resourceId: user.id,
      ip: meta.ip,
      metadata: {},
    });
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
