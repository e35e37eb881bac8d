/** SQLite only: PRAGMA optimize and a WAL checkpoint (TRUNCATE) so the WAL file does not grow unbounded. */
import type { Job } from './job.js';
import * as repo from './repo.js';

export const sqliteMaintenance: Job = {
  name: 'sqlite-maintenance',
  schedule: '53 4 * * *',
  summary: 'SQLite: PRAGMA optimize and a WAL checkpoint (nothing on Postgres).',
  async run({ db, dialect }) {
    if (dialect !== 'sqlite') return { skipped: 1 };
    return repo.sqliteMaintenance(db);
  },
};
