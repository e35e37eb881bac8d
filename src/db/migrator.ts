/**
 * Runs the schema migrations in `migrations/` (files `YYYYMMDDHHMMSS_kebab_name.ts`, compiled to .js in
 * dist). A custom migration source keeps knex independent of the file extension and working directory.
 */
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Knex } from 'knex';
import type { Db } from './knex.js';

const here = path.dirname(fileURLToPath(import.meta.url));
/** `src/db` → `migrations`, and `dist/src/db` → `dist/migrations`. */
export const MIGRATIONS_DIR = path.resolve(here, '..', '..', 'migrations');

const FILE = /^(\d{14}_[a-z0-9-]+)\.(ts|js)$/;

interface Migration {
  name: string;
  file: string;
}

export function listMigrations(): Migration[] {
  const seen = new Map<string, Migration>();
  for (const f of readdirSync(MIGRATIONS_DIR).sort()) {
    const m = FILE.exec(f);
    if (!m || f.endsWith('.d.ts')) continue;
    const name = m[1] as string;
    // Prefer compiled .js when both exist (dist), else the .ts source (dev/tests).
    if (!seen.has(name) || f.endsWith('.js')) seen.set(name, { name, file: path.join(MIGRATIONS_DIR, f) });
  }
  return [...seen.values()].sort((a, b) => a.name.localeCompare(b.name));
}

const source: Knex.MigrationSource<Migration> = {
  getMigrations: async () => listMigrations(),
  getMigrationName: (m) => m.name,
  getMigration: async (m) => import(pathToFileURL(m.file).href),
};

const config: Knex.MigratorConfig = {
  migrationSource: source,
  tableName: 'knex_migrations',
  disableMigrationsListValidation: false,
};

export interface MigrationStatus {
  completed: string[];
  pending: string[];
}

export async function migrationStatus(db: Db): Promise<MigrationStatus> {
  const [completed, pending] = (await db.migrate.list(config)) as [{ name: string }[], Migration[]];
  return { completed: completed.map((c) => c.name), pending: pending.map((p) => p.name) };
}

/** Applies every pending migration; returns the names applied. */
export async function migrateUp(db: Db): Promise<string[]> {
  const [, applied] = (await db.migrate.latest(config)) as [number, string[]];
  return applied;
}

/** Rolls back the last batch (or everything with `all`); returns the names rolled back. */
export async function migrateDown(db: Db, all = false): Promise<string[]> {
  const [, rolled] = (await db.migrate.rollback(config, all)) as [number, string[]];
  return rolled;
}

/** Names of every migration this version knows, in order. */
export const knownMigrations = (): string[] => listMigrations().map((m) => m.name);

/** Applies pending migrations one at a time up to and including `name` (restore's schema version). */
export async function migrateUpTo(db: Db, name: string): Promise<void> {
  for (;;) {
    const { completed } = await migrationStatus(db);
    if (completed.includes(name)) return;
    const [, applied] = (await db.migrate.up(config)) as [number, string[]];
    if (applied.length === 0) throw new Error(`migration ${name} is unknown`);
  }
}
