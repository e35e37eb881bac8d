/**
 * Where attachment bytes live: `<dataDir>/uploads/<random name>`. Stored names are generated here
 * (never derived from the client's filename), so nothing a client sends can point outside the dir.
 */
import { mkdirSync } from 'node:fs';
import { readdir, stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import { randomToken } from '../crypto/random.js';
import type { Logger } from '../logger.js';

const STORAGE_NAME = /^[A-Za-z0-9_-]{16,64}$/;

export function uploadDir(dataDir: string): string {
  const dir = path.resolve(dataDir, 'uploads');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  return dir;
}

export const newStorageName = (): string => randomToken(24);

/**
 * An upload in progress is written to `<storage name>.part` and renamed to its storage name only once
 * it passed every check; an abort or error deletes it. A `.part` left by a killed server is removed by
 * `sweepPartialUploads` (at start-up and hourly). The suffix keeps it out of STORAGE_NAME.
 */
export const PART_SUFFIX = '.part';
const PART_NAME = /^[A-Za-z0-9_-]{16,64}\.part$/;

/**
 * A `.part` file nobody has written to for this long is no live upload: uWS closes a connection that
 * sends nothing for 10 s, which aborts (and deletes) its upload. Generous, because several nodes may
 * share one upload directory and one node's sweep must never take another's upload in progress.
 */
export const PART_STALE_MS = 10 * 60_000;

export function partPath(dataDir: string, storageName: string): string {
  return `${storagePath(dataDir, storageName)}${PART_SUFFIX}`;
}

/** Deletes `.part` files untouched for `staleMs` (default PART_STALE_MS); returns how many. */
export async function sweepPartialUploads(dataDir: string, now = Date.now(), staleMs = PART_STALE_MS): Promise<number> {
  const dir = uploadDir(dataDir);
  let removed = 0;
  for (const name of await readdir(dir)) {
    if (!PART_NAME.test(name)) continue;
    const file = path.join(dir, name);
    const st = await stat(file).catch(() => undefined);
    if (!st?.isFile() || now - st.mtimeMs < staleMs) continue;
    await unlink(file).then(
      () => removed++,
      () => undefined,
    );
  }
  return removed;
}

/** The absolute path of a stored file; refuses anything that is not one of our generated names. */
export function storagePath(dataDir: string, storageName: string): string {
  if (!STORAGE_NAME.test(storageName)) throw new Error('invalid storage name');
  return path.join(uploadDir(dataDir), storageName);
}

/** Deletes stored files (after the rows that referenced them are gone); missing files are fine. */
export async function removeStoredFiles(dataDir: string, storageNames: string[], logger: Logger): Promise<void> {
  await Promise.all(
    storageNames.map(async (name) => {
      try {
        await unlink(storagePath(dataDir, name));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') logger.warn({ err }, 'could not remove attachment file');
      }
    }),
  );
}
