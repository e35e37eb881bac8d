/**
 * Message inserts for SQLite on a worker thread. better-sqlite3 is synchronous, and with
 * `synchronous=FULL` every commit waits for an fsync (about 2 ms on this machine's disk): done on the
 * main thread, that stalls every request. The worker owns a second connection, commits each batch
 * in one transaction (one fsync), and answers per row, so the event loop keeps parsing requests
 * while the disk works, and the next batch forms meanwhile. Durability is unchanged: a caller's
 * promise resolves only after its row is committed.
 *
 * The worker source is a string (eval worker) so it loads the same way under tsx, vitest and dist.
 */
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import { sqlitePragmas } from '../db/knex.js';
import type { MessageRow } from './presenter.js';

const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.driver);
const db = new Database(workerData.file);
for (const pragma of workerData.pragmas) db.pragma(pragma);
db.function('regexp', { deterministic: true }, (p, v) => (v == null ? null : new RegExp(String(p), 'u').test(String(v)) ? 1 : 0));
const insert = db.prepare('INSERT INTO messages (id, channel_id, author_id, content, encrypted, nonce, reply_to, created_at, edited_at, deleted_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)');
const run = (r) => insert.run(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9]);
const all = db.transaction((rows) => { for (const r of rows) run(r); });
const one = db.transaction(run);
parentPort.on('message', (m) => {
  if (m.close) { db.close(); parentPort.close(); return; }
  let errors = null;
  try { all(m.rows); } catch (e) {
    // A lock held past busy_timeout fails the whole batch alike; row by row would wait again per row.
    if (String(e.code).startsWith('SQLITE_BUSY')) errors = m.rows.map(() => ({ code: e.code, message: e.message }));
    else errors = m.rows.map((r) => { try { one(r); return null; } catch (e) { return { code: e.code, message: e.message }; } });
  }
  parentPort.postMessage({ id: m.id, errors });
});
`;

type Tuple = [string, string, string | null, string, number, string | null, string | null, number, null, null];

interface Pending {
  resolve: () => void;
  reject: (e: unknown) => void;
}

export class SqliteMessageWriter {
  readonly #maxBatch: number;
  #queue: { row: Tuple; pending: Pending }[] = [];
  #inFlight = new Map<number, Pending[]>();
  #nextId = 1;
  #closed = false;

  readonly #file: string;
  #worker: Worker | undefined;

  readonly #busyTimeoutMs: number | undefined;

  constructor(file: string, opts: { maxBatch?: number; busyTimeoutMs?: number } = {}) {
    this.#file = file;
    this.#maxBatch = opts.maxBatch ?? 512;
    this.#busyTimeoutMs = opts.busyTimeoutMs;
  }

  /** Starts the worker on first use, and again after it died (its in-flight callers were failed). */
  #ensureWorker(): Worker {
    if (this.#worker) return this.#worker;
    const driver = createRequire(import.meta.url).resolve('better-sqlite3');
    const worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: { file: this.#file, driver, pragmas: sqlitePragmas(this.#busyTimeoutMs) },
    });
    worker.unref();
    worker.on('message', (m: { id: number; errors: ({ code: string; message: string } | null)[] | null }) => {
      const batch = this.#inFlight.get(m.id) ?? [];
      this.#inFlight.delete(m.id);
      batch.forEach((p, i) => {
        const err = m.errors?.[i];
        if (err) p.reject(Object.assign(new Error(err.message), { code: err.code }));
        else p.resolve();
      });
      this.#send();
    });
    const died = (err: unknown) => {
      if (this.#worker !== worker) return;
      this.#worker = undefined;
      this.#failInFlight(err instanceof Error ? err : new Error('message writer stopped'));
      if (!this.#closed) this.#send();
    };
    worker.on('error', died);
    worker.on('exit', () => died(new Error('message writer stopped')));
    this.#worker = worker;
    return worker;
  }

  insert(row: MessageRow): Promise<void> {
    if (this.#closed) return Promise.reject(new Error('message writer closed'));
    return new Promise((resolve, reject) => {
      this.#queue.push({
        row: [
          row.id,
          row.channel_id,
          row.author_id,
          row.content,
          row.encrypted ? 1 : 0,
          row.nonce,
          row.reply_to,
          row.created_at,
          null,
          null,
        ],
        pending: { resolve, reject },
      });
      this.#send();
    });
  }

  /** One batch in flight at a time: rows arriving meanwhile form the next batch. */
  #send(): void {
    if (this.#inFlight.size > 0 || this.#queue.length === 0) return;
    const batch = this.#queue.splice(0, this.#maxBatch);
    const id = this.#nextId++;
    this.#inFlight.set(
      id,
      batch.map((b) => b.pending),
    );
    this.#ensureWorker().postMessage({ id, rows: batch.map((b) => b.row) });
  }

  #failInFlight(err: unknown): void {
    for (const batch of this.#inFlight.values()) for (const p of batch) p.reject(err);
    this.#inFlight.clear();
  }

  /** Waits for queued rows, then closes the worker's connection. */
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
