/**
 * One server per SQLite data directory. Two `serve` processes on one SQLite file split the clients
 * between them (a user's sockets miss each other's events), double every rate limit and fight over
 * the write lock; on one upload directory each one's orphan sweep could remove the other's files.
 *
 * The lock is a file created atomically with its content (written to a private temporary name, then
 * hard-linked into place: `link` fails if the name exists). It records the holder's pid and the boot
 * id. A lock whose process is gone — killed with SIGKILL, a crash, a reboot — is stale and is taken
 * over (renamed away first, so two servers starting at once cannot both take it).
 */
import { linkSync, mkdirSync, readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { randomToken } from '../crypto/random.js';
import { ConfigError } from '../errors.js';

export const LOCK_NAME = 'voicechat.lock';

interface LockContent {
  pid: number;
  boot_id: string;
  started_at: string;
}

export interface InstanceLock {
  readonly files: string[];
  /** Removes the lock files this process holds (idempotent; also run on process exit). */
  release(): void;
}

function bootId(): string {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    return '';
  }
}

function readLock(file: string): LockContent | undefined {
  try {
    const c = JSON.parse(readFileSync(file, 'utf8')) as Partial<LockContent>;
    return typeof c.pid === 'number' && Number.isInteger(c.pid) && c.pid > 0
      ? { pid: c.pid, boot_id: String(c.boot_id ?? ''), started_at: String(c.started_at ?? '') }
      : undefined;
  } catch {
    return undefined;
  }
}

/** Is the process that wrote this lock still running (same boot, pid alive)? */
function holderAlive(c: LockContent): boolean {
  const boot = bootId();
  if (c.boot_id && boot && c.boot_id !== boot) return false;
  try {
    process.kill(c.pid, 0);
    return true;
  } catch (e) {
    // EPERM: alive but someone else's; ESRCH: gone.
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function tryCreate(file: string, content: string): boolean {
  const temp = path.join(path.dirname(file), `.${path.basename(file)}.${randomToken(8)}`);
  writeFileSync(temp, content, { mode: 0o600, flag: 'wx' });
  try {
    linkSync(temp, file);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw e;
  } finally {
    unlinkSync(temp);
  }
}

function acquireOne(file: string, what: string): void {
  const content = JSON.stringify({ pid: process.pid, boot_id: bootId(), started_at: new Date().toISOString() });
  for (let attempt = 0; attempt < 5; attempt++) {
    if (tryCreate(file, content)) return;
    const holder = readLock(file);
    if (holder && holderAlive(holder)) {
      throw new ConfigError([
        `another voicechat server (pid ${holder.pid}) is already running on ${what} (lock ${file}); stop it first — one server per SQLite database`,
      ]);
    }
    // Stale (its process is gone) or unreadable: move it aside; only one contender's rename succeeds.
    const aside = `${file}.stale-${randomToken(8)}`;
    try {
      renameSync(file, aside);
      unlinkSync(aside);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
  }
  throw new ConfigError([`could not take the lock ${file} (it keeps changing); is another server starting?`]);
}

/**
 * Takes the lock of each directory (the data directory and, when elsewhere, the SQLite file's), or
 * throws a ConfigError naming the running holder.
 */
export function acquireInstanceLock(dirs: string[]): InstanceLock {
  const files = [...new Set(dirs.map((d) => path.join(path.resolve(d), LOCK_NAME)))];
  const held: string[] = [];
  const release = () => {
    for (const f of held.splice(0)) {
      try {
        if (readLock(f)?.pid === process.pid) unlinkSync(f);
      } catch {
        // already gone
      }
    }
    process.off('exit', release);
  };
  try {
    for (const f of files) {
      mkdirSync(path.dirname(f), { recursive: true, mode: 0o700 });
      acquireOne(f, path.dirname(f));
      held.push(f);
    }
  } catch (e) {
    release();
    throw e;
  }
  process.on('exit', release);
  return { files, release };
}
