/** Audit log queries for the operator's tools (listing, verification, retention): the audit repo. */
import type { Knex } from 'knex';
import type { Db } from '../db/knex.js';
import type { AuditRow } from './writer.js';

type Q = Db | Knex.Transaction;

export const CHECKPOINT_ACTION = 'audit.checkpoint';

/** The account of a username (for `--user NAME`), read here so audit does not depend on the users feature. */
export const userIdByName = (db: Q, username: string): Promise<{ id: string } | undefined> =>
  db('users').where({ username }).first('id');

export interface AuditFilter {
  userId?: string | undefined;
  action?: string | undefined;
  sinceMs?: number | undefined;
  untilMs?: number | undefined;
  limit: number;
}

/** Newest first, like every list of the product. `action` ending in `.*` matches the prefix. */
export function listRows(db: Q, f: AuditFilter): Promise<AuditRow[]> {
  const q = db('audit_log').orderBy('id', 'desc').limit(f.limit);
  if (f.userId) q.where('user_id', f.userId);
  if (f.action) {
    if (f.action.endsWith('.*')) q.where('action', 'like', `${f.action.slice(0, -1).replace(/[%_\\]/g, '\\$&')}%`);
    else q.where('action', f.action);
  }
  if (f.sinceMs !== undefined) q.where('created_at', '>=', f.sinceMs);
  if (f.untilMs !== undefined) q.where('created_at', '<', f.untilMs);
  return q;
}

/** Rows after `afterId` in chain order. */
export const rowsAfter = (db: Q, afterId: number, limit: number): Promise<AuditRow[]> =>
  db('audit_log').where('id', '>', afterId).orderBy('id').limit(limit);

/** The newest retention checkpoint, if the log was ever pruned. */
export const latestCheckpoint = (db: Q): Promise<AuditRow | undefined> =>
  db('audit_log').where('action', CHECKPOINT_ACTION).orderBy('id', 'desc').first();

export const chainHead = (db: Q): Promise<{ last_id: number; last_hash: string } | undefined> =>
  db('audit_chain_head').where({ id: 1 }).first();

/** Locks the chain head (Postgres: FOR UPDATE; SQLite's writer lock already serialises). */
export const lockChainHead = (trx: Knex.Transaction) => trx('audit_chain_head').where({ id: 1 }).forUpdate().first();

/** The newest row created before `cutoffMs`, at most `maxId`. */
export async function lastRowBefore(db: Q, cutoffMs: number, maxId: number): Promise<AuditRow | undefined> {
  return db('audit_log').where('created_at', '<', cutoffMs).andWhere('id', '<=', maxId).orderBy('id', 'desc').first();
}

export const firstRow = (db: Q): Promise<AuditRow | undefined> => db('audit_log').orderBy('id').first();

export const rowById = (db: Q, id: number): Promise<AuditRow | undefined> => db('audit_log').where({ id }).first();

export const deleteThrough = (trx: Knex.Transaction, id: number): Promise<number> =>
  trx('audit_log').where('id', '<=', id).delete();
