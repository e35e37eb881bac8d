/**
 * The knex factory: SQLite (better-sqlite3, the embedded default) or Postgres. SQLite connections get
 * WAL, foreign keys, a busy timeout, synchronous=FULL and a `regexp` function so CHECK constraints
 * use the same regular expressions as Postgres.
 */
import { mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import type BetterSqlite3 from 'better-sqlite3';
import knexFactory, { type Knex } from 'knex';

/**
 * pg's type parsers for this pool only (pg's global `types.setTypeParser` would change every pool in
 * the process): bigint columns (our epoch-millisecond timestamps, bitfields) come back as numbers, as
 * on SQLite. pg is loaded only for Postgres installs (the SQLite default never needs it).
 */
function pgTypes(): { getTypeParser: (oid: number, format?: string) => unknown } {
  const pg = createRequire(import.meta.url)('pg') as typeof import('pg');
  const INT8 = 20;
  const parseInt8 = (v: string) => Number.parseInt(v, 10);
  return {
    getTypeParser: (oid: number, format?: string) =>
      oid === INT8 && format !== 'binary' ? parseInt8 : pg.types.getTypeParser(oid, format as 'text'),
  };
}

export type Db = Knex;
/** A connection pool or an open transaction: what every repo function takes. */
export type Queryable = Knex | Knex.Transaction;
export type Dialect = 'sqlite' | 'pg';

export interface DbOptions {
  dialect: Dialect;
  sqliteFile?: string;
  databaseUrl?: string;
  poolMax?: number;
}

/** Registers what our schema needs on one SQLite connection. */
export function prepareSqliteConnection(conn: BetterSqlite3.Database): void {
  conn.pragma('journal_mode = WAL');
  conn.pragma('foreign_keys = ON');
  conn.pragma('busy_timeout = 5000');
  conn.pragma('synchronous = FULL');
  const regexCache = new Map<string, RegExp>();
  // `X REGEXP Y` calls regexp(Y, X). Deterministic so it may appear in CHECK constraints.
  conn.function('regexp', { deterministic: true }, (pattern: unknown, value: unknown) => {
    if (value === null || value === undefined) return null;
    let re = regexCache.get(String(pattern));
    if (!re) {
      re = new RegExp(String(pattern), 'u');
      regexCache.set(String(pattern), re);
    }
    return re.test(String(value)) ? 1 : 0;
  });
}

export function createDb(opts: DbOptions): Db {
  if (opts.dialect === 'pg') {
    return knexFactory({
      client: 'pg',
      connection: { connectionString: opts.databaseUrl, types: pgTypes() } as Knex.PgConnectionConfig,
      pool: { min: 0, max: opts.poolMax ?? 10 },
    });
  }
  const file = opts.sqliteFile as string;
  if (file !== ':memory:') mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  return knexFactory({
    client: 'better-sqlite3',
    connection: { filename: file },
    useNullAsDefault: true,
    pool: {
      min: 1,
      max: 1,
      afterCreate: (conn: BetterSqlite3.Database, done: (err: Error | null, conn: unknown) => void) => {
        try {
          prepareSqliteConnection(conn);
          done(null, conn);
        } catch (e) {
          done(e as Error, conn);
        }
      },
    },
  });
}

export const dialectOf = (db: Db): Dialect => (db.client.config.client === 'pg' ? 'pg' : 'sqlite');

/** Checks that the database answers; used by /ready and `init`'s connection test. */
export async function ping(db: Db): Promise<void> {
  await db.raw('select 1');
}

/** Runs `fn` in the caller's transaction when `q` is one, else in a new transaction. */
export function withTransaction<T>(q: Queryable, fn: (trx: Knex.Transaction) => Promise<T>): Promise<T> {
  return (q as Knex.Transaction).isTransaction ? fn(q as Knex.Transaction) : (q as Knex).transaction(fn);
}
