/**
 * Runs one job under its lease: a row in job_runs that one holder at a time may take (any node, or
 * the CLI), expiring by itself if the holder dies. So a job never overlaps itself, on one node or
 * across nodes sharing the database. Records the outcome, logs what was removed, counts it in metrics.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { Metrics } from '../metrics.js';
import type { Job, JobDeps, JobResult } from './job.js';
import * as repo from './repo.js';

/** A lease outlives any bounded run by far; a crashed holder's lease expires after this. */
export const LEASE_MS = 30 * 60_000;

export type RunOutcome =
  | { job: string; status: 'ok'; result: JobResult; duration_ms: number }
  | { job: string; status: 'failed'; error: string; duration_ms: number }
  | { job: string; status: 'skipped'; reason: string };

export const leaseOwner = (): string => `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`.slice(0, 64);

export async function runJob(
  deps: JobDeps & { metrics?: Metrics },
  job: Job,
  opts: { owner?: string; now?: () => number } = {},
): Promise<RunOutcome> {
  const now = opts.now ?? Date.now;
  const owner = opts.owner ?? leaseOwner();
  const started = now();
  if (!(await repo.acquireLease(deps.db, job.name, owner, started, started + LEASE_MS))) {
    const holder = await repo.leaseHolder(deps.db, job.name);
    deps.metrics?.jobRuns.inc({ job: job.name, status: 'skipped' });
    return { job: job.name, status: 'skipped', reason: `already running (${holder?.lease_owner ?? 'another node'})` };
  }
  const t0 = performance.now();
  try {
    const result = await job.run(deps, started);
    const duration = Math.round(performance.now() - t0);
    await repo.releaseLease(deps.db, job.name, owner, {
      status: 'ok',
      error: null,
      result: JSON.stringify(result),
      durationMs: duration,
      finishedAt: now(),
    });
    deps.logger.info({ job: job.name, result, duration_ms: duration }, 'job finished');
    deps.metrics?.jobRuns.inc({ job: job.name, status: 'ok' });
    deps.metrics?.jobDuration.observe({ job: job.name }, duration / 1000);
    for (const [what, n] of Object.entries(result)) deps.metrics?.jobItems.inc({ job: job.name, what }, n);
    return { job: job.name, status: 'ok', result, duration_ms: duration };
  } catch (err) {
    const duration = Math.round(performance.now() - t0);
    const message = (err as Error).message?.split('\n')[0] ?? String(err);
    deps.logger.error({ err, job: job.name }, 'job failed');
    deps.metrics?.jobRuns.inc({ job: job.name, status: 'failed' });
    await repo
      .releaseLease(deps.db, job.name, owner, {
        status: 'failed',
        error: message,
        result: null,
        durationMs: duration,
        finishedAt: now(),
      })
      .catch(() => {});
    return { job: job.name, status: 'failed', error: message, duration_ms: duration };
  }
}
