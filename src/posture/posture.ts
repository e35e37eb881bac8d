/**
 * `voicechat audit --posture`: a security self-check of the installation, one line per check
 * (ok / warn / fail). Reads files, the keyring and the database; changes nothing.
 */
import { execFileSync } from 'node:child_process';
import { statSync } from 'node:fs';
import { verifyAuditChain } from '../audit/verify.js';
import type { Config } from '../config/index.js';
import { type Keyring, loadKeyring, PURPOSES } from '../crypto/keyring.js';
import type { Db } from '../db/knex.js';
import { migrationStatus } from '../db/migrator.js';
import { loadKeyState } from '../keys/state.js';

export type Level = 'ok' | 'warn' | 'fail';

export interface PostureCheck {
  check: string;
  level: Level;
  detail: string;
}

export const ROTATION_DUE_DAYS = 90;
const DAY = 86400_000;
const SERVICE_USER = 'voicechat';

const mode = (m: number) => (m & 0o777).toString(8).padStart(4, '0');

function uidOf(name: string): number | undefined {
  try {
    return Number(
      execFileSync('id', ['-u', name], { stdio: ['ignore', 'pipe', 'ignore'] })
        .toString()
        .trim(),
    );
  } catch {
    return undefined;
  }
}

function keyringFileChecks(config: Config): PostureCheck[] {
  let st: ReturnType<typeof statSync>;
  try {
    st = statSync(config.keyringFile);
  } catch {
    return [{ check: 'keyring file', level: 'fail', detail: `${config.keyringFile} is missing` }];
  }
  const out: PostureCheck[] = [];
  if ((st.mode & 0o077) !== 0) {
    out.push({
      check: 'keyring file',
      level: 'fail',
      detail: `${config.keyringFile} has mode ${mode(st.mode)}: group or others can read it (chmod 600)`,
    });
  } else {
    out.push({ check: 'keyring file', level: 'ok', detail: `${config.keyringFile} mode ${mode(st.mode)}` });
  }
  const me = process.getuid?.() ?? st.uid;
  out.push(
    st.uid === 0 || st.uid === me
      ? { check: 'keyring owner', level: 'ok', detail: `uid ${st.uid}${st.uid === 0 ? ' (root)' : ''}` }
      : { check: 'keyring owner', level: 'warn', detail: `owned by uid ${st.uid}, expected root or uid ${me}` },
  );
  return out;
}

function keyChecks(keyring: Keyring, now: number): PostureCheck[] {
  const out: PostureCheck[] = [];
  for (const purpose of PURPOSES) {
    const active = keyring.active(purpose);
    const entry = keyring.entry(purpose, active.id);
    const ageDays = entry ? Math.floor((now - Date.parse(entry.created_at)) / DAY) : 0;
    const env = active.id.includes('_env_');
    out.push(
      env
        ? {
            check: `${purpose} key age`,
            level: 'warn',
            detail: `active key ${active.id} comes from the environment; its age is unknown`,
          }
        : ageDays > ROTATION_DUE_DAYS
          ? {
              check: `${purpose} key age`,
              level: 'warn',
              detail: `active key ${active.id} is ${ageDays} days old: rotation due (voicechat rotate-keys --purpose ${purpose})`,
            }
          : { check: `${purpose} key age`, level: 'ok', detail: `active key ${active.id}, ${ageDays} days old` },
    );
    const staged = keyring.staged(purpose);
    out.push(
      staged
        ? { check: `${purpose} staged key`, level: 'ok', detail: `next key ${staged.id} staged` }
        : {
            check: `${purpose} staged key`,
            level: 'warn',
            detail: `no staged next key: voicechat keygen --purpose ${purpose} --add, then restart the service`,
          },
    );
  }
  return out;
}

function transportCheck(config: Config): PostureCheck {
  const check = 'tls / proxy';
  if (!config.publicUrl) return { check, level: 'warn', detail: 'VOICECHAT_PUBLIC_URL is not set' };
  const url = new URL(config.publicUrl);
  const loopback = ['localhost', '127.0.0.1', '[::1]'].includes(url.hostname);
  if (url.protocol === 'http:') {
    return loopback
      ? { check, level: 'ok', detail: `${url.origin} is loopback only` }
      : {
          check,
          level: 'warn',
          detail: `public URL ${url.origin} is plain http: tokens and passwords cross the network in clear`,
        };
  }
  if (config.tlsCert) return { check, level: 'ok', detail: `serves TLS itself (${config.tlsCert})` };
  if (config.trustedProxies.length > 0) {
    return { check, level: 'ok', detail: `TLS at a trusted proxy (${config.trustedProxies.join(', ')})` };
  }
  return {
    check,
    level: 'fail',
    detail: `public URL is https but the server has no TLS certificate and trusts no proxy (set VOICECHAT_TLS_CERT/KEY or VOICECHAT_TRUSTED_PROXIES)`,
  };
}

function fileModeCheck(check: string, file: string | undefined, maxOthers: number): PostureCheck | undefined {
  if (!file) return undefined;
  try {
    const st = statSync(file);
    return (st.mode & 0o007) > maxOthers
      ? { check, level: 'fail', detail: `${file} has mode ${mode(st.mode)}: others can read it` }
      : { check, level: 'ok', detail: `${file} mode ${mode(st.mode)}` };
  } catch {
    return { check, level: 'fail', detail: `${file} is missing` };
  }
}

function serviceUserCheck(config: Config): PostureCheck {
  const check = 'service user';
  let st: ReturnType<typeof statSync>;
  try {
    st = statSync(config.dataDir);
  } catch {
    return { check, level: 'fail', detail: `data directory ${config.dataDir} is missing` };
  }
  const svc = uidOf(SERVICE_USER);
  if (svc !== undefined) {
    return st.uid === svc
      ? { check, level: 'ok', detail: `data directory owned by ${SERVICE_USER} (uid ${svc})` }
      : { check, level: 'warn', detail: `data directory owned by uid ${st.uid}, not the service user ${SERVICE_USER}` };
  }
  return st.uid === 0
    ? { check, level: 'warn', detail: 'no dedicated service user and the data directory belongs to root' }
    : {
        check,
        level: 'ok',
        detail: `data directory owned by uid ${st.uid} (no ${SERVICE_USER} user: not installed as a service)`,
      };
}

export async function checkPosture(config: Config, db: Db, now = Date.now()): Promise<PostureCheck[]> {
  const out: PostureCheck[] = [...keyringFileChecks(config)];
  let keyring: Keyring | undefined;
  try {
    keyring = loadKeyring(config);
  } catch (e) {
    if (out.every((c) => c.level !== 'fail'))
      out.push({ check: 'keyring', level: 'fail', detail: (e as Error).message });
  }
  let pending: string[] | undefined;
  try {
    pending = (await migrationStatus(db)).pending;
  } catch (e) {
    out.push({ check: 'database', level: 'fail', detail: `unreachable (${(e as Error).message.split('\n')[0]})` });
  }
  if (keyring && pending?.length === 0) out.push(...keyChecks((await loadKeyState(db, keyring)).keyring, now));
  else if (keyring) out.push(...keyChecks(keyring, now));
  out.push(transportCheck(config));
  out.push(
    config.registration === 'open'
      ? { check: 'registration', level: 'warn', detail: 'open: anyone who reaches the server can create an account' }
      : { check: 'registration', level: 'ok', detail: config.registration },
  );
  const argonOk = config.argon2MemoryKib >= 19456 && config.argon2TimeCost >= 2;
  out.push({
    check: 'argon2',
    level: argonOk ? 'ok' : 'fail',
    detail: `argon2id m=${config.argon2MemoryKib} KiB, t=${config.argon2TimeCost}, p=${config.argon2Parallelism}${argonOk ? '' : ' (below OWASP minimum m=19456, t=2)'}`,
  });
  if (pending) {
    out.push(
      pending.length === 0
        ? { check: 'migrations', level: 'ok', detail: 'schema is current' }
        : { check: 'migrations', level: 'fail', detail: `${pending.length} pending: voicechat migrate up` },
    );
  }
  if (pending?.length === 0) {
    const chain = await verifyAuditChain(db);
    out.push(
      chain.ok
        ? { check: 'audit chain', level: 'ok', detail: `chain intact, ${chain.rows} rows` }
        : { check: 'audit chain', level: 'fail', detail: `broken at row ${chain.brokenAt}: ${chain.reason}` },
    );
  }
  const cfg = fileModeCheck('config file', config.configPath, 0);
  if (cfg) out.push(cfg);
  out.push(serviceUserCheck(config));
  return out;
}
