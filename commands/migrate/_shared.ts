/** Helpers shared by the migrate commands (not a command: oclif skips files starting with `_`). */
import { Flags } from '@oclif/core';
import type { Config } from '../../src/config/index.js';
import { createDb, type Db, dbOptionsOf } from '../../src/db/knex.js';

export const jsonFlag = Flags.boolean({ summary: 'Print JSON.', default: false });

/** Opens the configured database for one piece of work and always closes it. */
export async function withDatabase<T>(config: Config, work: (db: Db) => Promise<T>): Promise<T> {
  const db = createDb(dbOptionsOf(config));
  try {
    return await work(db);
  } finally {
    await db.destroy();
  }
}
