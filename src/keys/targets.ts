/**
 * What each key purpose encrypts at rest, and how a value is opened and sealed in its place: the
 * single list rotation walks (a purpose with no table, jwt, only signs).
 */
import { open } from '../crypto/aead.js';
import type { KeyPurpose, Keyring } from '../crypto/keyring.js';
import { openMegolmSessionData, sealMegolmSessionData } from '../crypto/megolm.js';
import type { EncryptedTable } from './repo.js';

export interface RotationTarget extends EncryptedTable {
  purpose: KeyPurpose;
  /** Opens a value under the key its envelope names, looked up by `resolve` (so a check can allow one key only). */
  open(keyring: Keyring, row: Record<string, any>, column: string, onlyKeyId?: string): Buffer;
  seal(keyring: Keyring, keyId: string, row: Record<string, any>, column: string, plaintext: Buffer): string;
}

const mfaAad = (row: Record<string, any>) => `mfa:${row.id}`;

export const MFA_SECRETS: RotationTarget = {
  purpose: 'mfa',
  table: 'users',
  columns: ['mfa_secret', 'mfa_pending_secret'],
  context: [],
  open: (keyring, row, column, onlyKeyId) =>
    open((id) => (onlyKeyId && id !== onlyKeyId ? undefined : keyring.key('mfa', id)), row[column], mfaAad(row)),
  seal: (keyring, keyId, row, _column, plaintext) => keyring.sealWith('mfa', keyId, plaintext, mfaAad(row)),
};

export const MEGOLM_SESSIONS: RotationTarget = {
  purpose: 'megolm',
  table: 'megolm_sessions',
  columns: ['session_data'],
  context: ['channel_id', 'session_id'],
  open: (keyring, row, column, onlyKeyId) => {
    if (onlyKeyId && !row[column].startsWith(`v1.${onlyKeyId}.`)) throw new Error(`not under key ${onlyKeyId}`);
    return openMegolmSessionData(keyring, row.channel_id, row.session_id, row[column]);
  },
  seal: (keyring, keyId, row, _column, plaintext) =>
    sealMegolmSessionData(keyring, row.channel_id, row.session_id, plaintext, keyId),
};

export const TARGETS: Record<KeyPurpose, RotationTarget[]> = {
  jwt: [],
  mfa: [MFA_SECRETS],
  megolm: [MEGOLM_SESSIONS],
};
