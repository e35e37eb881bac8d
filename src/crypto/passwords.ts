/**
 * Password hashing with Argon2id (parameters from config, never below OWASP's m=19456 KiB, t=2, p=1).
 * Unknown users are verified against a dummy hash of the same parameters so timing does not tell;
 * each app owns one DummyPassword (built and warmed up by createApp).
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

/** The hash unknown users are verified against: same parameters, so the same work as a real user. */
export class DummyPassword {
  readonly #params: PasswordParams;
  #hash: Promise<string> | undefined;

  constructor(params: PasswordParams) {
    this.#params = params;
  }

  /**
   * Computes the hash ahead of the first unknown-user login, whose answer would otherwise take one
   * extra hash (a one-time timing tell).
   */
  warmUp(): Promise<string> {
    this.#hash ??= hashPassword('not-a-real-password-dummy', this.#params);
    return this.#hash;
  }

  /** Same work as a real verification. Always false. */
  async verify(password: string): Promise<false> {
    await verifyPassword(await this.warmUp(), password);
    return false;
  }
}
