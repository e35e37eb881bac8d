/**
 * `voicechat backup` / `voicechat restore`: one portable archive for both dialects — a consistent
 * online snapshot of every table, the uploads and the config file (the keyring only when asked).
 * Restore verifies the whole archive first, refuses a target holding data or in use by a running
 * server, loads the rows into either dialect at the archive's schema version in one transaction,
 * migrates to the current schema, then writes uploads, config and keyring. Restoring a SQLite backup
 * into a Postgres URL is the SQLite → Postgres move.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { open as openFile } from 'node:fs/promises';
import path from 'node:path';
import type { Config } from '../config/index.js';
import { formatEnvFile, parseEnvFile } from '../config/index.js';
import { sha256Hex } from '../crypto/random.js';
import { createDb, type Db, type Dialect } from '../db/knex.js';
import { knownMigrations, migrateDown, migrateUp, migrateUpTo, migrationStatus } from '../db/migrator.js';
import { ArchiveError, type ArchiveEvent, ArchiveWriter, type Manifest, readArchive } from './archive.js';
import * as repo from './repo.js';

export { ArchiveError } from './archive.js';

export type BackupProgress = (label: string, done: number, total: number) => void;

export interface BackupOptions {
  includeKeys: boolean;
  /** With a directory target: keep this many newest `voicechat-*.vcbak` files, delete older ones. */
  keep?: number | undefined;
  onProgress?: BackupProgress;
}

export interface BackupResult {
  file: string;
  bytes: number;
  tables: Record<string, number>;
  files: number;
  includes_keys: boolean;
  schema_version: string;
  pruned: string[];
}

/** A refusal the CLI maps to exit 4 (the target would lose or mix data). */
export class RestoreRefused extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RestoreRefused';
  }
}

const BACKUP_NAME = /^voicechat-\d{8}T\d{6}Z\.vcbak$/;
const UPLOAD_NAME = /^[A-Za-z0-9_-]{1,128}$/;

function backupFileName(target: string): { file: string; dir?: string } {
  if (existsSync(target) && statSync(target).isDirectory()) {
    const stamp = new Date()
      .toISOString()
      .replace(/[-:]/g, '')
      .replace(/\.\d+Z$/, 'Z');
    return { file: path.join(target, `voicechat-${stamp}.vcbak`), dir: target };
  }
  return { file: target };
}

export async function backup(config: Config, db: Db, target: string, opts: BackupOptions): Promise<BackupResult> {
  const { file, dir } = backupFileName(target);
  if (existsSync(file)) throw new RestoreRefused(`${file} already exists; choose another name`);
  const keyringText = opts.includeKeys ? readFileSync(config.keyringFile) : undefined;
  const schema = (await migrationStatus(db)).completed;
  const tmp = `${file}.${process.pid}.partial`;
  const writer = new ArchiveWriter(tmp);
  const tables: Record<string, number> = {};
  let fileCount = 0;
  try {
    await writer.header({
      created_at: new Date().toISOString(),
      dialect: config.dialect,
      schema,
      includes_keys: Boolean(keyringText),
    });
    await repo.withSnapshot(db, config.dialect, config.sqliteFile, async (snap) => {
      const present = await snap.tables();
      const unknown = present.filter(
        (t) => !(repo.BACKUP_TABLES as readonly string[]).includes(t) && !repo.RUNTIME_TABLES.includes(t),
      );
      if (unknown.length > 0)
        throw new Error(`unknown table(s) ${unknown.join(', ')}: this voicechat cannot back them up`);
      for (const table of repo.BACKUP_TABLES) {
        const total = await snap.count(table);
        let done = 0;
        let started = false;
        await snap.rows(table, async (columns, rows) => {
          if (!started) {
            await writer.beginTable(table, columns);
            started = true;
          }
          await writer.rows(rows);
          done += rows.length;
          opts.onProgress?.(`backup ${table}`, done, total);
        });
        if (!started) await writer.beginTable(table, []);
        await writer.endTable();
        tables[table] = done;
      }
    });
    const uploads = path.join(config.dataDir, 'uploads');
    const names = existsSync(uploads) ? readdirSync(uploads).filter((n) => UPLOAD_NAME.test(n)) : [];
    for (const name of names) {
      const p = path.join(uploads, name);
      if (!statSync(p).isFile()) continue;
      await writer.file(`uploads/${name}`, p);
      fileCount++;
      opts.onProgress?.('backup uploads', fileCount, names.length);
    }
    if (config.configPath && existsSync(config.configPath)) {
      await writer.file('config/voicechat.env', readFileSync(config.configPath));
    }
    if (keyringText) await writer.file('keys/keys.json', keyringText);
    const manifest = await writer.finish(schema.at(-1) ?? '');
    renameSync(tmp, file);
    const pruned = dir && opts.keep ? pruneBackups(dir, opts.keep) : [];
    return {
      file,
      bytes: statSync(file).size,
      tables,
      files: fileCount,
      includes_keys: Boolean(keyringText),
      schema_version: manifest.schema_version,
      pruned,
    };
  } catch (e) {
    writer.abort();
    rmSync(tmp, { force: true });
    throw e;
  }
}

/** Keeps the `keep` newest timestamped backups in `dir`; returns the names removed. */
export function pruneBackups(dir: string, keep: number): string[] {
  const names = readdirSync(dir)
    .filter((n) => BACKUP_NAME.test(n))
    .sort()
    .reverse();
  const old = names.slice(keep);
  for (const n of old) rmSync(path.join(dir, n), { force: true });
  return old;
}

// ── restore ─────────────────────────────────────────────────────────────────────────────────────

export interface RestoreTarget {
  dialect: Dialect;
  databaseUrl: string;
  sqliteFile: string;
  dataDir: string;
  /** Where the restored config goes (kept if it exists). */
  configPath: string;
}

export interface RestoreOptions {
  force: boolean;
  onProgress?: BackupProgress;
}

export interface RestoreResult {
  tables: Record<string, number>;
  files: number;
  from_dialect: Dialect;
  to_dialect: Dialect;
  schema_version: string;
  migrations_applied: string[];
  config: { path: string; written: boolean };
  keyring: { path: string; written: boolean } | null;
  notes: string[];
}

/** Pass 1: reads and checks the whole archive; returns header facts and the manifest. */
export async function verifyArchive(file: string) {
  let header: Extract<ArchiveEvent, { kind: 'header' }>['header'] | undefined;
  const manifest = await readArchive(file, (e) => {
    if (e.kind === 'header') header = e.header;
    if (e.kind === 'file' && !isSafeArchivePath(e.path)) {
      throw new ArchiveError(`archive ${file} names an unsafe path ${JSON.stringify(e.path)}`);
    }
  });
  return { header: header as NonNullable<typeof header>, manifest };
}

function isSafeArchivePath(p: string): boolean {
  const [dir, name, ...rest] = p.split('/');
  if (rest.length > 0 || !name) return false;
  if (dir === 'uploads') return UPLOAD_NAME.test(name);
  return (dir === 'config' && name === 'voicechat.env') || (dir === 'keys' && name === 'keys.json');
}

export async function restore(file: string, target: RestoreTarget, opts: RestoreOptions): Promise<RestoreResult> {
  const { header, manifest } = await verifyArchive(file);
  const known = knownMigrations();
  const newer = header.schema.filter((m) => !known.includes(m));
  if (newer.length > 0) {
    throw new RestoreRefused(
      `the backup is from a newer schema version (${newer.at(-1)}); install the voicechat version that made it (or newer) first`,
    );
  }
  const notes: string[] = [];
  const db = createDb({ dialect: target.dialect, sqliteFile: target.sqliteFile, databaseUrl: target.databaseUrl });
  try {
    try {
      await db.raw('select 1');
    } catch (e) {
      throw new RestoreRefused(`target database unreachable (${(e as Error).message.split('\n')[0]})`);
    }
    const withData = await repo.tablesWithData(db);
    if (withData.length > 0) {
      throw new RestoreRefused(
        `the target database holds data (${withData.slice(0, 4).join(', ')}…); restore only into an empty database`,
      );
    }
    const live = await repo.liveNodeCount(db, Date.now());
    if (live > 0 && !opts.force) {
      throw new RestoreRefused(
        `a running server (${live} node(s)) uses the target database; stop it, or pass --force (the target is empty)`,
      );
    }
    conflictingUploads(file, manifest, target.dataDir);

    // Bring the (empty) target to exactly the backup's schema version.
    const { completed } = await migrationStatus(db);
    const compatible = completed.every((m, i) => header.schema[i] === m);
    if (!compatible || completed.length > header.schema.length) await migrateDown(db, true);
    const version = header.schema.at(-1);
    if (version) await migrateUpTo(db, version);

    const tables: Record<string, number> = {};
    await db.transaction(async (trx) => {
      await repo.clearSeeded(trx);
      let table: string | undefined;
      let columns: string[] = [];
      let pending: unknown[][] = [];
      const flush = async () => {
        if (table && pending.length > 0) await repo.insertRows(trx, table, columns, pending);
        pending = [];
      };
      await readArchive(file, async (e) => {
        if (e.kind === 'table') {
          table = e.name;
          columns = e.columns;
          tables[table] = 0;
        } else if (e.kind === 'row' && table) {
          pending.push(e.values);
          tables[table] = (tables[table] ?? 0) + 1;
          if (pending.length >= 2000) {
            await flush();
            opts.onProgress?.(`restore ${table}`, tables[table] as number, manifest.tables[table]?.rows ?? 0);
          }
        } else if (e.kind === 'end-table') {
          await flush();
          opts.onProgress?.(`restore ${e.name}`, e.rows, e.rows);
          table = undefined;
        }
      });
      await repo.resetSequences(trx, target.dialect);
    });
    const migrationsApplied = await migrateUp(db);

    const written = await writeFiles(file, manifest, target, notes, opts.onProgress);
    return {
      tables,
      files: written.uploads,
      from_dialect: header.dialect,
      to_dialect: target.dialect,
      schema_version: manifest.schema_version,
      migrations_applied: migrationsApplied,
      config: written.config,
      keyring: written.keyring,
      notes,
    };
  } finally {
    await db.destroy();
  }
}

/** Refuses when the target upload directory holds a file of the same name with other content. */
function conflictingUploads(file: string, manifest: Manifest, dataDir: string): void {
  for (const [p, f] of Object.entries(manifest.files)) {
    if (!p.startsWith('uploads/')) continue;
    const dest = path.join(dataDir, p);
    if (existsSync(dest) && sha256Hex(readFileSync(dest)) !== f.sha256) {
      throw new RestoreRefused(
        `${dest} exists with other content than ${file} holds; restore into an empty data directory`,
      );
    }
  }
}

async function writeFiles(
  file: string,
  manifest: Manifest,
  target: RestoreTarget,
  notes: string[],
  onProgress?: BackupProgress,
) {
  const uploadsDir = path.join(target.dataDir, 'uploads');
  mkdirSync(uploadsDir, { recursive: true, mode: 0o700 });
  const keyringPath = path.join(path.dirname(target.configPath), 'keys.json');
  let uploads = 0;
  const totalUploads = Object.keys(manifest.files).filter((p) => p.startsWith('uploads/')).length;
  let current: { path: string; tmp: string; handle: Awaited<ReturnType<typeof openFile>> } | undefined;
  const small = new Map<string, Buffer[]>();
  let smallChunks: Buffer[] | undefined;
  await readArchive(file, async (e) => {
    if (e.kind === 'file') {
      if (e.path.startsWith('uploads/')) {
        const dest = path.join(target.dataDir, e.path);
        const tmp = `${dest}.${process.pid}.partial`;
        current = { path: dest, tmp, handle: await openFile(tmp, 'w', 0o600) };
      } else {
        smallChunks = [];
        small.set(e.path, smallChunks);
      }
    } else if (e.kind === 'chunk') {
      if (current) await current.handle.write(e.data);
      else smallChunks?.push(e.data);
    } else if (e.kind === 'end-file' && current) {
      await current.handle.close();
      renameSync(current.tmp, current.path);
      current = undefined;
      uploads++;
      onProgress?.('restore uploads', uploads, totalUploads);
    }
  });

  const config = { path: target.configPath, written: false };
  const archived = small.get('config/voicechat.env');
  if (existsSync(target.configPath)) {
    notes.push(
      `kept the existing config ${target.configPath}: check VOICECHAT_DATABASE_URL and VOICECHAT_DATA_DIR in it`,
    );
  } else {
    const values = archived ? parseEnvFile(Buffer.concat(archived).toString('utf8')) : {};
    values.VOICECHAT_DATA_DIR = target.dataDir;
    // A restored keyring sits beside the restored config, where the default lookup finds it.
    if (small.has('keys/keys.json')) delete values.VOICECHAT_KEYRING;
    if (target.dialect === 'pg') values.VOICECHAT_DATABASE_URL = target.databaseUrl;
    else if (target.sqliteFile === path.join(target.dataDir, 'voicechat.db')) delete values.VOICECHAT_DATABASE_URL;
    else values.VOICECHAT_DATABASE_URL = `sqlite://${target.sqliteFile}`;
    mkdirSync(path.dirname(target.configPath), { recursive: true, mode: 0o700 });
    writeFileSync(
      target.configPath,
      formatEnvFile(values, ['VoiceChat configuration, restored by `voicechat restore`.']),
      { mode: 0o600 },
    );
    config.written = true;
  }

  let keyring: RestoreResult['keyring'] = null;
  const keys = small.get('keys/keys.json');
  if (keys) {
    const text = Buffer.concat(keys);
    keyring = { path: keyringPath, written: false };
    if (!existsSync(keyringPath)) {
      writeFileSync(keyringPath, text, { mode: 0o600 });
      keyring.written = true;
    } else if (!readFileSync(keyringPath).equals(text)) {
      notes.push(
        `kept the existing keyring ${keyringPath}, which differs from the archive's: the restored data needs the archive's keys`,
      );
    }
  } else {
    notes.push(
      'the archive holds no keyring: without the original keys.json, MFA secrets and Megolm data cannot be decrypted',
    );
  }
  return { uploads, config, keyring };
}
