/**
 * Storage of messages: the only knex user of the messages feature, plus the group-committing writer
 * of the hot insert path (one per app, built by createApp).
 */
import type { Db, DbOptions, Queryable as Q } from '../db/knex.js';
import type { MessageRow } from './presenter.js';
import { SqliteMessageWriter } from './sqlite-writer.js';

export const DELETED_CONTENT = '[deleted]';

export const messageRepo = {
  find: (q: Q, id: string): Promise<MessageRow | undefined> => q('messages').where({ id }).first(),
  insert: (q: Q, row: MessageRow | MessageRow[]) => q('messages').insert(row),
  /** One page, newest first. With `after`, the page nearest the cursor (then still newest first). */
  page: async (
    q: Q,
    channelId: string,
    cursor: { before?: string | undefined; after?: string | undefined },
    limit: number,
  ): Promise<MessageRow[]> => {
    const query = q('messages').where({ channel_id: channelId }).limit(limit);
    if (cursor.before) query.andWhere('id', '<', cursor.before);
    if (cursor.after) query.andWhere('id', '>', cursor.after);
    if (cursor.after) return (await query.orderBy('id', 'asc')).reverse();
    return query.orderBy('id', 'desc');
  },
  edit: (q: Q, id: string, patch: { content: string; nonce: string | null; edited_at: number }) =>
    q('messages').where({ id }).whereNull('deleted_at').update(patch),
  /**
   * GDPR scrub: the text and nonce are overwritten in the row itself, not hidden. `[deleted]` is not
   * ciphertext, so the row also stops being `encrypted` (which the encrypted_requires_nonce rule needs).
   */
  scrub: (q: Q, id: string, now: number) =>
    q('messages')
      .where({ id })
      .whereNull('deleted_at')
      .update({ content: DELETED_CONTENT, nonce: null, encrypted: false, deleted_at: now }),
};

interface Pending {
  row: MessageRow;
  resolve: () => void;
  reject: (e: unknown) => void;
}

/**
 * Group commit for plain message inserts: while one batch is being written, new rows queue up and
 * go out together as one multi-row INSERT (one statement, one transaction, one fsync). At low load a
 * batch is a single row, so nothing waits; under load the per-commit cost is shared. A failing batch
 * is retried row by row so each caller gets its own error.
 */
export class MessageWriter implements MessageInserter {
  readonly #db: Db;
  readonly #maxBatch: number;
  /** Batches written at once: Postgres overlaps their commits (its own group commit) on the pool. */
  readonly #maxConcurrent: number;
  #queue: Pending[] = [];
  #scheduled = false;
  #running = 0;

  constructor(db: Db, opts: { maxBatch?: number; maxConcurrent?: number } = {}) {
    this.#db = db;
    this.#maxBatch = opts.maxBatch ?? 256;
    this.#maxConcurrent = opts.maxConcurrent ?? 4;
  }

  async close(): Promise<void> {
    while (this.#queue.length > 0 || this.#scheduled || this.#running > 0) await new Promise((r) => setTimeout(r, 5));
  }

  insert(row: MessageRow): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#queue.push({ row, resolve, reject });
      this.#schedule();
    });
  }

  /** Rows arriving in the same turn of the event loop share a batch. */
  #schedule(): void {
    if (this.#scheduled || this.#queue.length === 0 || this.#running >= this.#maxConcurrent) return;
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      const batch = this.#queue.splice(0, this.#maxBatch);
      this.#running++;
      void this.#write(batch).finally(() => {
        this.#running--;
        this.#schedule();
      });
      this.#schedule();
    });
  }

  async #write(batch: Pending[]): Promise<void> {
    try {
      await this.#db('messages').insert(batch.map((p) => p.row));
      for (const p of batch) p.resolve();
    } catch {
      for (const p of batch) {
        try {
          await this.#db('messages').insert(p.row);
          p.resolve();
        } catch (e) {
          p.reject(e);
        }
      }
    }
  }
}

export interface MessageInserter {
  insert(row: MessageRow): Promise<void>;
  close(): Promise<void>;
}

/**
 * The app's message inserter: on a SQLite file, a worker-thread writer (see sqlite-writer.ts, started
 * on first use); otherwise (Postgres, in-memory SQLite) group commit through knex.
 */
export function createMessageWriter(db: Db, opts: DbOptions): MessageInserter {
  return opts.dialect === 'sqlite' && opts.sqliteFile && opts.sqliteFile !== ':memory:'
    ? new SqliteMessageWriter(opts.sqliteFile, { busyTimeoutMs: opts.sqliteBusyTimeoutMs })
    : new MessageWriter(db);
}
