/** Every scheduled job, in the order `voicechat jobs list` shows them. */
import { auditRetention } from './audit-retention.js';
import { oneTimeKeys, toDeviceMessages } from './e2ee-cleanup.js';
import { expiredResetTokens } from './expired-reset-tokens.js';
import { expiredSessions } from './expired-sessions.js';
import type { Job } from './job.js';
import { orphanUploads } from './orphan-uploads.js';
import { sqliteMaintenance } from './sqlite-maintenance.js';

export const JOBS: readonly Job[] = [
  expiredSessions,
  expiredResetTokens,
  toDeviceMessages,
  oneTimeKeys,
  auditRetention,
  orphanUploads,
  sqliteMaintenance,
];

export const jobByName = (name: string): Job | undefined => JOBS.find((j) => j.name === name);
