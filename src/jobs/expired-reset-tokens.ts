/** Password-reset tokens past their expiry (used or not). */
import { drain, type Job } from './job.js';
import * as repo from './repo.js';

export const expiredResetTokens: Job = {
  name: 'expired-reset-tokens',
  schedule: '23 * * * *',
  summary: 'Delete password-reset tokens past their expiry.',
  run: async ({ db }, now) => ({ removed: await drain((limit) => repo.deleteExpiredResetTokens(db, now, limit)) }),
};
