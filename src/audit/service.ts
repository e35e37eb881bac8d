/** The operator's view of the audit log (`voicechat audit`): filtered listing and chain verification. */
import type { Db } from '../db/knex.js';
import { errors } from '../errors.js';
import { iso } from '../ids.js';
import * as repo from './repo.js';
import type { AuditRow } from './writer.js';

export { verifyAuditChain } from './verify.js';

/** A row as the CLI shows it: metadata parsed, time as ISO-8601. */
export type AuditListing = Omit<AuditRow, 'metadata' | 'created_at'> & {
  metadata: Record<string, unknown>;
  created_at: string;
};

export const presentAuditRow = (r: AuditRow): AuditListing => ({
  id: Number(r.id),
  user_id: r.user_id,
  action: r.action,
  resource_type: r.resource_type,
  resource_id: r.resource_id,
  ip_address: r.ip_address,
  metadata: JSON.parse(r.metadata || '{}'),
  created_at: iso(r.created_at) as string,
  prev_hash: r.prev_hash,
  hash: r.hash,
});

export interface AuditQuery {
  /** A username or a user id (rows outlive their users, so an id needs no account). */
  user?: string | undefined;
  action?: string | undefined;
  since?: string | undefined;
  until?: string | undefined;
  limit?: number | undefined;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const RELATIVE = /^(\d+)([smhdw])$/;
const UNIT_MS: Record<string, number> = { s: 1e3, m: 60e3, h: 3600e3, d: 86400e3, w: 604800e3 };

/** An ISO-8601 date/time, or a span back from now (`30m`, `24h`, `7d`, `2w`). */
export function parseTime(value: string, flag: string, now = Date.now()): number {
  const rel = RELATIVE.exec(value.trim());
  if (rel) return now - Number(rel[1]) * (UNIT_MS[rel[2] as string] as number);
  const ms = /^\d{4}-\d{2}-\d{2}/.test(value) ? Date.parse(value) : Number.NaN;
  if (Number.isNaN(ms)) {
    throw errors.validation(
      `${flag} must be an ISO-8601 date/time (2026-01-31, 2026-01-31T12:00:00Z) or a span like 24h or 7d`,
    );
  }
  return ms;
}

export async function listAudit(db: Db, q: AuditQuery): Promise<AuditListing[]> {
  let userId: string | undefined;
  if (q.user) {
    const user = await repo.userIdByName(db, q.user);
    if (user) userId = user.id;
    else if (UUID.test(q.user)) userId = q.user.toLowerCase();
    else throw errors.notFound(`No user named "${q.user}".`);
  }
  if (q.action && !/^[a-z0-9_.]+(\.\*)?$/.test(q.action)) {
    throw errors.validation('--action must look like auth.login or admin.* (lower case, dots)');
  }
  const rows = await repo.listRows(db, {
    userId,
    action: q.action,
    sinceMs: q.since ? parseTime(q.since, '--since') : undefined,
    untilMs: q.until ? parseTime(q.until, '--until') : undefined,
    limit: q.limit ?? 100,
  });
  return rows.map(presentAuditRow);
}
