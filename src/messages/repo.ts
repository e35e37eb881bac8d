/** Storage of messages and their attachment links: the only knex user of the messages feature. */
import type { Knex } from 'knex';
import { type Db, dialectOf, sqliteSettingsOf } from '../db/knex.js';
import type { AttachmentRow, MessageRow } from './presenter.js';
import { SqliteMessageWriter } from './sqlite-writer.js';

type Q = Db | Knex.Transaction;

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

export const attachmentRepo = {
  find: (
    q: Q,
    id: string,
  ): Promise<(AttachmentRow & { storage_name: string; uploader_id: string | null }) | undefined> =>
    q('attachments').where({ id }).first(),
  insert: (q: Q, row: Record<string, unknown>) => q('attachments').insert(row),
  forMessages: (q: Q, messageIds: string[]): Promise<AttachmentRow[]> =>
    messageIds.length === 0
      ? Promise.resolve([])
      : q('attachments').whereIn('message_id', messageIds).orderBy('id', 'asc'),
  /** Links the caller's own unlinked uploads in this channel; returns how many matched. */
  link: (q: Q, ids: string[], messageId: string, channelId: string, uploaderId: string): Promise<number> =>
    q('attachments')
      .whereIn('id', ids)
      .where({ channel_id: channelId, uploader_id: uploaderId })
      .whereNull('message_id')
      .update({ message_id: messageId }),
  /** Removes a message's attachment rows and returns their storage names (files go after commit). */
  detach: async (q: Q, messageId: string): Promise<string[]> => {
    const rows: { storage_name: string }[] = await q('attachments')
      .where({ message_id: messageId })
      .select('storage_name');
    await q('attachments').where({ message_id: messageId }).delete();
    return rows.map((r) => r.storage_name);
  },
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

const writers = new WeakMap<Db, MessageInserter>();

/**
 * The app's message inserter: on a SQLite file, a worker-thread writer (see sqlite-writer.ts);
 * otherwise (Postgres, in-memory SQLite) group commit through knex.
 */
export function messageWriter(db: Db): MessageInserter {
  let w = writers.get(db);
  if (!w) {
    const sqlite = dialectOf(db) === 'sqlite' ? sqliteSettingsOf(db) : undefined;
    w =
      sqlite && sqlite.file !== ':memory:'
        ? new SqliteMessageWriter(sqlite.file, { busyTimeoutMs: sqlite.busyTimeoutMs })
        : new MessageWriter(db);
    writers.set(db, w);
  }
  return w;
}

/** Flushes and stops the app's message writer (before the database is closed). */
export async function closeMessageWriter(db: Db): Promise<void> {
  const w = writers.get(db);
  writers.delete(db);
  await w?.close();
}
