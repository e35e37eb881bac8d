/** Audit rows older than VOICECHAT_AUDIT_RETENTION_DAYS, pruned behind a checkpoint (--verify still passes). */
import { pruneAuditLog } from '../audit/retention.js';
import { DAY_MS, type Job } from './job.js';

const ROWS_PER_CHECKPOINT = 10_000;
const MAX_CHECKPOINTS = 20;

export const auditRetention: Job = {
  name: 'audit-retention',
  schedule: '13 4 * * *',
  summary: 'Delete audit rows past the retention period, leaving a verifiable checkpoint.',
  async run({ db, config }, now) {
    const cutoff = now - config.auditRetentionDays * DAY_MS;
    let removed = 0;
    let checkpoints = 0;
    for (let i = 0; i < MAX_CHECKPOINTS; i++) {
      const r = await pruneAuditLog(db, cutoff, ROWS_PER_CHECKPOINT);
      if (r.removed === 0) break;
      removed += r.removed;
      checkpoints++;
    }
    return { removed, checkpoints };
  },
};
