/**
 * The audit log writer and verifier. Every security event is one row, appended inside the caller's
 * transaction, hash-chained: hash = SHA-256(prev_hash ‖ canonical JSON of the row). The chain head
 * row is locked while appending so concurrent writers (Postgres) cannot fork the chain.
 */
import type { Knex } from 'knex';
import type { Actor } from '../actor.js';
import { canonicalJson } from '../canonical-json.js';
import { sha256Hex } from '../crypto/random.js';
import { type Queryable, withTransaction } from '../db/knex.js';
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

/**
 * The hashed part of a row: everything but the hashes themselves, as canonical JSON (keys sorted).
 * Spelled out for the fixed row shape rather than through canonicalJson: `audit --verify` hashes every
 * row, and this is several times faster. A unit test holds it equal to canonicalJson.
 */
export function rowHash(prevHash: string, row: Omit<AuditRow, 'prev_hash' | 'hash'>): string {
  const j = JSON.stringify;
  return sha256Hex(
    `${prevHash}{"action":${j(row.action)},"created_at":${j(Number(row.created_at))},"id":${j(Number(row.id))},"ip_address":${j(row.ip_address ?? null)},"metadata":${j(row.metadata ?? null)},"resource_id":${j(row.resource_id ?? null)},"resource_type":${j(row.resource_type ?? null)},"user_id":${j(row.user_id ?? null)}}`,
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
