/**
 * Uploads no message uses after 24 h: attachment rows never linked to a message (and their files),
 * and files in the upload directory with no row at all (left by interrupted uploads) once they are a
 * day old, and `.part` files of interrupted uploads nobody has written to for 10 minutes, so an
 * upload in progress is never touched.
 */
import { readdir, stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import { removeStoredFiles, sweepPartialUploads, uploadDir } from '../uploads/storage.js';
import { DAY_MS, type Job, MAX_BATCHES } from './job.js';
import * as repo from './repo.js';

const BATCH = 1000;
const MAX_FILES_PER_RUN = 100_000;

export const orphanUploads: Job = {
  name: 'orphan-uploads',
  schedule: '29 * * * *',
  summary:
    'Delete uploads no message uses after 24 hours, stray files in the upload directory, and partial files of interrupted uploads.',
  async run({ db, config, logger }, now) {
    const cutoff = now - DAY_MS;
    let rows = 0;
    for (let i = 0; i < MAX_BATCHES; i++) {
      const batch = await repo.orphanAttachments(db, cutoff, BATCH);
      const names = await repo.deleteOrphanAttachments(
        db,
        batch.map((a) => a.id),
      );
      await removeStoredFiles(config.dataDir, names, logger);
      rows += names.length;
      if (batch.length < BATCH) break;
    }
    const dir = uploadDir(config.dataDir);
    const old: string[] = [];
    for (const name of (await readdir(dir)).slice(0, MAX_FILES_PER_RUN)) {
      const st = await stat(path.join(dir, name)).catch(() => undefined);
      if (st?.isFile() && st.mtimeMs < cutoff) old.push(name);
    }
    const known = await repo.knownStorageNames(db, old);
    const strays = old.filter((n) => !known.has(n));
    await Promise.all(strays.map((n) => unlink(path.join(dir, n)).catch(() => undefined)));
    const partial = await sweepPartialUploads(config.dataDir, now);
    return { removed: rows, stray_files: strays.length, partial_files: partial };
  },
};
