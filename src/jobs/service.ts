/** `voicechat jobs`: the jobs with their last run, and running one on demand (under the same lease). */
import type { Db } from '../db/knex.js';
import { errors } from '../errors.js';
import { iso } from '../ids.js';
import type { Metrics } from '../metrics.js';
import { JOBS, jobByName } from './index.js';
import type { JobDeps } from './job.js';
import * as repo from './repo.js';
import { type RunOutcome, runJob } from './runner.js';

export interface JobListing {
  name: string;
  schedule: string;
  summary: string;
  last_started_at: string | null;
  last_finished_at: string | null;
  last_status: string | null;
  last_result: Record<string, number> | null;
  last_error: string | null;
  last_duration_ms: number | null;
  running: boolean;
}

export async function listJobs(db: Db, now = Date.now()): Promise<JobListing[]> {
  const runs = new Map((await repo.allRuns(db)).map((r) => [r.name, r]));
  return JOBS.map((job) => {
    const r = runs.get(job.name);
    return {
      name: job.name,
      schedule: job.schedule,
      summary: job.summary,
      last_started_at: iso(r?.last_started_at),
      last_finished_at: iso(r?.last_finished_at),
      last_status: r?.last_status ?? null,
      last_result: r?.last_result ? JSON.parse(r.last_result) : null,
      last_error: r?.last_error ?? null,
      last_duration_ms: r?.last_duration_ms ?? null,
      running: Boolean(r?.lease_until && Number(r.lease_until) > now),
    };
  });
}

export async function runJobNow(deps: JobDeps & { metrics?: Metrics }, name: string): Promise<RunOutcome> {
  const job = jobByName(name);
  if (!job) throw errors.notFound(`No job named "${name}" (jobs: ${JOBS.map((j) => j.name).join(', ')}).`);
  return runJob(deps, job);
}
