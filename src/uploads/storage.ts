/**
 * Where attachment bytes live: `<dataDir>/uploads/<random name>`. Stored names are generated here
 * (never derived from the client's filename), so nothing a client sends can point outside the dir.
 */
import { mkdirSync } from 'node:fs';
import { unlink } from 'node:fs/promises';
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
