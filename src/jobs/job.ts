/**
 * What a scheduled job is: a name, a cron schedule and a bounded, idempotent `run()` that returns
 * counts of what it did (logged, kept in job_runs, shown by `voicechat jobs list` and in /metrics).
 * Outline's pattern: one small module per job.
 */
import type { Config } from '../config/index.js';
import type { Db, Dialect } from '../db/knex.js';
import type { Logger } from '../logger.js';

export interface JobDeps {
  db: Db;
  dialect: Dialect;
  config: Config;
  logger: Logger;
}

export type JobResult = Record<string, number>;

export interface Job {
  name: string;
  /** node-cron expression (minute hour day month weekday), server local time. */
  schedule: string;
  summary: string;
  run(deps: JobDeps, now: number): Promise<JobResult>;
}

export const DAY_MS = 86_400_000;
/** Rows per delete statement, and statements per run: a run touches at most BATCH × MAX_BATCHES rows. */
export const BATCH = 5000;
export const MAX_BATCHES = 100;

/** Repeats a bounded delete until it removes less than a full batch or the bound is reached. */
export async function drain(step: (limit: number) => Promise<number>, batch = BATCH, maxBatches = MAX_BATCHES) {
  let total = 0;
  for (let i = 0; i < maxBatches; i++) {
    const n = await step(batch);
    total += n;
    if (n < batch) break;
  }
  return total;
}
