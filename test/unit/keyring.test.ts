import { chmodSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DecryptError, envelopeKeyId } from '../../src/crypto/aead.js';
import { deriveChannelKey } from '../../src/crypto/hkdf.js';
import { Keyring, loadKeyring } from '../../src/crypto/keyring.js';
import { randomKeyHex } from '../../src/crypto/random.js';
import { ConfigError } from '../../src/errors.js';
import { tempDir } from '../support/db.js';

const dir = tempDir('vc-keyring-');
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const AAD = 'mfa:0190f3a4-0000-7000-8000-000000000001';

/** Flips one bit of the decoded payload at `index` and re-encodes the envelope. */
function tamper(envelope: string, index: number): string {
  const [v, kid, payload] = envelope.split('.') as [string, string, string];
  const raw = Buffer.from(payload, 'base64url');
  raw[index] = (raw[index] as number) ^ 0x01;
  return `${v}.${kid}.${raw.toString('base64url')}`;
}

describe('keyring and at-rest envelope', () => {
  const ring = Keyring.generate();

  it('round-trips a value under its AAD, in the v1.<kid>.<base64url> format', () => {
    const env = ring.seal('mfa', 'JBSWY3DPEHPK3PXP', AAD);
    expect(env).toMatch(/^v1\.mfa_[0-9a-f]{8}\.[A-Za-z0-9_-]+$/);
    expect(envelopeKeyId(env)).toBe(ring.active('mfa').id);
    expect(env).not.toContain('JBSWY3DPEHPK3PXP');
    expect(ring.open('mfa', env, AAD).toString('utf8')).toBe('JBSWY3DPEHPK3PXP');
    // Two seals of the same value differ (random nonce).
    expect(ring.seal('mfa', 'JBSWY3DPEHPK3PXP', AAD)).not.toBe(env);
  });

  it('refuses tampered ciphertext, nonce and tag', () => {
    const env = ring.seal('mfa', 'secret value', AAD);
    const len = Buffer.from(env.split('.')[2] as string, 'base64url').length;
    for (const i of [0, 12, len - 1]) {
      expect(() => ring.open('mfa', tamper(env, i), AAD)).toThrow(DecryptError);
    }
    expect(() => ring.open('mfa', env.slice(0, -4), AAD)).toThrow(DecryptError);
    expect(() => ring.open('mfa', 'v2.x.yyyy', AAD)).toThrow(DecryptError);
  });

  it('refuses a value moved to another row (wrong AAD)', () => {
    const env = ring.seal('megolm', 'session', 'megolm:channel-a:session-1');
    expect(() => ring.open('megolm', env, 'megolm:channel-b:session-1')).toThrow(/authentication failed/);
    expect(() => ring.open('megolm', env, 'megolm:channel-a:session-2')).toThrow(DecryptError);
  });

  it('refuses an unknown key id, and a key of another purpose', () => {
    const other = Keyring.generate();
    const env = other.seal('mfa', 'x', AAD);
    expect(() => ring.open('mfa', env, AAD)).toThrow(/unknown key id/);
    const jwtSealed = ring.seal('jwt', 'x', AAD);
    expect(() => ring.open('mfa', jwtSealed, AAD)).toThrow(/unknown key id/);
  });

  it('still opens values sealed with a decrypt-only key after a new key is activated', () => {
    const env = ring.seal('mfa', 'old', AAD);
    const { keyring: added, entry } = ring.withAddedKey('mfa');
    expect(entry.state).toBe('decrypt-only');
    expect(added.active('mfa').id).toBe(ring.active('mfa').id);
    const rotated = added.withActivated('mfa', entry.id);
    expect(rotated.active('mfa').id).toBe(entry.id);
    expect(rotated.open('mfa', env, AAD).toString()).toBe('old');
    expect(envelopeKeyId(rotated.seal('mfa', 'new', AAD))).toBe(entry.id);
  });

  it('refuses wrong-length override keys, naming the variable and never the value', () => {
    for (const bad of ['abcd', `${randomKeyHex()}00`, 'z'.repeat(64)]) {
      let caught: unknown;
      try {
        ring.withOverrides({ mfa: bad });
      } catch (e) {
        caught = e;
      }
      expect(caught).toBeInstanceOf(ConfigError);
      expect((caught as Error).message).toContain('MFA_ENCRYPTION_KEY');
      expect((caught as Error).message).not.toContain(bad);
    }
    const hex = randomKeyHex();
    const over = ring.withOverrides({ jwt: hex });
    expect(over.active('jwt').key.equals(Buffer.from(hex, 'hex'))).toBe(true);
    // The file's old active key still verifies/decrypts.
    expect(over.key('jwt', ring.active('jwt').id)).toBeDefined();
  });

  it('refuses a keyring file entry with a wrong-length key, without echoing it', () => {
    const data = ring.toJSON();
    const short = 'ab'.repeat(16);
    (data.mfa[0] as { key: string }).key = short;
    const file = path.join(dir, 'short.json');
    writeFileSync(file, JSON.stringify(data), { mode: 0o600 });
    let caught: unknown;
    try {
      Keyring.load(file);
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    expect((caught as Error).message).toMatch(/mfa\.0\.key.*64 hex/);
    expect((caught as Error).message).not.toContain(short);
  });

  it('saves with mode 0600 and refuses a keyring readable by group or others', () => {
    const file = path.join(dir, 'keys.json');
    ring.save(file);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(Keyring.load(file).active('jwt').id).toBe(ring.active('jwt').id);
    for (const mode of [0o640, 0o604, 0o644]) {
      chmodSync(file, mode);
      expect(() => Keyring.load(file)).toThrow(/accessible by group or others.*chmod 600/);
      expect(() => loadKeyring({ keyringFile: file })).toThrow(ConfigError);
    }
    chmodSync(file, 0o600);
    expect(() => Keyring.load(file)).not.toThrow();
    expect(() => Keyring.load(path.join(dir, 'missing.json'))).toThrow(/not found/);
  });

  it('derives a different HKDF key per channel, deterministically', () => {
    const master = ring.active('megolm').key;
    const a = deriveChannelKey(master, 'channel-a');
    const b = deriveChannelKey(master, 'channel-b');
    expect(a).toHaveLength(32);
    expect(a.equals(b)).toBe(false);
    expect(a.equals(deriveChannelKey(master, 'channel-a'))).toBe(true);
    expect(a.equals(master)).toBe(false);
    expect(deriveChannelKey(Keyring.generate().active('megolm').key, 'channel-a').equals(a)).toBe(false);
  });

  it('never exposes key material through entries()', () => {
    expect(JSON.stringify(ring.entries('mfa'))).not.toContain(ring.toJSON().mfa[0]?.key);
  });
});
