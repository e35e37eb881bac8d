/**
 * The audit log writer and verifier. Every security event is one row, appended inside the caller's
 * transaction, hash-chained: hash = SHA-256(prev_hash ‖ canonical JSON of the row). The chain head
 * row is locked while appending so concurrent writers (Postgres) cannot fork the chain.
 */
import type { Knex } from 'knex';
import type { Actor } from '../actor.js';
import { canonicalJson } from '../canonical-json.js';
import { sha256Hex } from '../crypto/random.js';
import { type Db, type Queryable, withTransaction } from '../db/knex.js';
import { nowMs } from '../ids.js';

export const GENESIS_HASH = '0'.repeat(64);

export interface AuditEntry {
  action: string;
  userId?: string | null;
  resourceType?: string | null;
  resourceId?: string | null;
  ip?: string | null;
  metadata?: Record<string, unknown>;
}

export interface AuditRow {
  id: number;
  user_id: string | null;
  action: string;
  resource_type: string | null;
  resource_id: string | null;
  ip_address: string | null;
  metadata: string;
  created_at: number;
  prev_hash: string;
  hash: string;
}

/** The hashed part of a row: everything but the hashes themselves. */
export function rowHash(prevHash: string, row: Omit<AuditRow, 'prev_hash' | 'hash'>): string {
  return sha256Hex(
    prevHash +
      canonicalJson({
        id: Number(row.id),
        user_id: row.user_id,
        action: row.action,
        resource_type: row.resource_type,
        resource_id: row.resource_id,
        ip_address: row.ip_address,
        metadata: row.metadata,
        created_at: Number(row.created_at),
      }),
  );
}

async function append(trx: Knex.Transaction, entry: AuditEntry): Promise<AuditRow> {
  const head = await trx('audit_chain_head').where({ id: 1 }).forUpdate().first();
  const id = Number(head.last_id) + 1;
  const base = {
    id,
    user_id: entry.userId ?? null,
    action: entry.action,
    resource_type: entry.resourceType ?? null,
    resource_id: entry.resourceId ?? null,
    ip_address: entry.ip ?? null,
    metadata: canonicalJson(entry.metadata ?? {}),
    created_at: nowMs(),
  };
  const row: AuditRow = { ...base, prev_hash: head.last_hash, hash: rowHash(head.last_hash, base) };
  await trx('audit_log').insert(row);
  await trx('audit_chain_head').where({ id: 1 }).update({ last_id: id, last_hash: row.hash });
  return row;
}

/** Appends one audit row; pass the transaction of the change it records. */
export function recordAudit(db: Queryable, entry: AuditEntry): Promise<AuditRow> {
  return withTransaction(db, (trx) => append(trx, entry));
}

/** recordAudit for an action a user took on one resource (the common case of every feature). */
export const recordActorAudit = (
  db: Queryable,
  actor: Actor,
  action: string,
  resourceType: string,
  resourceId: string,
  metadata: Record<string, unknown>,
): Promise<AuditRow> =>
  recordAudit(db, { action, userId: actor.userId, resourceType, resourceId, ip: actor.ip ?? null, metadata });

export interface ChainVerification {
  ok: boolean;
  rows: number;
  /** The first row that does not verify, and why. */
  brokenAt?: number;
  reason?: string;
}

/** Walks the whole chain in id order; detects edited, removed or reordered rows and a moved head. */
export async function verifyAuditChain(db: Db, batch = 1000): Promise<ChainVerification> {
  let prev = GENESIS_HASH;
  let expectedId: number | undefined;
  let count = 0;
  let lastId = 0;
  for (;;) {
    const rows: AuditRow[] = await db('audit_log').where('id', '>', lastId).orderBy('id').limit(batch);
    for (const r of rows) {
      const id = Number(r.id);
      const isCheckpoint = r.action === 'audit.checkpoint';
      if (expectedId !== undefined && id !== expectedId && !isCheckpoint) {
        return { ok: false, rows: count, brokenAt: id, reason: `row ${expectedId} is missing` };
      }
      // A retention checkpoint continues from the hash recorded in its prev_hash.
      if (count === 0 && isCheckpoint) prev = r.prev_hash;
      if (r.prev_hash !== prev) return { ok: false, rows: count, brokenAt: id, reason: 'previous hash does not match' };
      if (rowHash(prev, r) !== r.hash) return { ok: false, rows: count, brokenAt: id, reason: 'row contents changed' };
      prev = r.hash;
      expectedId = id + 1;
      lastId = id;
      count++;
    }
    if (rows.length < batch) break;
  }
  const head = await db('audit_chain_head').where({ id: 1 }).first();
  if (head && count > 0 && head.last_hash !== prev) {
    return {
      ok: false,
      rows: count,
      brokenAt: Number(head.last_id),
      reason: 'rows after the last verified row were removed',
    };
  }
  return { ok: true, rows: count };
}
