/**
 * Takes one-time keys for claims. On Postgres each claim is its own transaction (claimers skip each
 * other's locked rows, so they do not queue). On a SQLite file a durable commit costs an fsync
 * (synchronous=FULL, ~3 ms here), and better-sqlite3 commits synchronously: on the main thread that
 * would stall every request and cap claims at a few hundred per second. So, like the message writer
 * (src/messages/sqlite-writer.ts), a worker thread with its own connection takes the keys: claims
 * arriving while a batch is being written form the next batch, one transaction and one fsync each.
 * A claim's keys are handed out only after its batch committed; if a batch fails, none of its keys
 * left the database and every claim in it gets the error (SQLITE_BUSY → 503 through the translator).
 */
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import type { Db, DbOptions } from '../db/knex.js';
import { sqlitePragmas } from '../db/knex.js';
import { oneTimeKeyRepo } from './repo.js';

export type TakenKey = { key_id: string; key: string } | undefined;

export interface KeyClaimer {
  /** Takes the oldest one-time key of each device (by row id), atomically; undefined where none is left. */
  take(deviceRowIds: string[]): Promise<TakenKey[]>;
  close(): Promise<void>;
}

export const CLAIM_BATCH_MAX = 512;

/** Postgres, or SQLite in memory: one transaction per claim on the app's pool. */
class PoolClaimer implements KeyClaimer {
  readonly #db: Db;
  constructor(db: Db) {
    this.#db = db;
  }
  take(deviceRowIds: string[]): Promise<TakenKey[]> {
    return this.#db.transaction(async (trx) => {
      const out: TakenKey[] = [];
      for (const id of deviceRowIds) out.push(await oneTimeKeyRepo.take(trx, id));
      return out;
    });
  }
  async close(): Promise<void> {}
}

const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.driver);
const db = new Database(workerData.file);
for (const pragma of workerData.pragmas) db.pragma(pragma);
const take = db.prepare('DELETE FROM one_time_keys WHERE id = (SELECT id FROM one_time_keys WHERE device_id = ? ORDER BY created_at, id LIMIT 1) RETURNING key_id, key');
const batch = db.transaction((claims) => claims.map((ids) => ids.map((id) => take.get(id) || null)));
parentPort.on('message', (m) => {
  if (m.close) { db.close(); parentPort.close(); return; }
  try { parentPort.postMessage({ id: m.id, results: batch(m.claims) }); }
  catch (e) { parentPort.postMessage({ id: m.id, error: { code: e.code, message: e.message } }); }
});
`;

interface Pending {
  ids: string[];
  resolve: (keys: TakenKey[]) => void;
  reject: (err: unknown) => void;
}

type Reply =
  | { id: number; results: ({ key_id: string; key: string } | null)[][] }
  | { id: number; error: { code: string; message: string } };

/** A SQLite file: a worker thread with its own connection takes the keys, one batch at a time. */
class SqliteClaimWorker implements KeyClaimer {
  readonly #file: string;
  readonly #busyTimeoutMs: number | undefined;
  #worker: Worker | undefined;
  #queue: Pending[] = [];
  #inFlight = new Map<number, Pending[]>();
  #nextId = 1;
  #closed = false;

  constructor(file: string, busyTimeoutMs?: number) {
    this.#file = file;
    this.#busyTimeoutMs = busyTimeoutMs;
  }

  #ensureWorker(): Worker {
    if (this.#worker) return this.#worker;
    const driver = createRequire(import.meta.url).resolve('better-sqlite3');
    const worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: { file: this.#file, driver, pragmas: sqlitePragmas(this.#busyTimeoutMs) },
    });
    worker.unref();
    worker.on('message', (m: Reply) => {
      const batch = this.#inFlight.get(m.id) ?? [];
      this.#inFlight.delete(m.id);
      if ('error' in m) {
        const err = Object.assign(new Error(m.error.message), { code: m.error.code });
        for (const p of batch) p.reject(err);
      } else {
        for (const [i, p] of batch.entries()) p.resolve((m.results[i] ?? []).map((k) => k ?? undefined));
      }
      this.#send();
    });
    const died = (err: unknown) => {
      if (this.#worker !== worker) return;
      this.#worker = undefined;
      const e = err instanceof Error ? err : new Error('key claimer stopped');
      for (const batch of this.#inFlight.values()) for (const p of batch) p.reject(e);
      this.#inFlight.clear();
      if (!this.#closed) this.#send();
    };
    worker.on('error', died);
    worker.on('exit', () => died(new Error('key claimer stopped')));
    this.#worker = worker;
    return worker;
  }

  take(deviceRowIds: string[]): Promise<TakenKey[]> {
    if (this.#closed) return Promise.reject(new Error('key claimer closed'));
    if (deviceRowIds.length === 0) return Promise.resolve([]);
    return new Promise((resolve, reject) => {
      this.#queue.push({ ids: deviceRowIds, resolve, reject });
      this.#send();
    });
  }

  /** One batch in flight at a time: claims arriving meanwhile form the next batch. */
  #send(): void {
    if (this.#inFlight.size > 0 || this.#queue.length === 0) return;
    const batch = this.#queue.splice(0, CLAIM_BATCH_MAX);
    const id = this.#nextId++;
    this.#inFlight.set(id, batch);
    this.#ensureWorker().postMessage({ id, claims: batch.map((p) => p.ids) });
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    while (this.#inFlight.size > 0 || this.#queue.length > 0) await new Promise((r) => setTimeout(r, 5));
    const worker = this.#worker;
    if (!worker) return;
    this.#worker = undefined;
    const exited = new Promise((r) => worker.once('exit', r));
    worker.postMessage({ close: true });
    await exited;
  }
}

export function createKeyClaimer(db: Db, opts: DbOptions): KeyClaimer {
  return opts.dialect === 'sqlite' && opts.sqliteFile && opts.sqliteFile !== ':memory:'
    ? new SqliteClaimWorker(opts.sqliteFile, opts.sqliteBusyTimeoutMs)
    : new PoolClaimer(db);
}
