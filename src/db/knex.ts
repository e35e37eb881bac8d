/**
 * The knex factory: SQLite (better-sqlite3, the embedded default) or Postgres. SQLite connections get
 * WAL, foreign keys, a busy timeout, synchronous=FULL and a `regexp` function so CHECK constraints
 * use the same regular expressions as Postgres.
 *
 * SQLite transactions begin IMMEDIATE: they take the write lock up front, so a competing writer (the
 * message writer thread's connection, a CLI process) makes them wait out `busy_timeout` at BEGIN.
 * A deferred transaction that read first and then wanted to write could not wait: its snapshot would
 * be stale, and SQLite answers SQLITE_BUSY at once instead (issue 8, docs/decisions.md).
 */
import { mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import type BetterSqlite3 from 'better-sqlite3';
import knexFactory, { type Knex } from 'knex';

const requireCjs = createRequire(import.meta.url);

/**
 * pg's type parsers for this pool only (pg's global `types.setTypeParser` would change every pool in
 * the process): bigint columns (our epoch-millisecond timestamps, bitfields) come back as numbers, as
 * on SQLite. pg is loaded only for Postgres installs (the SQLite default never needs it).
 */
function pgTypes(): { getTypeParser: (oid: number, format?: string) => unknown } {
  const pg = requireCjs('pg') as typeof import('pg');
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
  /** How long a SQLite statement waits for another connection's write lock before SQLITE_BUSY. */
  sqliteBusyTimeoutMs?: number;
}

export const SQLITE_BUSY_TIMEOUT_MS = 5000;

/** The database options a loaded configuration asks for. */
export const dbOptionsOf = (config: {
  dialect: Dialect;
  sqliteFile: string;
  databaseUrl: string | undefined;
  sqliteBusyTimeoutMs: number;
}): DbOptions => ({
  dialect: config.dialect,
  sqliteFile: config.sqliteFile,
  ...(config.databaseUrl ? { databaseUrl: config.databaseUrl } : {}),
  sqliteBusyTimeoutMs: config.sqliteBusyTimeoutMs,
});

/** The pragmas of every SQLite connection we open (the main pool's and the message writer's). */
export const sqlitePragmas = (busyTimeoutMs = SQLITE_BUSY_TIMEOUT_MS): string[] => [
  'journal_mode = WAL',
  'foreign_keys = ON',
  `busy_timeout = ${Math.max(0, Math.floor(busyTimeoutMs))}`,
  'synchronous = FULL',
];

/** Registers what our schema needs on one SQLite connection. */
export function prepareSqliteConnection(conn: BetterSqlite3.Database, busyTimeoutMs?: number): void {
  for (const pragma of sqlitePragmas(busyTimeoutMs)) conn.pragma(pragma);
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

type KnexClientClass = new (config: Knex.Config) => { transaction(...args: unknown[]): unknown };

/** better-sqlite3's knex client, except that top-level transactions start with BEGIN IMMEDIATE. */
function sqliteClient(): KnexClientClass {
  // knex exposes no public hook for the BEGIN statement; these are its own dialect classes.
  const BetterSqliteClient = requireCjs('knex/lib/dialects/better-sqlite3') as KnexClientClass;
  const SqliteTransaction = requireCjs('knex/lib/dialects/sqlite3/execution/sqlite-transaction') as new (
    ...args: unknown[]
  ) => { query(conn: unknown, sql: string): Promise<unknown> };
  class ImmediateTransaction extends SqliteTransaction {
    begin(conn: unknown) {
      return this.query(conn, 'BEGIN IMMEDIATE;');
    }
  }
  class ImmediateClient extends BetterSqliteClient {
    override transaction(...args: unknown[]) {
      return new ImmediateTransaction(this, ...args);
    }
  }
  return ImmediateClient;
}

export function createDb(opts: DbOptions): Db {
  if (opts.dialect === 'pg') {
    return knexFactory({
      client: 'pg',
      // An unreachable server fails a request within seconds (answered 503) instead of hanging it for
      // the TCP connect timeout.
      connection: {
        connectionString: opts.databaseUrl,
        types: pgTypes(),
        connectionTimeoutMillis: 5000,
      } as Knex.PgConnectionConfig,
      pool: { min: 0, max: opts.poolMax ?? 10 },
    });
  }
  const file = opts.sqliteFile as string;
  if (file !== ':memory:') mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const db = knexFactory({
    client: sqliteClient() as unknown as typeof Knex.Client,
    connection: { filename: file },
    useNullAsDefault: true,
    pool: {
      min: 1,
      max: 1,
      afterCreate: (conn: BetterSqlite3.Database, done: (err: Error | null, conn: unknown) => void) => {
        try {
          prepareSqliteConnection(conn, opts.sqliteBusyTimeoutMs);
          done(null, conn);
        } catch (e) {
          done(e as Error, conn);
        }
      },
    },
  });
  return db;
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
