/**
 * Group commit for one-time key claims on SQLite. A durable SQLite commit costs an fsync
 * (synchronous=FULL, ~3 ms on this machine), which alone would cap claims at a few hundred per second;
 * so claims that arrive while a batch is being written wait and go together into the next transaction
 * (one fsync for the batch). Each claim's keys are handed out only after its batch committed; if the
 * batch fails, none of its keys left the database and every claim in it gets the error. On Postgres
 * every claim is its own transaction (claimers skip each other's locked rows, so they do not queue).
 */
import type { Knex } from 'knex';
import type { Db, Dialect } from '../db/knex.js';

interface Job<T> {
  run: (trx: Knex.Transaction) => Promise<T>;
  resolve: (value: T) => void;
  reject: (err: unknown) => void;
}

export const CLAIM_BATCH_MAX = 256;
const BATCH_GATHER_MS = 1;

export class ClaimBatcher {
  readonly #db: Db;
  readonly #grouped: boolean;
  #queue: Job<unknown>[] = [];
  #writing = false;

  constructor(db: Db, dialect: Dialect) {
    this.#db = db;
    this.#grouped = dialect === 'sqlite';
  }

  /** Runs `fn` in a transaction (shared with other claims on SQLite); resolves after the commit. */
  run<T>(fn: (trx: Knex.Transaction) => Promise<T>): Promise<T> {
    if (!this.#grouped) return this.#db.transaction(fn);
    return new Promise<T>((resolve, reject) => {
      this.#queue.push({ run: fn, resolve, reject } as Job<unknown>);
      if (!this.#writing) void this.#drain();
    });
  }

  async #drain(): Promise<void> {
    this.#writing = true;
    try {
      while (this.#queue.length > 0) {
        // Let the claims whose reads are in flight (the pool's one SQLite connection is free now)
        // join this batch: a millisecond of latency buys one fsync for many claims.
        await new Promise((resolve) => setTimeout(resolve, BATCH_GATHER_MS));
        const batch = this.#queue.splice(0, CLAIM_BATCH_MAX);
        const results: unknown[] = [];
        try {
          await this.#db.transaction(async (trx) => {
            for (const job of batch) results.push(await job.run(trx));
          });
        } catch (err) {
          for (const job of batch) job.reject(err);
          continue;
        }
        for (const [i, job] of batch.entries()) job.resolve(results[i]);
      }
    } finally {
      this.#writing = false;
    }
  }
}
