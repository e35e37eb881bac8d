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

let pgTypesSet = false;
/** bigint columns (our epoch-millisecond timestamps, bitfields) come back as numbers, as on SQLite. */
function preparePg(): void {
  if (pgTypesSet) return;
  // pg is loaded only for Postgres installs (the SQLite default never needs it).
  const pg = createRequire(import.meta.url)('pg') as typeof import('pg');
  pg.types.setTypeParser(20, (v: string) => Number.parseInt(v, 10));
  pgTypesSet = true;
}

export type Db = Knex;
export type Dialect = 'sqlite' | 'pg';

export interface DbOptions {
  dialect: Dialect;
  sqliteFile?: string;
  databaseUrl?: string;
  poolMax?: number;
}

const regexCache = new Map<string, RegExp>();

/** Registers what our schema needs on one SQLite connection. */
export function prepareSqliteConnection(conn: BetterSqlite3.Database): void {
  conn.pragma('journal_mode = WAL');
  conn.pragma('foreign_keys = ON');
  conn.pragma('busy_timeout = 5000');
  conn.pragma('synchronous = FULL');
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
    preparePg();
    return knexFactory({
      client: 'pg',
      connection: opts.databaseUrl,
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
