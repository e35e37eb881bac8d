/**
 * Key rotation's tables: `key_rotations` (activation state every node applies, and resumable
 * progress), `server_nodes` (which key ids each running node holds and which rotation it applied) and
 * the batched reads and guarded re-encryption writes of encrypted columns.
 */
import type { Knex } from 'knex';
import type { KeyPurpose } from '../crypto/keyring.js';
import type { Db } from '../db/knex.js';

type Q = Db | Knex.Transaction;

export interface RotationRow {
  id: string;
  purpose: KeyPurpose;
  from_key_id: string | null;
  to_key_id: string;
  state: 'running' | 'done' | 'failed';
  cursor: string | null;
  rows_done: number;
  started_at: number;
  finished_at: number | null;
}

export const allRotations = (db: Q): Promise<RotationRow[]> => db('key_rotations').orderBy('id');

export const runningRotation = (db: Q, purpose: KeyPurpose): Promise<RotationRow | undefined> =>
  db('key_rotations').where({ purpose, state: 'running' }).orderBy('id', 'desc').first();

export async function insertRotation(db: Q, row: RotationRow): Promise<void> {
  await db('key_rotations').insert(row);
}

export async function saveProgress(db: Q, id: string, cursor: string | null, addRows: number): Promise<void> {
  await db('key_rotations')
    .where({ id })
    .update({ cursor, rows_done: db.raw('rows_done + ?', [addRows]) });
}

export async function finishRotation(db: Q, id: string, finishedAt: number): Promise<void> {
  await db('key_rotations').where({ id }).update({ state: 'done', finished_at: finishedAt });
}

export const getRotation = (db: Q, id: string): Promise<RotationRow | undefined> =>
  db('key_rotations').where({ id }).first();

// ── server nodes ────────────────────────────────────────────────────────────────────────────────

export interface NodeRow {
  node_id: string;
  hostname: string;
  pid: number;
  started_at: number;
  last_seen_at: number;
  heartbeat_ms: number;
  key_ids: string;
  rotation_seen: string | null;
}

export async function upsertNode(db: Q, row: NodeRow): Promise<void> {
  await db('server_nodes')
    .insert(row)
    .onConflict('node_id')
    .merge(['last_seen_at', 'key_ids', 'rotation_seen', 'heartbeat_ms']);
}

export async function deleteNode(db: Q, nodeId: string): Promise<void> {
  await db('server_nodes').where({ node_id: nodeId }).delete();
}

/** Forgets nodes that stopped reporting long ago (crashed without deleting their row). */
export async function deleteStaleNodes(db: Q, seenBefore: number): Promise<void> {
  await db('server_nodes').where('last_seen_at', '<', seenBefore).delete();
}

/** Nodes that reported within three of their heartbeat intervals. */
export async function liveNodes(db: Q, now: number): Promise<NodeRow[]> {
  const rows: NodeRow[] = await db('server_nodes').select('*');
  return rows.filter((r) => Number(r.last_seen_at) + 3 * Number(r.heartbeat_ms) > now);
}

// ── encrypted columns ───────────────────────────────────────────────────────────────────────────

export interface EncryptedTable {
  table: string;
  /** Columns holding `v1.<kid>.…` envelopes (NULL allowed). */
  columns: readonly string[];
  /** Other columns the AAD needs. */
  context: readonly string[];
}

/** Rows with at least one envelope, after `afterId` in id order. */
export function encryptedBatch(
  db: Q,
  t: EncryptedTable,
  afterId: string,
  limit: number,
): Promise<Record<string, any>[]> {
  return db(t.table)
    .select(['id', ...t.context, ...t.columns])
    .where('id', '>', afterId)
    .andWhere((q) => {
      for (const c of t.columns) q.orWhereNotNull(c);
    })
    .orderBy('id')
    .limit(limit);
}

export async function countEncrypted(db: Q, t: EncryptedTable): Promise<number> {
  const row = await db(t.table)
    .where((q) => {
      for (const c of t.columns) q.orWhereNotNull(c);
    })
    .count({ n: '*' })
    .first();
  return Number(row?.n ?? 0);
}

export interface Reencryption {
  id: string;
  old: string;
  new: string;
}

/**
 * Writes re-encrypted values in one statement per column, each guarded on the old value: a row a
 * server changed meanwhile keeps the server's value (the verification pass re-checks it).
 */
export async function writeReencrypted(trx: Knex.Transaction, t: EncryptedTable, column: string, rows: Reencryption[]) {
  if (!t.columns.includes(column)) throw new Error(`not an encrypted column: ${column}`);
  const CHUNK = 500;
  for (let i = 0; i < rows.length; i += CHUNK) {
    const part = rows.slice(i, i + CHUNK);
    const values = part.map(() => '(?, ?, ?)').join(', ');
    await trx.raw(
      `WITH v(vid, vold, vnew) AS (VALUES ${values}) UPDATE ?? SET ?? = v.vnew FROM v WHERE ??.id = v.vid AND ??.?? = v.vold`,
      [...part.flatMap((r) => [r.id, r.old, r.new]), t.table, column, t.table, t.table, column],
    );
  }
}
