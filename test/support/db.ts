/**
 * Throwaway databases for tests. The dialect comes from VOICECHAT_TEST_DB (`sqlite`, the default, or
 * `postgres`); Postgres databases are created on VOICECHAT_TEST_PG_URL (default
 * postgres://postgres@127.0.0.1:5432) and dropped afterwards.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createDb, type Db, type Dialect } from '../../src/db/knex.js';
import { migrateUp } from '../../src/db/migrator.js';

export const TEST_DIALECT: Dialect = /^(pg|postgres)/.test(process.env.VOICECHAT_TEST_DB ?? '') ? 'pg' : 'sqlite';
/** Optional tag in throwaway database names (`vc_test_<tag>_…`), so CI can check its own run left none. */
const DB_TAG = (process.env.VOICECHAT_TEST_DB_TAG ?? '').toLowerCase().replace(/[^a-z0-9]/g, '');
export const PG_BASE_URL = process.env.VOICECHAT_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432';

export interface TestDatabase {
  dialect: Dialect;
  /** Value for VOICECHAT_DATABASE_URL ('' for the SQLite default). */
  databaseUrl: string;
  sqliteFile: string;
  dir: string;
  db: Db;
  /** Destroys the pool and drops the database / removes the files. */
  drop(): Promise<void>;
}

export function tempDir(prefix = 'vc-test-'): string {
  return mkdtempSync(path.join(tmpdir(), prefix));
}

export async function createTestDatabase(opts: { migrate?: boolean; dialect?: Dialect } = {}): Promise<TestDatabase> {
  const dialect = opts.dialect ?? TEST_DIALECT;
  const dir = tempDir();
  const sqliteFile = path.join(dir, 'voicechat.db');
  let databaseUrl = '';
  let dropPg: (() => Promise<void>) | undefined;
  if (dialect === 'pg') {
    const name = `vc_test_${DB_TAG ? `${DB_TAG}_` : ''}${randomBytes(6).toString('hex')}`;
    const admin = createDb({ dialect: 'pg', databaseUrl: `${PG_BASE_URL}/postgres`, poolMax: 1 });
    await admin.raw(`CREATE DATABASE ${name}`);
    await admin.destroy();
    databaseUrl = `${PG_BASE_URL}/${name}`;
    dropPg = async () => {
      const a = createDb({ dialect: 'pg', databaseUrl: `${PG_BASE_URL}/postgres`, poolMax: 1 });
      await a.raw(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await a.destroy();
    };
  }
  const db = createDb({ dialect, sqliteFile, databaseUrl });
  if (opts.migrate !== false) await migrateUp(db);
  let dropped = false;
  return {
    dialect,
    databaseUrl,
    sqliteFile,
    dir,
    db,
    async drop() {
      if (dropped) return;
      dropped = true;
      await db.destroy();
      await dropPg?.();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
