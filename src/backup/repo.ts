/**
 * Database side of backup and restore. Reads happen in one read transaction (a consistent online
 * snapshot): on SQLite a separate read-only connection holding a WAL snapshot (never the writer lock),
 * on Postgres a REPEATABLE READ, READ ONLY transaction read through server-side cursors. Writes are
 * multi-row inserts inside one transaction.
 */
import Database from 'better-sqlite3';
import type { Knex } from 'knex';
import type { Db, Dialect } from '../db/knex.js';

/** Every table a backup carries, in foreign-key order (parents first). */
export const BACKUP_TABLES = [
  'users',
  'sessions',
  'mfa_backup_codes',
  'password_reset_tokens',
  'guilds',
  'guild_members',
  'roles',
  'member_roles',
  'channels',
  'channel_overrides',
  'invites',
  'bans',
  'messages',
  'attachments',
  'dm_participants',
  'devices',
  'one_time_keys',
  'to_device_messages',
  'megolm_sessions',
  'audit_log',
  'audit_chain_head',
  'key_rotations',
] as const;

/** Runtime state, not data: which nodes run now, job leases and last runs. */
export const RUNTIME_TABLES = ['server_nodes', 'job_runs', 'knex_migrations', 'knex_migrations_lock'];

export interface SnapshotReader {
  tables(): Promise<string[]>;
  count(table: string): Promise<number>;
  /** Rows of a table as arrays in `columns` order, in batches. */
  rows(table: string, onBatch: (columns: string[], rows: unknown[][]) => Promise<void>): Promise<void>;
}

const BATCH = 2000;

/** Booleans travel as 1/0 (SQLite's form; Postgres accepts '1'/'0' for boolean columns). */
const portable = (v: unknown): unknown => (typeof v === 'boolean' ? (v ? 1 : 0) : v);

export async function withSnapshot<T>(
  db: Db,
  dialect: Dialect,
  sqliteFile: string,
  fn: (reader: SnapshotReader) => Promise<T>,
): Promise<T> {
  if (dialect === 'sqlite') {
    const conn = new Database(sqliteFile, { readonly: true, fileMustExist: true });
    try {
      conn.exec('BEGIN');
      // The first read fixes the snapshot for the whole transaction.
      const tables = (
        conn.prepare(`SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'`).all() as {
          name: string;
        }[]
      ).map((t) => t.name);
      const reader: SnapshotReader = {
        tables: async () => tables,
        count: async (t) => (conn.prepare(`SELECT count(*) AS n FROM "${t}"`).get() as { n: number }).n,
        async rows(table, onBatch) {
          const stmt = conn.prepare(`SELECT * FROM "${table}" ORDER BY rowid`).raw(true);
          const columns = stmt.columns().map((c) => c.name);
          let batch: unknown[][] = [];
          for (const row of stmt.iterate() as IterableIterator<unknown[]>) {
            batch.push(row.map(portable));
            if (batch.length >= BATCH) {
              await onBatch(columns, batch);
              batch = [];
            }
          }
          if (batch.length > 0 || columns.length > 0) await onBatch(columns, batch);
        },
      };
      const out = await fn(reader);
      conn.exec('COMMIT');
      return out;
    } finally {
      conn.close();
    }
  }
  return db.transaction(async (trx) => {
    await trx.raw('SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY');
    const tables = (await trx.raw(`SELECT tablename FROM pg_tables WHERE schemaname = current_schema()`)).rows.map(
      (r: { tablename: string }) => r.tablename,
    );
    const reader: SnapshotReader = {
      tables: async () => tables,
      count: async (t) => Number((await trx(t).count({ n: '*' }).first())?.n ?? 0),
      async rows(table, onBatch) {
        await trx.raw('DECLARE backup_cursor NO SCROLL CURSOR FOR SELECT * FROM ??', [table]);
        for (;;) {
          const res = await trx.raw(`FETCH ${BATCH} FROM backup_cursor`);
          const columns = res.fields.map((f: { name: string }) => f.name);
          const rows = res.rows.map((r: Record<string, unknown>) => columns.map((c: string) => portable(r[c])));
          await onBatch(columns, rows);
          if (res.rows.length < BATCH) break;
        }
        await trx.raw('CLOSE backup_cursor');
      },
    };
    return fn(reader);
  });
}

// ── restore ─────────────────────────────────────────────────────────────────────────────────────

/** Tables (of those a backup carries) holding rows; the migration's seeded chain head does not count. */
export async function tablesWithData(db: Db): Promise<string[]> {
  const out: string[] = [];
  for (const t of BACKUP_TABLES) {
    if (!(await db.schema.hasTable(t))) continue;
    const q = db(t);
    if (t === 'audit_chain_head') q.where('last_id', '>', 0);
    if (await q.first()) out.push(t);
  }
  return out;
}

/** Live server nodes recorded in the target (a running server uses it). */
export async function liveNodeCount(db: Db, now: number): Promise<number> {
  if (!(await db.schema.hasTable('server_nodes'))) return 0;
  const rows: { last_seen_at: number; heartbeat_ms: number }[] = await db('server_nodes').select(
    'last_seen_at',
    'heartbeat_ms',
  );
  return rows.filter((r) => Number(r.last_seen_at) + 3 * Number(r.heartbeat_ms) > now).length;
}

export async function clearSeeded(trx: Knex.Transaction): Promise<void> {
  await trx('audit_chain_head').delete();
}

/** Inserts rows given as arrays in `columns` order (chunked below the dialects' parameter limits). */
export async function insertRows(
  trx: Knex.Transaction,
  table: string,
  columns: string[],
  rows: unknown[][],
): Promise<void> {
  // Chunks stay below the bound-parameter limits (SQLite 32766, Postgres 65535) and, on SQLite, below
  // 500 rows: knex writes a multi-row insert there as a compound SELECT (at most 500 terms).
  const per = Math.max(1, Math.min(500, Math.floor(30000 / Math.max(1, columns.length))));
  for (let i = 0; i < rows.length; i += per) {
    const chunk = rows.slice(i, i + per).map((r) => Object.fromEntries(columns.map((c, j) => [c, r[j] ?? null])));
    await trx(table).insert(chunk);
  }
}

/** Postgres: move identity sequences past the restored ids. */
export async function resetSequences(trx: Knex.Transaction, dialect: Dialect): Promise<void> {
  if (dialect !== 'pg') return;
  await trx.raw(
    `SELECT setval(pg_get_serial_sequence('audit_log', 'id'), COALESCE((SELECT max(id) FROM audit_log), 0) + 1, false)`,
  );
}
