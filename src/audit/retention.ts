/**
 * Audit retention: rows older than the cutoff are deleted oldest first, at most `maxRows` per call,
 * and a checkpoint row is appended in the same transaction recording the last pruned row's id and
 * hash, from which `verifyAuditChain` continues. Idempotent: nothing older than the cutoff, nothing done.
 */
import type { Db } from '../db/knex.js';
import { iso } from '../ids.js';
import * as repo from './repo.js';
import { recordAudit } from './writer.js';

export interface PruneResult {
  removed: number;
  checkpointId?: number;
}

export function pruneAuditLog(db: Db, cutoffMs: number, maxRows = 10_000): Promise<PruneResult> {
  return db.transaction(async (trx) => {
    await repo.lockChainHead(trx);
    const first = await repo.firstRow(trx);
    if (!first) return { removed: 0 };
    const last = await repo.lastRowBefore(trx, cutoffMs, Number(first.id) + maxRows - 1);
    if (!last) return { removed: 0 };
    const removed = await repo.deleteThrough(trx, Number(last.id));
    const checkpoint = await recordAudit(trx, {
      action: repo.CHECKPOINT_ACTION,
      resourceType: 'audit_log',
      metadata: {
        pruned_through_id: Number(last.id),
        continues_from_hash: last.hash,
        pruned_rows: removed,
        cutoff: iso(cutoffMs),
      },
    });
    return { removed, checkpointId: checkpoint.id };
  });
}
