/**
 * Online key rotation (`voicechat rotate-keys`). Per purpose:
 *   1. a staged next key must exist and every live node must hold it (else: stage one / name the node
 *      to restart, and stop);
 *   2. activation: a `key_rotations` row (state running) that every node applies within a heartbeat
 *      (immediately where Redis carries the notice); we wait until every live node reports it;
 *   3. re-encryption in batches, each batch and its progress (cursor) in one transaction, so a killed
 *      run resumes where it stopped; rows stay readable throughout, since nodes hold both keys;
 *   4. verification: every row must name the new key and decrypt under it alone (values a lagging
 *      writer sealed under the old key are re-encrypted and checked again);
 *   5. retirement: the row is marked done (the old key retired, with its date) and audited
 *      (`keys.rotate`, counts and key ids only); the keyring file is updated where it is writable.
 * A JWT rotation has no rows: nodes sign with the new key once they apply the activation, and the
 * retired key keeps verifying tokens signed before its retirement until they expire.
 */
import { accessSync, existsSync, constants as fsConstants } from 'node:fs';
import { recordAudit } from '../audit/writer.js';
import { envelopeKeyId } from '../crypto/aead.js';
import { type KeyPurpose, Keyring } from '../crypto/keyring.js';
import type { Db } from '../db/knex.js';
import { AppError, errors } from '../errors.js';
import { iso, newId, nowMs } from '../ids.js';
import * as repo from './repo.js';
import { loadKeyState } from './state.js';
import { type RotationTarget, TARGETS } from './targets.js';

export const RETIRED_KEEP_DAYS = 90;

export interface RotationDeps {
  db: Db;
  /** The keyring as loaded (file + environment overrides). */
  keyring: Keyring;
  /** The keyring file itself: staging and the final states are written here when it is writable. */
  keyringFile: string;
  /** Tells running nodes to re-read the activation state now (Redis), if there is such a channel. */
  notify?: () => Promise<void>;
  /** How long to wait for every live node to apply an activation. */
  nodeWaitMs?: number;
}

export interface Progress {
  purpose: KeyPurpose;
  phase: 'reencrypt' | 'verify';
  done: number;
  total: number;
}

export interface RotateOptions {
  purposes: KeyPurpose[];
  batch: number;
  dryRun?: boolean;
  onProgress?: (p: Progress) => void;
  /** Called once per batch commit (tests kill the process between batches). */
  onBatch?: (purpose: KeyPurpose, rowsDone: number) => void;
}

export interface PurposeOutcome {
  purpose: KeyPurpose;
  status: 'rotated' | 'resumed' | 'would-rotate' | 'staged';
  from_key_id: string | null;
  to_key_id: string;
  /** Values re-encrypted by this run. */
  reencrypted: number;
  /** Values checked under the new key. */
  verified: number;
  /** Wall time of this purpose's run (activation, re-encryption, verification, retirement). */
  duration_ms?: number;
  /** Values per key id before the run (dry run and report). */
  by_key?: Record<string, number>;
  message?: string;
}

/** A refusal the CLI maps to exit 4 (nothing was rotated). */
export class RotationRefused extends AppError {
  constructor(message: string) {
    super('ROTATION_REFUSED', 409, message);
    this.name = 'RotationRefused';
  }
}

const restartHint = 'restart the service (systemctl restart voicechat, or restart every `voicechat serve`)';

function fileWritable(file: string): boolean {
  try {
    accessSync(file, fsConstants.W_OK);
    return true;
  } catch {
    return false;
  }
}

export async function rotateKeys(deps: RotationDeps, opts: RotateOptions): Promise<PurposeOutcome[]> {
  if (!Number.isInteger(opts.batch) || opts.batch < 1 || opts.batch > 100_000) {
    throw errors.validation('--batch must be a whole number from 1 to 100000');
  }
  const out: PurposeOutcome[] = [];
  for (const purpose of opts.purposes) out.push(await rotatePurpose(deps, opts, purpose));
  return out;
}

async function rotatePurpose(deps: RotationDeps, opts: RotateOptions, purpose: KeyPurpose): Promise<PurposeOutcome> {
  const { db } = deps;
  const t0 = performance.now();
  let state = await loadKeyState(db, deps.keyring);
  let rotation = await repo.runningRotation(db, purpose);
  const resumed = Boolean(rotation);
  if (rotation && !deps.keyring.key(purpose, rotation.to_key_id)) {
    throw new RotationRefused(
      `a ${purpose} rotation to key ${rotation.to_key_id} is in progress but this keyring does not hold that key`,
    );
  }
  if (!rotation) {
    const from = state.keyring.active(purpose).id;
    const staged = state.keyring.staged(purpose);
    if (!staged) return stageNextKey(deps, opts, purpose, from);
    await requireNodesHold(db, purpose, staged.id);
    if (opts.dryRun) {
      return {
        purpose,
        status: 'would-rotate',
        from_key_id: from,
        to_key_id: staged.id,
        reencrypted: 0,
        verified: 0,
        by_key: await countByKey(db, TARGETS[purpose]),
      };
    }
    rotation = {
      id: newId(),
      purpose,
      from_key_id: from,
      to_key_id: staged.id,
      state: 'running',
      cursor: null,
      rows_done: 0,
      started_at: nowMs(),
      finished_at: null,
    };
    await repo.insertRotation(db, rotation);
  } else if (opts.dryRun) {
    return {
      purpose,
      status: 'would-rotate',
      from_key_id: rotation.from_key_id,
      to_key_id: rotation.to_key_id,
      reencrypted: 0,
      verified: 0,
      by_key: await countByKey(db, TARGETS[purpose]),
      message: `resumes the rotation started ${iso(rotation.started_at)} (${rotation.rows_done} values done)`,
    };
  }
  const to = rotation.to_key_id;
  await deps.notify?.();
  await waitForNodes(db, rotation.id, deps.nodeWaitMs);
  state = await loadKeyState(db, deps.keyring);
  const keyring = state.keyring;

  let reencrypted = 0;
  let verified = 0;
  const targets = TARGETS[purpose];
  // A resumed run continues from the saved cursor (one table per purpose today).
  let cursor = rotation.cursor ?? '';
  for (const target of targets) {
    const total = await repo.countEncrypted(db, target);
    reencrypted += await reencryptTarget(db, target, keyring, to, cursor, opts.batch, rotation.id, (done) => {
      opts.onProgress?.({ purpose, phase: 'reencrypt', done, total });
      opts.onBatch?.(purpose, done);
    });
    cursor = '';
  }
  // Verify, then retire: every value must name the new key and open under it alone.
  for (let pass = 0; ; pass++) {
    let stale = 0;
    verified = 0;
    for (const target of targets) {
      const total = await repo.countEncrypted(db, target);
      const r = await verifyTarget(db, target, keyring, to, opts.batch, (n) =>
        opts.onProgress?.({ purpose, phase: 'verify', done: n, total }),
      );
      stale += r.stale;
      verified += r.verified;
    }
    reencrypted += stale;
    if (stale === 0) break;
    if (pass >= 4)
      throw errors.unavailable(`${stale} ${purpose} values keep appearing under an old key; rerun rotate-keys`);
  }

  const finishedAt = nowMs();
  await db.transaction(async (trx) => {
    await repo.finishRotation(trx, rotation.id, finishedAt);
    await recordAudit(trx, {
      action: 'keys.rotate',
      resourceType: 'key',
      resourceId: to,
      metadata: {
        purpose,
        from_key_id: rotation.from_key_id,
        to_key_id: to,
        reencrypted,
        verified,
        resumed,
        via: 'cli',
      },
    });
  });
  await deps.notify?.();
  const message = writeFinalStates(deps, purpose, to, rotation.from_key_id, iso(finishedAt) as string);
  return {
    purpose,
    status: resumed ? 'resumed' : 'rotated',
    from_key_id: rotation.from_key_id,
    to_key_id: to,
    reencrypted,
    verified,
    duration_ms: Math.round(performance.now() - t0),
    ...(message ? { message } : {}),
  };
}

/** Adds a staged key to the keyring file; the running nodes must load it (restart) before rotation. */
function stageNextKey(deps: RotationDeps, opts: RotateOptions, purpose: KeyPurpose, from: string): PurposeOutcome {
  if (opts.dryRun) {
    return {
      purpose,
      status: 'staged',
      from_key_id: from,
      to_key_id: '(none staged)',
      reencrypted: 0,
      verified: 0,
      message: `no staged ${purpose} key: a real run would stage one and ask for a restart first`,
    };
  }
  if (!existsSync(deps.keyringFile) || !fileWritable(deps.keyringFile)) {
    throw new RotationRefused(
      `no staged ${purpose} key and the keyring ${deps.keyringFile} is not writable here; run \`voicechat keygen --purpose ${purpose} --add\` where it is, then ${restartHint}`,
    );
  }
  const { keyring, entry } = Keyring.load(deps.keyringFile).withAddedKey(purpose);
  keyring.save(deps.keyringFile);
  return {
    purpose,
    status: 'staged',
    from_key_id: from,
    to_key_id: entry.id,
    reencrypted: 0,
    verified: 0,
    message: `staged ${purpose} key ${entry.id}; ${restartHint} so every node loads it, then run rotate-keys again`,
  };
}

async function requireNodesHold(db: Db, purpose: KeyPurpose, keyId: string): Promise<void> {
  for (const node of await repo.liveNodes(db, nowMs())) {
    const ids = (JSON.parse(node.key_ids) as Record<string, string[]>)[purpose] ?? [];
    if (!ids.includes(keyId)) {
      throw new RotationRefused(
        `server node ${node.hostname} (pid ${node.pid}) started before ${purpose} key ${keyId} was staged; ${restartHint}, then run rotate-keys again`,
      );
    }
  }
}

/** Waits until every live node reports having applied `rotationId` (nodes that stop reporting drop out). */
async function waitForNodes(db: Db, rotationId: string, timeoutMs?: number): Promise<void> {
  const started = nowMs();
  for (;;) {
    const nodes = await repo.liveNodes(db, nowMs());
    const behind = nodes.filter((n) => !n.rotation_seen || n.rotation_seen < rotationId);
    if (behind.length === 0) return;
    const limit = timeoutMs ?? Math.max(...behind.map((n) => 3 * Number(n.heartbeat_ms))) + 5000;
    if (nowMs() - started > limit) {
      const n = behind[0] as repo.NodeRow;
      throw errors.unavailable(
        `server node ${n.hostname} (pid ${n.pid}) has not applied the new key; check its log (does it hold the key?), then rerun rotate-keys to resume`,
      );
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Re-encrypts every value of a target not under `to`, batch by batch from `cursor`; returns the count. */
async function reencryptTarget(
  db: Db,
  target: RotationTarget,
  keyring: Keyring,
  to: string,
  cursor: string,
  batch: number,
  rotationId: string,
  onRows: (seen: number) => void,
): Promise<number> {
  let changed = 0;
  let seen = 0;
  for (;;) {
    const rows = await repo.encryptedBatch(db, target, cursor, batch);
    if (rows.length === 0) break;
    cursor = (rows.at(-1) as Record<string, any>).id as string;
    const updates = reseal(target, keyring, to, rows);
    let n = 0;
    await db.transaction(async (trx) => {
      for (const [column, list] of updates) {
        n += list.length;
        await repo.writeReencrypted(trx, target, column, list);
      }
      await repo.saveProgress(trx, rotationId, cursor, n);
    });
    changed += n;
    seen += rows.length;
    onRows(seen);
  }
  return changed;
}

function reseal(
  target: RotationTarget,
  keyring: Keyring,
  to: string,
  rows: Record<string, any>[],
): Map<string, repo.Reencryption[]> {
  const updates = new Map<string, repo.Reencryption[]>();
  const unreadable: string[] = [];
  for (const row of rows) {
    for (const column of target.columns) {
      const value = row[column] as string | null;
      if (!value || envelopeKeyId(value) === to) continue;
      let plain: Buffer;
      try {
        plain = target.open(keyring, row, column);
      } catch {
        unreadable.push(`${target.table} ${row.id} ${column}`);
        continue;
      }
      const list = updates.get(column) ?? [];
      list.push({ id: row.id, old: value, new: target.seal(keyring, to, row, column, plain) });
      updates.set(column, list);
    }
  }
  if (unreadable.length > 0) {
    throw errors.unavailable(
      `${unreadable.length} value(s) cannot be decrypted with any key (first: ${unreadable[0]}); nothing was retired — fix or clear those rows (e.g. \`voicechat users disable-mfa NAME\`) and rerun`,
    );
  }
  return updates;
}

/** Checks every value opens under `to` alone; re-encrypts stragglers under an old key and counts them. */
async function verifyTarget(
  db: Db,
  target: RotationTarget,
  keyring: Keyring,
  to: string,
  batch: number,
  onProgress: (n: number) => void,
): Promise<{ verified: number; stale: number }> {
  let cursor = '';
  let verified = 0;
  let stale = 0;
  for (;;) {
    const rows = await repo.encryptedBatch(db, target, cursor, batch);
    if (rows.length === 0) break;
    cursor = (rows.at(-1) as Record<string, any>).id;
    const staleRows = rows.filter((r) => target.columns.some((c) => r[c] && envelopeKeyId(r[c]) !== to));
    if (staleRows.length > 0) {
      const updates = reseal(target, keyring, to, staleRows);
      await db.transaction(async (trx) => {
        for (const [column, list] of updates) {
          stale += list.length;
          await repo.writeReencrypted(trx, target, column, list);
        }
      });
    }
    for (const row of rows) {
      for (const column of target.columns) {
        if (!row[column] || envelopeKeyId(row[column]) !== to) continue;
        try {
          target.open(keyring, row, column, to);
        } catch {
          throw errors.unavailable(
            `${target.table} ${row.id} ${column} does not decrypt under the new key ${to}; nothing was retired`,
          );
        }
        verified++;
      }
    }
    onProgress(verified);
  }
  return { verified, stale };
}

/** Values per key id across a purpose's tables (dry run). */
async function countByKey(db: Db, targets: RotationTarget[]): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (const target of targets) {
    let cursor = '';
    for (;;) {
      const rows = await repo.encryptedBatch(db, target, cursor, 5000);
      if (rows.length === 0) break;
      cursor = (rows.at(-1) as Record<string, any>).id;
      for (const row of rows) {
        for (const c of target.columns) {
          if (!row[c]) continue;
          const kid = envelopeKeyId(row[c]) ?? '(unknown format)';
          counts[kid] = (counts[kid] ?? 0) + 1;
        }
      }
    }
  }
  return counts;
}

/** Records the outcome in the keyring file (new key active, old retired) where this process may write it. */
function writeFinalStates(
  deps: RotationDeps,
  purpose: KeyPurpose,
  to: string,
  from: string | null,
  retiredAt: string,
): string | undefined {
  if (!existsSync(deps.keyringFile) || !fileWritable(deps.keyringFile)) {
    return `keyring file ${deps.keyringFile} not writable here: the database carries the new state, nodes follow it`;
  }
  const file = Keyring.load(deps.keyringFile);
  if (!file.key(purpose, to)) return undefined;
  const retired = new Map<string, string>();
  if (from && file.key(purpose, from)) retired.set(from, retiredAt);
  file.withRotationState(purpose, to, retired).save(deps.keyringFile);
  return undefined;
}

export interface PurgeOutcome {
  purpose: KeyPurpose;
  removed: string[];
}

/** `rotate-keys --purge`: drops retired keys older than 90 days from the file, if no value still names them. */
export async function purgeRetiredKeys(
  deps: Pick<RotationDeps, 'db' | 'keyring' | 'keyringFile'>,
  purposes: KeyPurpose[],
  dryRun = false,
  now = Date.now(),
): Promise<PurgeOutcome[]> {
  if (!existsSync(deps.keyringFile) || !fileWritable(deps.keyringFile)) {
    throw new RotationRefused(
      `--purge needs to write the keyring ${deps.keyringFile}; run it where the file is writable`,
    );
  }
  let file = Keyring.load(deps.keyringFile);
  const state = await loadKeyState(deps.db, file);
  const out: PurgeOutcome[] = [];
  for (const purpose of purposes) {
    const old = state.keyring
      .entries(purpose)
      .filter(
        (e) => e.state === 'retired' && e.retired_at && now - Date.parse(e.retired_at) > RETIRED_KEEP_DAYS * 86400_000,
      );
    const counts = await countByKey(deps.db, TARGETS[purpose]);
    const removable = old.filter((e) => !counts[e.id]).map((e) => e.id);
    if (removable.length > 0) file = file.without(purpose, removable);
    out.push({ purpose, removed: removable });
  }
  if (!dryRun && out.some((o) => o.removed.length > 0)) {
    file.save(deps.keyringFile);
    await recordAudit(deps.db, {
      action: 'admin.keys_purge',
      resourceType: 'key',
      metadata: { removed: out.flatMap((o) => o.removed), via: 'cli' },
    });
  }
  return out;
}
