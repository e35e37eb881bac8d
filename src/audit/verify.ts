/**
 * Verifies the audit hash chain: every row's hash is SHA-256(prev_hash ‖ canonical JSON of the row),
 * each row names the previous row's hash, ids are consecutive, and the chain head matches the last
 * row. After retention pruning the chain starts at the newest checkpoint's `pruned_through_id + 1`,
 * continuing from the hash the checkpoint recorded (the checkpoint itself sits later in the chain, so
 * it is covered by the hashes after it).
 */
import type { Db } from '../db/knex.js';
import * as repo from './repo.js';
import { GENESIS_HASH, rowHash } from './writer.js';

export interface ChainVerification {
  ok: boolean;
  rows: number;
  /** The first row that does not verify, and why. */
  brokenAt?: number;
  reason?: string;
  /** Where the verified chain starts (1 unless pruned). */
  firstId?: number;
}

export interface ChainStart {
  firstId: number;
  prevHash: string;
}

/** Where the chain must start: after the newest retention checkpoint, else at row 1 from the genesis hash. */
export async function chainStart(db: Db): Promise<ChainStart> {
  const cp = await repo.latestCheckpoint(db);
  if (!cp) return { firstId: 1, prevHash: GENESIS_HASH };
  const meta = JSON.parse(cp.metadata) as { pruned_through_id?: number; continues_from_hash?: string };
  return { firstId: Number(meta.pruned_through_id ?? 0) + 1, prevHash: meta.continues_from_hash ?? GENESIS_HASH };
}

export async function verifyAuditChain(
  db: Db,
  opts: { batch?: number; onProgress?: (rows: number) => void } = {},
): Promise<ChainVerification> {
  const batch = opts.batch ?? 5000;
  const start = await chainStart(db);
  let prev = start.prevHash;
  let expectedId = start.firstId;
  let count = 0;
  let lastId = 0;
  const fail = (brokenAt: number, reason: string): ChainVerification => ({
    ok: false,
    rows: count,
    brokenAt,
    reason,
    firstId: start.firstId,
  });
  for (;;) {
    const rows = await repo.rowsAfter(db, lastId, batch);
    for (const r of rows) {
      const id = Number(r.id);
      if (id < expectedId) return fail(id, 'row predates the retention checkpoint');
      if (id > expectedId) return fail(expectedId, `row ${expectedId} is missing`);
      if (r.prev_hash !== prev) return fail(id, 'previous hash does not match');
      if (rowHash(prev, r) !== r.hash) return fail(id, 'row contents changed');
      prev = r.hash;
      expectedId = id + 1;
      lastId = id;
      count++;
    }
    opts.onProgress?.(count);
    if (rows.length < batch) break;
  }
  const head = await repo.chainHead(db);
  if (head && Number(head.last_id) > 0 && (Number(head.last_id) !== lastId || head.last_hash !== prev)) {
    return fail(lastId + 1, count === 0 ? 'every row was removed' : `rows after ${lastId} were removed`);
  }
  return { ok: true, rows: count, firstId: start.firstId };
}
