/**
 * Access tokens: JWT HS256 signed with the keyring's active `jwt` key (the 32 raw bytes), header `kid`
 * naming it. Verification pins HS256, requires `exp`, and finds the key by `kid` in the keyring, so
 * a rotation can overlap keys. Any failure other than expiry is UNAUTHENTICATED.
 */
import { createSecretKey, type KeyObject } from 'node:crypto';
import jwt from 'jsonwebtoken';
import type { Keyring } from '../crypto/keyring.js';
import { errors } from '../errors.js';

export interface AccessClaims {
  userId: string;
  sessionId: string;
}

// jsonwebtoken first tries to parse a raw secret as a PEM private/public key and catches the failure:
// ~1.5 ms of exception handling per call. Handing it a KeyObject (cached per key) skips that.
const keyObjects = new WeakMap<Buffer, KeyObject>();
function secretKey(key: Buffer): KeyObject {
  let k = keyObjects.get(key);
  if (!k) {
    k = createSecretKey(key);
    keyObjects.set(key, k);
  }
  return k;
}

export function signAccessToken(keyring: Keyring, claims: AccessClaims, ttlSeconds: number): string {
  const { id, key } = keyring.active('jwt');
  return jwt.sign({ sid: claims.sessionId }, secretKey(key), {
    algorithm: 'HS256',
    keyid: id,
    subject: claims.userId,
    expiresIn: ttlSeconds,
  });
}

/**
 * A retired signing key keeps verifying the tokens it signed before its retirement (until they expire,
 * which `exp` enforces), never one issued after it.
 */
function signedBeforeRetirement(keyring: Keyring, kid: string, iat: number | undefined): boolean {
  const entry = keyring.entry('jwt', kid);
  if (entry?.state !== 'retired' || !entry.retired_at) return true;
  return typeof iat === 'number' && iat <= Math.floor(Date.parse(entry.retired_at) / 1000);
}

export function verifyAccessToken(keyring: Keyring, token: string): AccessClaims {
  const decoded = jwt.decode(token, { complete: true });
  const kid = decoded && typeof decoded === 'object' ? decoded.header.kid : undefined;
  const key = kid ? keyring.key('jwt', kid) : undefined;
  if (!key) throw errors.unauthenticated('The access token is not valid.');
  let payload: jwt.JwtPayload | string;
  try {
    payload = jwt.verify(token, secretKey(key), { algorithms: ['HS256'] });
  } catch (e) {
    if (e instanceof jwt.TokenExpiredError) throw errors.tokenExpired();
    throw errors.unauthenticated('The access token is not valid.');
  }
  if (typeof payload === 'object' && !signedBeforeRetirement(keyring, kid as string, payload.iat)) {
    throw errors.unauthenticated('The access token is not valid.');
  }
  if (
    typeof payload !== 'object' ||
    typeof payload.exp !== 'number' ||
    typeof payload.sub !== 'string' ||
    typeof payload.sid !== 'string'
  ) {
    throw errors.unauthenticated('The access token is not valid.');
  }
  return { userId: payload.sub, sessionId: payload.sid };
}
