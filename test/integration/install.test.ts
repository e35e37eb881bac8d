/**
 * install.sh --prefix (as root, like the real install): owners and modes of everything it lays down —
 * the keyring stays root:root 0600 (issue 14), the config root:voicechat 0640, data voicechat 0700 —
 * a fresh keyring with staged next keys, an idempotent upgrade run that keeps the keys and migrates,
 * and --uninstall removing units and app but never config, keys or data.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ROOT } from '../support/cli.js';
import { TEST_DIALECT, tempDir } from '../support/db.js';

const isRoot = process.getuid?.() === 0;
// The install itself always uses SQLite, so the Postgres run of the suite skips this slow test.
const runs = isRoot && TEST_DIALECT === 'sqlite';
const uidOf = (name: string) => Number(execFileSync('id', ['-u', name]).toString().trim());
const gidOf = (name: string) => Number(execFileSync('id', ['-g', name]).toString().trim());

function install(prefix: string, ...args: string[]) {
  const r = spawnSync('bash', [path.join(ROOT, 'install.sh'), '--prefix', prefix, ...args], {
    encoding: 'utf8',
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/root' },
    timeout: 240_000,
  });
  if (r.status !== 0) throw new Error(`install.sh ${args.join(' ')} exited ${r.status}: ${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

describe.runIf(runs)('install.sh --prefix', () => {
  const prefix = tempDir('vc-install-');
  afterAll(() => rmSync(prefix, { recursive: true, force: true }));
  const p = (...parts: string[]) => path.join(prefix, ...parts);
  const owner = (f: string) => {
    const st = statSync(f);
    return { uid: st.uid, gid: st.gid, mode: (st.mode & 0o7777).toString(8).padStart(4, '0') };
  };

  it('lays down app, config, keyring, data and units with tight owners and modes', { timeout: 300_000 }, () => {
    const out = install(prefix);
    expect(out).toMatch(/no config yet: running voicechat init --yes/);
    const svc = uidOf('voicechat');
    const svcGroup = gidOf('voicechat');
    expect(owner(p('etc/voicechat/keys.json'))).toEqual({ uid: 0, gid: 0, mode: '0600' });
    expect(owner(p('etc/voicechat/voicechat.env'))).toEqual({ uid: 0, gid: svcGroup, mode: '0640' });
    expect(owner(p('etc/voicechat'))).toEqual({ uid: 0, gid: svcGroup, mode: '0750' });
    expect(owner(p('var/lib/voicechat'))).toEqual({ uid: svc, gid: svcGroup, mode: '0700' });
    expect(owner(p('var/lib/voicechat/backups'))).toEqual({ uid: svc, gid: svcGroup, mode: '0700' });
    expect(owner(p('var/lib/voicechat/voicechat.db'))).toMatchObject({ uid: svc });
    expect(owner(p('opt/voicechat'))).toEqual({ uid: 0, gid: 0, mode: '0755' });
    for (const u of ['voicechat.service', 'voicechat-backup.service', 'voicechat-backup.timer']) {
      expect(owner(p('etc/systemd/system', u))).toEqual({ uid: 0, gid: 0, mode: '0644' });
    }
    const unit = readFileSync(p('etc/systemd/system/voicechat.service'), 'utf8');
    expect(unit).toContain(`LoadCredential=keys.json:${p('etc/voicechat/keys.json')}`);
    // A fresh keyring with a staged next key per purpose (the first rotation needs no restart).
    const keys = JSON.parse(readFileSync(p('etc/voicechat/keys.json'), 'utf8'));
    for (const purpose of ['jwt', 'mfa', 'megolm']) {
      expect(keys[purpose].map((k: { state: string }) => k.state)).toEqual(['active', 'decrypt-only']);
    }
  });

  it('an upgrade run keeps config and keys, migrates, and leaves the same owners', { timeout: 300_000 }, () => {
    const keysBefore = readFileSync(p('etc/voicechat/keys.json'), 'utf8');
    const configBefore = readFileSync(p('etc/voicechat/voicechat.env'), 'utf8');
    const out = install(prefix);
    expect(out).not.toMatch(/running voicechat init/);
    expect(out).toMatch(/Nothing to apply|applied/);
    expect(out).toMatch(/upgraded/);
    expect(readFileSync(p('etc/voicechat/keys.json'), 'utf8')).toBe(keysBefore);
    expect(readFileSync(p('etc/voicechat/voicechat.env'), 'utf8')).toBe(configBefore);
    expect(owner(p('etc/voicechat/keys.json'))).toEqual({ uid: 0, gid: 0, mode: '0600' });
  });

  it('--uninstall removes units and app, never config, keys or data', () => {
    const out = install(prefix, '--uninstall');
    expect(out).toMatch(/kept: .*etc\/voicechat .*var\/lib\/voicechat/);
    expect(existsSync(p('opt/voicechat'))).toBe(false);
    for (const u of ['voicechat.service', 'voicechat-backup.service', 'voicechat-backup.timer']) {
      expect(existsSync(p('etc/systemd/system', u))).toBe(false);
    }
    for (const kept of ['etc/voicechat/keys.json', 'etc/voicechat/voicechat.env', 'var/lib/voicechat/voicechat.db']) {
      expect(existsSync(p(kept)), kept).toBe(true);
    }
  });
});
