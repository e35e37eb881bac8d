/**
 * E2EE retention (the E2EE feature calls these too): queued to-device messages live 30 days (or until
 * their own expiry), unclaimed one-time keys 30 days. Plain, idempotent functions: each deletes what
 * is past the cutoff at `now`, bounded per call, and returns how many rows went.
 */
import type { Db } from '../db/knex.js';
import { DAY_MS, drain, type Job } from './job.js';
import * as repo from './repo.js';

export const TO_DEVICE_MAX_AGE_MS = 30 * DAY_MS;
export const ONE_TIME_KEY_MAX_AGE_MS = 30 * DAY_MS;

export const deleteExpiredToDeviceMessages = (db: Db, now = Date.now()): Promise<number> =>
  drain((limit) => repo.deleteToDeviceMessages(db, now - TO_DEVICE_MAX_AGE_MS, now, limit));

export const deleteStaleOneTimeKeys = (db: Db, now = Date.now()): Promise<number> =>
  drain((limit) => repo.deleteOneTimeKeys(db, now - ONE_TIME_KEY_MAX_AGE_MS, limit));

export const toDeviceMessages: Job = {
  name: 'to-device-messages',
  schedule: '41 3 * * *',
  summary: 'Delete queued to-device messages older than 30 days or past their expiry.',
  run: async ({ db }, now) => ({ removed: await deleteExpiredToDeviceMessages(db, now) }),
};

export const oneTimeKeys: Job = {
  name: 'one-time-keys',
  schedule: '47 3 * * *',
  summary: 'Delete unclaimed one-time keys older than 30 days.',
  run: async ({ db }, now) => ({ removed: await deleteStaleOneTimeKeys(db, now) }),
};
