/** The users table: the only knex user of the users feature (the auth repo owns the auth columns' queries). */
import type { Queryable as Q } from '../db/knex.js';
import { nowMs } from '../ids.js';
import type { UserRow } from './presenter.js';

export const findByUsername = (db: Q, username: string): Promise<UserRow | undefined> =>
  db('users').where({ username }).first();

export const findById = (db: Q, id: string): Promise<UserRow | undefined> => db('users').where({ id }).first();

export async function insert(db: Q, row: UserRow): Promise<void> {
  await db('users').insert(row);
}

export async function update(db: Q, id: string, patch: Record<string, unknown>): Promise<void> {
  await db('users')
    .where({ id })
    .update({ ...patch, updated_at: nowMs() });
}

export const listAll = (db: Q): Promise<UserRow[]> => db('users').orderBy('username');
