/** Random values and token hashing: the only place tokens are minted, hashed and compared. */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/** 32 random bytes as hex, like `openssl rand -hex 32`. */
export const randomKeyHex = (): string => randomBytes(32).toString('hex');

/** An opaque bearer token: `bytes` random bytes, base64url. */
export const randomToken = (bytes = 32): string => randomBytes(bytes).toString('base64url');

/** Stored form of a bearer token: SHA-256 hex. Tokens have 256 bits of entropy, so no salt is needed. */
export const hashToken = (token: string): string => createHash('sha256').update(token, 'utf8').digest('hex');

export const sha256Hex = (data: string | Buffer): string => createHash('sha256').update(data).digest('hex');

/** Constant-time string comparison (length leak only). */
export function safeEqual(a: string, b: string): boolean {
  const ab = Buffer.from(a, 'utf8');
  const bb = Buffer.from(b, 'utf8');
  if (ab.length !== bb.length) {
    timingSafeEqual(ab, ab);
    return false;
  }
  return timingSafeEqual(ab, bb);
}
