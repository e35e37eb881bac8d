/**
 * The jobs' queries: `job_runs` (lease, last run and result) and the bounded deletes each cleanup
 * job performs. Every delete takes at most `limit` rows per statement; callers loop within a bound.
 */
import type { Knex } from 'knex';
import type { Db } from '../db/knex.js';

type Q = Db | Knex.Transaction;

export interface JobRunRow {
  name: string;
  last_started_at: number | null;
  last_finished_at: number | null;
  last_status: string | null;
  last_error: string | null;
  last_result: string | null;
  last_duration_ms: number | null;
  lease_owner: string | null;
  lease_until: number | null;
}

export const allRuns = (db: Q): Promise<JobRunRow[]> => db('job_runs').select('*');

/** Takes the job's lease when nobody holds a live one; true when this owner now holds it. */
export async function acquireLease(db: Q, name: string, owner: string, now: number, untilMs: number): Promise<boolean> {
  await db('job_runs').insert({ name }).onConflict('name').ignore();
  const n = await db('job_runs')
    .where({ name })
    .andWhere((q) => q.whereNull('lease_until').orWhere('lease_until', '<', now))
    .update({ lease_owner: owner, lease_until: untilMs, last_started_at: now });
  return n === 1;
}

export const leaseHolder = (db: Q, name: string): Promise<Pick<JobRunRow, 'lease_owner' | 'lease_until'> | undefined> =>
  db('job_runs').where({ name }).first('lease_owner', 'lease_until');

export async function releaseLease(
  db: Q,
  name: string,
  owner: string,
  outcome: {
    status: 'ok' | 'failed';
    error: string | null;
    result: string | null;
    durationMs: number;
    finishedAt: number;
  },
): Promise<void> {
  await db('job_runs')
    .where({ name, lease_owner: owner })
    .update({
      lease_owner: null,
      lease_until: null,
      last_finished_at: outcome.finishedAt,
      last_status: outcome.status,
      last_error: outcome.error,
      last_duration_ms: outcome.durationMs,
      ...(outcome.result !== null ? { last_result: outcome.result } : {}),
    });
}

/**
 * Deletes up to `limit` rows of `table` matching `where` (oldest ids first) and returns how many; one
 * statement, so each call is short and the caller bounds the total.
 */
async function deleteSome(db: Q, table: string, where: (q: Knex.QueryBuilder) => void, limit: number): Promise<number> {
  const ids = db(table).select('id').where(where).orderBy('id').limit(limit);
  return db(table).whereIn('id', ids).delete();
}

export const deleteExpiredSessions = (db: Q, now: number, limit: number) =>
  deleteSome(db, 'sessions', (q) => q.where('expires_at', '<', now), limit);

export const deleteExpiredResetTokens = (db: Q, now: number, limit: number) =>
  deleteSome(db, 'password_reset_tokens', (q) => q.where('expires_at', '<', now), limit);

export const deleteToDeviceMessages = (db: Q, createdBefore: number, now: number, limit: number) =>
  deleteSome(
    db,
    'to_device_messages',
    (q) => q.where('created_at', '<', createdBefore).orWhere('expires_at', '<', now),
    limit,
  );

export const deleteOneTimeKeys = (db: Q, createdBefore: number, limit: number) =>
  deleteSome(db, 'one_time_keys', (q) => q.where('created_at', '<', createdBefore), limit);

/** Attachments never linked to a message, uploaded before `createdBefore`. */
export const orphanAttachments = (
  db: Q,
  createdBefore: number,
  limit: number,
): Promise<{ id: string; storage_name: string }[]> =>
  db('attachments')
    .whereNull('message_id')
    .andWhere('created_at', '<', createdBefore)
    .orderBy('id')
    .limit(limit)
    .select('id', 'storage_name');

/** Deletes the given orphan rows, re-checking they are still unlinked; returns the storage names removed. */
export async function deleteOrphanAttachments(db: Q, ids: string[]): Promise<string[]> {
  if (ids.length === 0) return [];
  return db.transaction(async (trx) => {
    const still: { id: string; storage_name: string }[] = await trx('attachments')
      .whereIn('id', ids)
      .whereNull('message_id')
      .select('id', 'storage_name');
    await trx('attachments')
      .whereIn(
        'id',
        still.map((r) => r.id),
      )
      .whereNull('message_id')
      .delete();
    return still.map((r) => r.storage_name);
  });
}

/** Which of these storage names have an attachment row. */
export async function knownStorageNames(db: Q, names: string[]): Promise<Set<string>> {
  const out = new Set<string>();
  for (let i = 0; i < names.length; i += 500) {
    const rows: { storage_name: string }[] = await db('attachments')
      .whereIn('storage_name', names.slice(i, i + 500))
      .select('storage_name');
    for (const r of rows) out.add(r.storage_name);
  }
  return out;
}

/** SQLite housekeeping: planner statistics and a WAL checkpoint (truncating the WAL file). */
export async function sqliteMaintenance(db: Db): Promise<{ wal_pages: number; checkpointed: number }> {
  await db.raw('PRAGMA optimize');
  const rows = (await db.raw('PRAGMA wal_checkpoint(TRUNCATE)')) as {
    busy: number;
    log: number;
    checkpointed: number;
  }[];
  return { wal_pages: Number(rows[0]?.log ?? 0), checkpointed: Number(rows[0]?.checkpointed ?? 0) };
}
