/**
 * The keyring: versioned keys per purpose (jwt, mfa, megolm) in `keys.json` (mode 0600).
 * One key per purpose is `active` (used to sign/encrypt); `decrypt-only` and `retired` keys still
 * verify/decrypt so rotation can overlap. Environment overrides (JWT_SECRET, MFA_ENCRYPTION_KEY,
 * MEGOLM_ENCRYPTION_KEY) replace the active key of their purpose; the file's keys stay usable for
 * decryption.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, closeSync, fsyncSync, openSync, readFileSync, renameSync, statSync, writeSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { ConfigError } from '../errors.js';
import { open, seal } from './aead.js';
import { randomKeyHex, sha256Hex } from './random.js';

export const PURPOSES = ['jwt', 'mfa', 'megolm'] as const;
export type KeyPurpose = (typeof PURPOSES)[number];
export type KeyState = 'active' | 'decrypt-only' | 'retired';

const entrySchema = z.object({
  id: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'key id must be 1-64 of [A-Za-z0-9_-]'),
  key: z.string().regex(/^[0-9a-fA-F]{64}$/, 'key must be exactly 64 hex characters'),
  created_at: z.string(),
  state: z.enum(['active', 'decrypt-only', 'retired']),
  retired_at: z.string().optional(),
});
export type KeyEntry = z.infer<typeof entrySchema>;

const fileSchema = z.object({
  jwt: z.array(entrySchema),
  mfa: z.array(entrySchema),
  megolm: z.array(entrySchema),
});
export type KeyringData = z.infer<typeof fileSchema>;

export const OVERRIDE_VARIABLES: Record<KeyPurpose, string> = {
  jwt: 'JWT_SECRET',
  mfa: 'MFA_ENCRYPTION_KEY',
  megolm: 'MEGOLM_ENCRYPTION_KEY',
};

export const newKeyId = (purpose: KeyPurpose): string => `${purpose}_${randomBytes(4).toString('hex')}`;

export function newKeyEntry(purpose: KeyPurpose, state: KeyState, hex = randomKeyHex()): KeyEntry {
  return { id: newKeyId(purpose), key: hex.toLowerCase(), created_at: new Date().toISOString(), state };
}

export class Keyring {
  #data: KeyringData;
  #bytes = new Map<string, Buffer>();

  private constructor(data: KeyringData) {
    this.#data = data;
    this.#validate();
  }

  /**
   * A fresh keyring: one active key per purpose and, with `staged`, a next key per purpose already in
   * place (decrypt-only), so a first rotation needs no restart (`init` and install.sh do this).
   */
  static generate(opts: { staged?: boolean } = {}): Keyring {
    const data: KeyringData = { jwt: [], mfa: [], megolm: [] };
    const created = Date.now();
    for (const purpose of PURPOSES) {
      data[purpose].push({ ...newKeyEntry(purpose, 'active'), created_at: new Date(created).toISOString() });
      if (opts.staged) {
        data[purpose].push({
          ...newKeyEntry(purpose, 'decrypt-only'),
          created_at: new Date(created + 1).toISOString(),
        });
      }
    }
    return new Keyring(data);
  }

  static fromJSON(value: unknown, source = 'keyring'): Keyring {
    const parsed = fileSchema.safeParse(value);
    if (!parsed.success) {
      throw new ConfigError(parsed.error.issues.map((i) => `${source}: ${i.path.join('.') || 'file'}: ${i.message}`));
    }
    return new Keyring(parsed.data);
  }

  /** Reads keys.json, refusing one that group or others can read (like ssh with private keys). */
  static load(file: string): Keyring {
    let st: ReturnType<typeof statSync>;
    try {
      st = statSync(file);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      throw new ConfigError([
        code === 'ENOENT'
          ? `keyring ${file} not found (run \`voicechat init\` or set VOICECHAT_KEYRING)`
          : `keyring ${file} cannot be read (${code})`,
      ]);
    }
    if ((st.mode & 0o077) !== 0) {
      throw new ConfigError([
        `keyring ${file} is accessible by group or others (mode ${(st.mode & 0o777).toString(8)}); run \`chmod 600 ${file}\``,
      ]);
    }
    let json: unknown;
    try {
      json = JSON.parse(readFileSync(file, 'utf8'));
    } catch {
      throw new ConfigError([`keyring ${file} is not valid JSON`]);
    }
    return Keyring.fromJSON(json, `keyring ${path.basename(file)}`);
  }

  /**
   * Applies the environment overrides: each given key becomes the active key of its purpose under a
   * stable id derived from the key itself, and the file's former active key becomes decrypt-only.
   */
  withOverrides(overrides: Partial<Record<KeyPurpose, string | undefined>>): Keyring {
    const data = structuredClone(this.#data);
    for (const purpose of PURPOSES) {
      const hex = overrides[purpose];
      if (!hex) continue;
      if (!/^[0-9a-fA-F]{64}$/.test(hex)) {
        throw new ConfigError([`${OVERRIDE_VARIABLES[purpose]} must be exactly 64 hex characters (32 bytes)`]);
      }
      const id = `${purpose}_env_${sha256Hex(hex.toLowerCase()).slice(0, 8)}`;
      const list = data[purpose].filter((k) => k.id !== id);
      for (const k of list) if (k.state === 'active') k.state = 'decrypt-only';
      list.push({ id, key: hex.toLowerCase(), created_at: new Date(0).toISOString(), state: 'active' });
      data[purpose] = list;
    }
    return new Keyring(data);
  }

  #validate(): void {
    const problems: string[] = [];
    const ids = new Set<string>();
    for (const purpose of PURPOSES) {
      const active = this.#data[purpose].filter((k) => k.state === 'active');
      if (active.length !== 1)
        problems.push(`keyring: purpose ${purpose} must have exactly one active key (has ${active.length})`);
      for (const k of this.#data[purpose]) {
        if (ids.has(k.id)) problems.push(`keyring: duplicate key id ${k.id}`);
        ids.add(k.id);
        this.#bytes.set(`${purpose}:${k.id}`, Buffer.from(k.key, 'hex'));
      }
    }
    if (problems.length) throw new ConfigError(problems);
  }

  active(purpose: KeyPurpose): { id: string; key: Buffer } {
    const entry = this.#data[purpose].find((k) => k.state === 'active') as KeyEntry;
    return { id: entry.id, key: this.#bytes.get(`${purpose}:${entry.id}`) as Buffer };
  }

  /** Any key of the purpose by id, whatever its state (verification/decryption). */
  key(purpose: KeyPurpose, id: string): Buffer | undefined {
    return this.#bytes.get(`${purpose}:${id}`);
  }

  entries(purpose: KeyPurpose): readonly KeyEntry[] {
    return this.#data[purpose].map((k) => ({ ...k, key: '<redacted>' }));
  }

  /** Returns a new keyring with a key appended (state decrypt-only unless told otherwise). */
  withAddedKey(purpose: KeyPurpose, hex?: string): { keyring: Keyring; entry: KeyEntry } {
    const data = structuredClone(this.#data);
    const entry = newKeyEntry(purpose, 'decrypt-only', hex);
    data[purpose].push(entry);
    return { keyring: new Keyring(data), entry };
  }

  /** Returns a new keyring where `id` is active and the previous active key is `decrypt-only`. */
  withActivated(purpose: KeyPurpose, id: string): Keyring {
    const data = structuredClone(this.#data);
    if (!data[purpose].some((k) => k.id === id)) throw new ConfigError([`keyring: no ${purpose} key ${id}`]);
    for (const k of data[purpose]) {
      if (k.id === id) k.state = 'active';
      else if (k.state === 'active') k.state = 'decrypt-only';
    }
    return new Keyring(data);
  }

  /** One key's id, state and dates (never its material), or undefined. */
  entry(purpose: KeyPurpose, id: string): Omit<KeyEntry, 'key'> | undefined {
    const e = this.#data[purpose].find((k) => k.id === id);
    if (!e) return undefined;
    const { key: _material, ...rest } = e;
    return rest;
  }

  /** Every key id held for a purpose (what a node reports so rotation can check it holds the next key). */
  ids(purpose: KeyPurpose): string[] {
    return this.#data[purpose].map((k) => k.id);
  }

  /**
   * The staged next key: the newest decrypt-only key created after the active one (`keygen --add`,
   * `init`). Rotation activates it; every node must have loaded it first.
   */
  staged(purpose: KeyPurpose): Omit<KeyEntry, 'key'> | undefined {
    const active = this.#data[purpose].find((k) => k.state === 'active') as KeyEntry;
    const candidates = this.#data[purpose]
      .filter((k) => k.state === 'decrypt-only' && k.created_at > active.created_at)
      .sort((a, b) => (a.created_at < b.created_at ? 1 : -1));
    return candidates[0] ? this.entry(purpose, candidates[0].id) : undefined;
  }

  /**
   * Returns a new keyring with activation state from the database applied: `active` (when this keyring
   * holds it) becomes the active key, the former active key decrypt-only, and `retired` keys are marked
   * retired with their date. Unknown ids are ignored (the caller decides whether that is a problem).
   */
  withRotationState(purpose: KeyPurpose, active: string | undefined, retired: ReadonlyMap<string, string>): Keyring {
    const data = structuredClone(this.#data);
    const list = data[purpose];
    if (active && list.some((k) => k.id === active)) {
      for (const k of list) {
        if (k.id === active) k.state = 'active';
        else if (k.state === 'active') k.state = 'decrypt-only';
      }
    }
    for (const k of list) {
      const at = retired.get(k.id);
      if (at && k.state !== 'active') {
        k.state = 'retired';
        k.retired_at = at;
      }
    }
    return new Keyring(data);
  }

  /** Returns a new keyring without the given keys (rotate-keys --purge); the active key is never removed. */
  without(purpose: KeyPurpose, ids: readonly string[]): Keyring {
    const data = structuredClone(this.#data);
    data[purpose] = data[purpose].filter((k) => k.state === 'active' || !ids.includes(k.id));
    return new Keyring(data);
  }

  /** Seals under a specific key of the purpose (rotation writes under the key it activated). */
  sealWith(purpose: KeyPurpose, keyId: string, plaintext: string | Buffer, aad: string): string {
    const key = this.key(purpose, keyId);
    if (!key) throw new ConfigError([`keyring: no ${purpose} key ${keyId}`]);
    return seal(key, keyId, plaintext, aad);
  }

  seal(purpose: KeyPurpose, plaintext: string | Buffer, aad: string): string {
    const { id, key } = this.active(purpose);
    return seal(key, id, plaintext, aad);
  }

  open(purpose: KeyPurpose, envelope: string, aad: string): Buffer {
    return open((id) => this.key(purpose, id), envelope, aad);
  }

  toJSON(): KeyringData {
    return structuredClone(this.#data);
  }

  /** Writes the keyring atomically with mode 0600 (temp file, fsync, rename). */
  save(file: string): void {
    const tmp = `${file}.${process.pid}.tmp`;
    const fd = openSync(tmp, 'w', 0o600);
    try {
      writeSync(fd, `${JSON.stringify(this.#data, null, 2)}\n`);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    chmodSync(tmp, 0o600);
    renameSync(tmp, file);
  }
}

/** Loads the keyring the config names and applies the environment overrides. */
export function loadKeyring(config: {
  keyringFile: string;
  jwtSecret?: string | undefined;
  mfaEncryptionKey?: string | undefined;
  megolmEncryptionKey?: string | undefined;
}): Keyring {
  return Keyring.load(config.keyringFile).withOverrides({
    jwt: config.jwtSecret,
    mfa: config.mfaEncryptionKey,
    megolm: config.megolmEncryptionKey,
  });
}
