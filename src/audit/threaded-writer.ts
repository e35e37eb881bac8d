/**
 * A write and the audit row that records it, committed together — off the event loop on SQLite.
 * better-sqlite3 is synchronous and `synchronous=FULL` fsyncs at every commit (2–4 ms here): on the
 * main thread that froze every request behind each login. On a SQLite file, a worker thread owns a
 * second connection (like the message writer) and commits whatever queued while its previous fsync
 * ran as one `BEGIN IMMEDIATE` transaction: the rows, then the audit rows appended to the hash chain
 * in queue order, then the chain head. Callers resolve only after their commit, so durability is
 * unchanged; `audit --verify` checks the chain whichever connection wrote it.
 *
 * Elsewhere (Postgres, in-memory SQLite) it is an ordinary knex transaction per write.
 *
 * The worker source is a string (eval worker) so it loads the same way under tsx, vitest and dist.
 * Its chain hash is `rowHash` (writer.ts) spelled out again; the tests verify chains it wrote.
 */
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import { canonicalJson } from '../canonical-json.js';
import { type Db, type DbOptions, sqlitePragmas } from '../db/knex.js';
import { nowMs } from '../ids.js';
import { type AuditEntry, recordAudit } from './writer.js';

/** Rows to insert (table → row, trusted column names from our own code) and the audit entry. */
export interface AuditedWrite {
  inserts: { table: string; row: Record<string, string | number | null> }[];
  audit: AuditEntry;
}

export interface AuditedWriter {
  commit(write: AuditedWrite): Promise<void>;
  close(): Promise<void>;
}

const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const Database = require(workerData.driver);
const db = new Database(workerData.file);
for (const pragma of workerData.pragmas) db.pragma(pragma);
db.function('regexp', { deterministic: true }, (p, v) => (v == null ? null : new RegExp(String(p), 'u').test(String(v)) ? 1 : 0));
const statements = new Map();
const insert = (table, row) => {
  const cols = Object.keys(row);
  const sql = 'INSERT INTO "' + table + '" (' + cols.map((c) => '"' + c + '"').join(', ') + ') VALUES (' + cols.map(() => '?').join(', ') + ')';
  let s = statements.get(sql);
  if (!s) { s = db.prepare(sql); statements.set(sql, s); }
  s.run(...cols.map((c) => row[c]));
};
const head = db.prepare('SELECT last_id, last_hash FROM audit_chain_head WHERE id = 1');
const setHead = db.prepare('UPDATE audit_chain_head SET last_id = ?, last_hash = ? WHERE id = 1');
const j = JSON.stringify;
const rowHash = (prev, r) => createHash('sha256').update(prev + '{"action":' + j(r.action) + ',"created_at":' + j(Number(r.created_at)) + ',"id":' + j(Number(r.id)) + ',"ip_address":' + j(r.ip_address == null ? null : r.ip_address) + ',"metadata":' + j(r.metadata == null ? null : r.metadata) + ',"resource_id":' + j(r.resource_id == null ? null : r.resource_id) + ',"resource_type":' + j(r.resource_type == null ? null : r.resource_type) + ',"user_id":' + j(r.user_id == null ? null : r.user_id) + '}').digest('hex');
const apply = db.transaction((writes) => {
  const h = head.get();
  let id = Number(h.last_id);
  let last = h.last_hash;
  for (const w of writes) {
    for (const i of w.inserts) insert(i.table, i.row);
    id += 1;
    const row = { ...w.audit, id };
    const hash = rowHash(last, row);
    insert('audit_log', { ...row, prev_hash: last, hash });
    last = hash;
  }
  setHead.run(id, last);
});
parentPort.on('message', (m) => {
  if (m.close) { db.close(); parentPort.close(); return; }
  let errors = null;
  try { apply.immediate(m.writes); } catch (e) {
    if (String(e.code).startsWith('SQLITE_BUSY')) errors = m.writes.map(() => ({ code: e.code, message: e.message }));
    else errors = m.writes.map((w) => { try { apply.immediate([w]); return null; } catch (e) { return { code: e.code, message: e.message }; } });
  }
  parentPort.postMessage({ id: m.id, errors });
});
`;

interface Pending {
  resolve: () => void;
  reject: (e: unknown) => void;
}

interface WireAudit {
  user_id: string | null;
  action: string;
  resource_type: string | null;
  resource_id: string | null;
  ip_address: string | null;
  metadata: string;
  created_at: number;
}

class SqliteAuditedWriter implements AuditedWriter {
  readonly #file: string;
  readonly #busyTimeoutMs: number | undefined;
  #queue: { write: { inserts: AuditedWrite['inserts']; audit: WireAudit }; pending: Pending }[] = [];
  #inFlight = new Map<number, Pending[]>();
  #nextId = 1;
  #worker: Worker | undefined;
  #closed = false;

  constructor(file: string, busyTimeoutMs: number | undefined) {
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
      for (const batch of this.#inFlight.values()) for (const p of batch) p.reject(err);
      this.#inFlight.clear();
      if (!this.#closed) this.#send();
    };
    worker.on('error', died);
    worker.on('exit', () => died(new Error('audited writer stopped')));
    this.#worker = worker;
    return worker;
  }

  commit(write: AuditedWrite): Promise<void> {
    if (this.#closed) return Promise.reject(new Error('audited writer closed'));
    const a = write.audit;
    const audit: WireAudit = {
      user_id: a.userId ?? null,
      action: a.action,
      resource_type: a.resourceType ?? null,
      resource_id: a.resourceId ?? null,
      ip_address: a.ip ?? null,
      metadata: canonicalJson(a.metadata ?? {}),
      created_at: nowMs(),
    };
    return new Promise((resolve, reject) => {
      this.#queue.push({ write: { inserts: write.inserts, audit }, pending: { resolve, reject } });
      this.#send();
    });
  }

  /** One batch in flight: the lock goes back between batches, so main-thread writers are not starved. */
  #send(): void {
    if (this.#inFlight.size > 0 || this.#queue.length === 0) return;
    const batch = this.#queue.splice(0, 256);
    const id = this.#nextId++;
    this.#inFlight.set(
      id,
      batch.map((b) => b.pending),
    );
    this.#ensureWorker().postMessage({ id, writes: batch.map((b) => b.write) });
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

class KnexAuditedWriter implements AuditedWriter {
  readonly #db: Db;
  constructor(db: Db) {
    this.#db = db;
  }
  async commit(write: AuditedWrite): Promise<void> {
    await this.#db.transaction(async (trx) => {
      for (const i of write.inserts) await trx(i.table).insert(i.row);
      await recordAudit(trx, write.audit);
    });
  }
  async close(): Promise<void> {}
}

export function createAuditedWriter(db: Db, opts: DbOptions): AuditedWriter {
  return opts.dialect === 'sqlite' && opts.sqliteFile && opts.sqliteFile !== ':memory:'
    ? new SqliteAuditedWriter(opts.sqliteFile, opts.sqliteBusyTimeoutMs)
    : new KnexAuditedWriter(db);
}
