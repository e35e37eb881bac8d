/**
 * Password hashing with Argon2id (parameters from config, never below OWASP's m=19456 KiB, t=2, p=1).
 * Unknown users are verified against a dummy hash of the same parameters so timing does not tell.
 */
import argon2, { type HashOptions } from 'argon2';

export interface PasswordParams {
  argon2MemoryKib: number;
  argon2TimeCost: number;
  argon2Parallelism: number;
}

const opts = (p: PasswordParams): HashOptions & { raw?: false } => ({
  type: argon2.argon2id,
  memoryCost: p.argon2MemoryKib,
  timeCost: p.argon2TimeCost,
  parallelism: p.argon2Parallelism,
});

export const hashPassword = (password: string, p: PasswordParams): Promise<string> => argon2.hash(password, opts(p));

export async function verifyPassword(hash: string, password: string): Promise<boolean> {
  try {
    return await argon2.verify(hash, password);
  } catch {
    return false;
  }
}

/** True when the stored hash used other (older) parameters than the configured ones. */
export const needsRehash = (hash: string, p: PasswordParams): boolean => argon2.needsRehash(hash, opts(p));

const dummies = new Map<string, Promise<string>>();

function dummyHash(p: PasswordParams): Promise<string> {
  const key = `${p.argon2MemoryKib}:${p.argon2TimeCost}:${p.argon2Parallelism}`;
  let dummy = dummies.get(key);
  if (!dummy) {
    dummy = hashPassword('not-a-real-password-dummy', p);
    dummies.set(key, dummy);
  }
  return dummy;
}

/**
 * Computes the dummy hash ahead of the first unknown-user login, whose answer would otherwise take
 * one extra hash (a one-time timing tell).
 */
export async function warmUpDummyHash(p: PasswordParams): Promise<void> {
  await dummyHash(p);
}

/** Same work as a real verification, for unknown users. Always false. */
export async function verifyDummy(password: string, p: PasswordParams): Promise<false> {
  await verifyPassword(await dummyHash(p), password);
  return false;
}
