/**
 * Schedules every job in `serve` with node-cron. node-cron's noOverlap keeps one run per job on this
 * node; the lease in runJob keeps one run per job across nodes. Owned by the app: stop() ends it.
 */
import cron, { type ScheduledTask } from 'node-cron';
import type { Metrics } from '../metrics.js';
import type { Job, JobDeps } from './job.js';
import { leaseOwner, runJob } from './runner.js';

export class JobScheduler {
  #tasks: ScheduledTask[] = [];
  #running = new Set<Promise<unknown>>();
  #owner = leaseOwner();

  private constructor(
    private readonly deps: JobDeps & { metrics?: Metrics },
    jobs: readonly Job[],
  ) {
    for (const job of jobs) {
      const task = cron.schedule(
        job.schedule,
        () => {
          const p = runJob(this.deps, job, { owner: this.#owner });
          this.#running.add(p);
          return p.finally(() => this.#running.delete(p));
        },
        { name: job.name, noOverlap: true },
      );
      this.#tasks.push(task);
    }
  }

  static start(deps: JobDeps & { metrics?: Metrics }, jobs: readonly Job[]): JobScheduler {
    return new JobScheduler(deps, jobs);
  }

  /** Stops scheduling and waits for runs in progress (each is bounded). */
  async stop(): Promise<void> {
    await Promise.all(this.#tasks.map((t) => t.destroy()));
    this.#tasks = [];
    await Promise.allSettled([...this.#running]);
  }
}
