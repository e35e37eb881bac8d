/**
 * Checking a second factor (login, and re-confirmation before MFA changes): a TOTP code (current
 * step ±1, each step accepted once) or an unused backup code. Also the shapes MFA material has at
 * rest: secrets sealed with the keyring's `mfa` key bound to the user (AAD "mfa:<user id>"), backup
 * codes as SHA-256 of their normalised form.
 */
import type { Keyring } from '../crypto/keyring.js';
import { hashToken } from '../crypto/random.js';
import type { Db } from '../db/knex.js';
import { nowMs } from '../ids.js';
import type { Logger } from '../logger.js';
import * as repo from './repo.js';
import { matchTotpStep } from './totp.js';

/** Additional authenticated data binding an MFA secret to its user's row. */
export const mfaAad = (userId: string) => `mfa:${userId}`;

/** Backup codes are compared case- and dash-insensitively: 16 hex digits. */
export const normalizeBackupCode = (code: string): string | undefined => {
  const c = code.toLowerCase().replace(/[\s-]/g, '');
  return /^[0-9a-f]{16}$/.test(c) ? c : undefined;
};

export const hashBackupCode = (code: string) => hashToken(normalizeBackupCode(code) ?? code);

/** Which factor matched for a user with MFA on, or null. */
export async function checkSecondFactor(
  deps: { db: Db; keyring: Keyring; logger: Logger },
  user: repo.AuthUserRow,
  code: string,
): Promise<'totp' | 'backup_code' | null> {
  const compact = code.replace(/\s/g, '');
  if (/^\d{6}$/.test(compact)) {
    if (!user.mfa_secret) return null;
    let secret: string;
    try {
      secret = deps.keyring.open('mfa', user.mfa_secret, mfaAad(user.id)).toString('utf8');
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
