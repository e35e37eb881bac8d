/**
 * The at-rest envelope: `v1.<key_id>.<base64url(nonce12 ‖ ciphertext ‖ tag16)>`, AES-256-GCM with
 * additional authenticated data that binds a value to its row (e.g. "mfa:<user_id>"), so a ciphertext
 * copied to another row does not decrypt.
 */
import { createCipheriv, createDecipheriv, randomFillSync } from 'node:crypto';

export class DecryptError extends Error {
  constructor(reason: string) {
    super(`cannot decrypt value: ${reason}`);
    this.name = 'DecryptError';
  }
}

const VERSION = 'v1';
const NONCE = 12;
const TAG = 16;

// Nonces come from a buffer of CSPRNG output refilled 4,096 nonces at a time (as Node does for
// randomUUID): one getrandom call per 4,096 seals instead of one per seal. Each byte is copied out and
// used once; a refill overwrites only bytes already handed out.
const POOL = Buffer.alloc(NONCE * 4096);
let poolAt = POOL.length;
function freshNonce(): Buffer {
  if (poolAt + NONCE > POOL.length) {
    randomFillSync(POOL);
    poolAt = 0;
  }
  const nonce = Buffer.from(POOL.subarray(poolAt, poolAt + NONCE));
  poolAt += NONCE;
  return nonce;
}

export function seal(key: Buffer, keyId: string, plaintext: string | Buffer, aad: string): string {
  if (key.length !== 32) throw new Error('AES-256-GCM needs a 32-byte key');
  if (keyId.includes('.')) throw new Error('key ids may not contain dots');
  const nonce = freshNonce();
  const cipher = createCipheriv('aes-256-gcm', key, nonce);
  cipher.setAAD(Buffer.from(aad, 'utf8'));
  const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return `${VERSION}.${keyId}.${Buffer.concat([nonce, body, cipher.getAuthTag()]).toString('base64url')}`;
}

/** Key id named by an envelope, without decrypting it (rotation uses it to find stale rows). */
export function envelopeKeyId(envelope: string): string | undefined {
  const parts = envelope.split('.');
  return parts.length === 3 && parts[0] === VERSION ? parts[1] : undefined;
}

export function open(resolveKey: (keyId: string) => Buffer | undefined, envelope: string, aad: string): Buffer {
  const parts = envelope.split('.');
  if (parts.length !== 3 || parts[0] !== VERSION) throw new DecryptError('unknown format');
  const [, keyId, payload] = parts as [string, string, string];
  const key = resolveKey(keyId);
  if (!key) throw new DecryptError(`unknown key id ${keyId}`);
  const raw = Buffer.from(payload, 'base64url');
  if (raw.length < NONCE + TAG) throw new DecryptError('truncated');
  const decipher = createDecipheriv('aes-256-gcm', key, raw.subarray(0, NONCE));
  decipher.setAAD(Buffer.from(aad, 'utf8'));
  decipher.setAuthTag(raw.subarray(raw.length - TAG));
  try {
    return Buffer.concat([decipher.update(raw.subarray(NONCE, raw.length - TAG)), decipher.final()]);
  } catch {
    throw new DecryptError('authentication failed');
  }
}
