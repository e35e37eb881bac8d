/** Refresh-token rows past their expiry (the seed's cleanup_expired_sessions). */
import { drain, type Job } from './job.js';
import * as repo from './repo.js';

export const expiredSessions: Job = {
  name: 'expired-sessions',
  schedule: '17 * * * *',
  summary: 'Delete refresh-token sessions past their expiry.',
  run: async ({ db }, now) => ({ removed: await drain((limit) => repo.deleteExpiredSessions(db, now, limit)) }),
};
