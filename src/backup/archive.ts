/**
 * The portable backup archive: gzip-compressed JSON lines, the same for both dialects.
 *   {"t":"header", format, version, created_at, dialect, schema: [migration names], includes_keys}
 *   {"t":"table", name, columns}  {"r":[values…]}…  {"t":"end", name, rows, sha256}
 *   {"t":"file", path}  {"d":"<base64 chunk>"}…  {"t":"end", path, size, sha256}
 *   {"t":"manifest", schema_version, tables: {name: {rows, sha256}}, files: {path: {size, sha256}}, records_sha256}
 * Table checksums cover the row lines as written; file checksums the file bytes; `records_sha256`
 * every line before the manifest. The manifest comes last because checksums are known only after
 * streaming; a reader verifies the whole archive before anything is written.
 */
import { createHash, type Hash } from 'node:crypto';
import { once } from 'node:events';
import { createReadStream, createWriteStream, type WriteStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { createGunzip, createGzip, type Gzip } from 'node:zlib';

export const FORMAT = 'voicechat-backup';
export const FORMAT_VERSION = 1;
const CHUNK = 1024 * 1024;

export interface Header {
  t: 'header';
  format: string;
  version: number;
  created_at: string;
  dialect: 'sqlite' | 'pg';
  schema: string[];
  includes_keys: boolean;
}

export interface Manifest {
  t: 'manifest';
  schema_version: string;
  tables: Record<string, { rows: number; sha256: string }>;
  files: Record<string, { size: number; sha256: string }>;
  records_sha256: string;
}

/** Refused archive: the message says what is wrong; nothing was written. */
export class ArchiveError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ArchiveError';
  }
}

export class ArchiveWriter {
  #gzip: Gzip;
  #out: WriteStream;
  #all = createHash('sha256');
  #section: { kind: 'table' | 'file'; name: string; hash: Hash; count: number } | undefined;
  #manifest: Omit<Manifest, 't' | 'records_sha256' | 'schema_version'> = { tables: {}, files: {} };
  #done: Promise<void>;

  constructor(file: string) {
    this.#gzip = createGzip({ level: 3 });
    this.#out = createWriteStream(file, { mode: 0o600 });
    this.#gzip.pipe(this.#out);
    this.#done = new Promise((resolve, reject) => {
      this.#out.on('finish', resolve);
      this.#out.on('error', reject);
      this.#gzip.on('error', reject);
    });
  }

  async #line(obj: unknown, hash?: Hash): Promise<void> {
    const text = `${JSON.stringify(obj)}\n`;
    this.#all.update(text);
    hash?.update(text);
    if (!this.#gzip.write(text)) await once(this.#gzip, 'drain');
  }

  header(h: Omit<Header, 't' | 'format' | 'version'>): Promise<void> {
    return this.#line({ t: 'header', format: FORMAT, version: FORMAT_VERSION, ...h });
  }

  async beginTable(name: string, columns: string[]): Promise<void> {
    await this.#line({ t: 'table', name, columns });
    this.#section = { kind: 'table', name, hash: createHash('sha256'), count: 0 };
  }

  /** Rows of the open table, written as one chunk (per-row awaits cost more than the rows). */
  async rows(batch: unknown[][]): Promise<void> {
    const s = this.#section as NonNullable<typeof this.section>;
    let text = '';
    for (const values of batch) text += `${JSON.stringify({ r: values })}\n`;
    s.count += batch.length;
    this.#all.update(text);
    s.hash.update(text);
    if (!this.#gzip.write(text)) await once(this.#gzip, 'drain');
  }

  get section() {
    return this.#section;
  }

  async endTable(): Promise<void> {
    const s = this.#section as NonNullable<typeof this.section>;
    const sha256 = s.hash.digest('hex');
    this.#manifest.tables[s.name] = { rows: s.count, sha256 };
    await this.#line({ t: 'end', name: s.name, rows: s.count, sha256 });
    this.#section = undefined;
  }

  /** A file from disk, in chunks. */
  async file(archivePath: string, source: string | Buffer): Promise<void> {
    await this.#line({ t: 'file', path: archivePath });
    const hash = createHash('sha256');
    let size = 0;
    const chunks = typeof source === 'string' ? createReadStream(source, { highWaterMark: CHUNK }) : [source];
    for await (const chunk of chunks as AsyncIterable<Buffer>) {
      hash.update(chunk);
      size += chunk.length;
      await this.#line({ d: chunk.toString('base64') });
    }
    const sha256 = hash.digest('hex');
    this.#manifest.files[archivePath] = { size, sha256 };
    await this.#line({ t: 'end', path: archivePath, size, sha256 });
  }

  async finish(schemaVersion: string): Promise<Manifest> {
    const manifest: Manifest = {
      t: 'manifest',
      schema_version: schemaVersion,
      ...this.#manifest,
      records_sha256: this.#all.digest('hex'),
    };
    const text = `${JSON.stringify(manifest)}\n`;
    this.#gzip.end(text);
    await this.#done;
    return manifest;
  }

  /** Abandons a partial archive (the caller removes the file). */
  abort(): void {
    this.#gzip.destroy();
    this.#out.destroy();
  }
}

export type ArchiveEvent =
  | { kind: 'header'; header: Header }
  | { kind: 'table'; name: string; columns: string[] }
  | { kind: 'row'; values: unknown[] }
  | { kind: 'end-table'; name: string; rows: number }
  | { kind: 'file'; path: string }
  | { kind: 'chunk'; data: Buffer }
  | { kind: 'end-file'; path: string }
  | { kind: 'manifest'; manifest: Manifest };

/**
 * Reads an archive, checking every checksum as it goes; throws ArchiveError at the first problem
 * (including a missing manifest: a truncated archive). Events are handed to `onEvent` in order.
 */
/** Carries an error thrown by the caller's handler through the reader unchanged. */
class HandlerFailure {
  constructor(readonly cause: unknown) {}
}

export async function readArchive(file: string, handler: (e: ArchiveEvent) => Promise<void> | void): Promise<Manifest> {
  const onEvent = async (e: ArchiveEvent) => {
    try {
      await handler(e);
    } catch (err) {
      throw new HandlerFailure(err);
    }
  };
  const gunzip = createGunzip();
  const input = createReadStream(file);
  let streamError: Error | undefined;
  input.on('error', (e) => {
    streamError = e;
    gunzip.destroy(e);
  });
  gunzip.on('error', (e) => {
    streamError = e;
  });
  const lines = createInterface({ input: input.pipe(gunzip), crlfDelay: Number.POSITIVE_INFINITY });
  const all = createHash('sha256');
  let lineNo = 0;
  let header: Header | undefined;
  let manifest: Manifest | undefined;
  let section: { kind: 'table' | 'file'; name: string; hash: Hash; count: number } | undefined;
  const seenTables: Record<string, { rows: number; sha256: string }> = {};
  const seenFiles: Record<string, { size: number; sha256: string }> = {};
  const bad = (why: string) => new ArchiveError(`archive ${file} is corrupted at record ${lineNo}: ${why}`);
  try {
    for await (const text of lines) {
      lineNo++;
      if (manifest) throw bad('data after the manifest');
      let rec: any;
      try {
        rec = JSON.parse(text);
      } catch {
        throw bad('not valid JSON');
      }
      if (lineNo === 1) {
        if (rec?.t !== 'header' || rec.format !== FORMAT) throw new ArchiveError(`${file} is not a voicechat backup`);
        if (rec.version !== FORMAT_VERSION) {
          throw new ArchiveError(
            `${file} has backup format version ${rec.version}; this voicechat reads version ${FORMAT_VERSION}`,
          );
        }
        header = rec as Header;
        all.update(`${text}\n`);
        await onEvent({ kind: 'header', header });
        continue;
      }
      if (rec.t === 'manifest') {
        manifest = rec as Manifest;
        if (manifest.records_sha256 !== all.digest('hex')) throw bad('records checksum does not match');
        for (const [name, t] of Object.entries(manifest.tables ?? {})) {
          if (seenTables[name]?.sha256 !== t.sha256 || seenTables[name]?.rows !== t.rows)
            throw bad(`table ${name} differs from the manifest`);
        }
        for (const [p, f] of Object.entries(manifest.files ?? {})) {
          if (seenFiles[p]?.sha256 !== f.sha256) throw bad(`file ${p} differs from the manifest`);
        }
        if (Object.keys(seenTables).length !== Object.keys(manifest.tables ?? {}).length)
          throw bad('tables missing from the manifest');
        await onEvent({ kind: 'manifest', manifest });
        continue;
      }
      all.update(`${text}\n`);
      if (rec.r !== undefined) {
        if (section?.kind !== 'table' || !Array.isArray(rec.r)) throw bad('row outside a table');
        section.hash.update(`${text}\n`);
        section.count++;
        await onEvent({ kind: 'row', values: rec.r });
      } else if (rec.d !== undefined) {
        if (section?.kind !== 'file' || typeof rec.d !== 'string') throw bad('data outside a file');
        const data = Buffer.from(rec.d, 'base64');
        section.hash.update(data);
        section.count += data.length;
        await onEvent({ kind: 'chunk', data });
      } else if (rec.t === 'table' && !section && typeof rec.name === 'string' && Array.isArray(rec.columns)) {
        section = { kind: 'table', name: rec.name, hash: createHash('sha256'), count: 0 };
        await onEvent({ kind: 'table', name: rec.name, columns: rec.columns });
      } else if (rec.t === 'file' && !section && typeof rec.path === 'string') {
        section = { kind: 'file', name: rec.path, hash: createHash('sha256'), count: 0 };
        await onEvent({ kind: 'file', path: rec.path });
      } else if (rec.t === 'end' && section) {
        const sha = section.hash.digest('hex');
        if (rec.sha256 !== sha) throw bad(`checksum of ${section.kind} ${section.name} does not match`);
        if (section.kind === 'table') {
          if (rec.rows !== section.count) throw bad(`table ${section.name} row count does not match`);
          seenTables[section.name] = { rows: section.count, sha256: sha };
          await onEvent({ kind: 'end-table', name: section.name, rows: section.count });
        } else {
          if (rec.size !== section.count) throw bad(`file ${section.name} size does not match`);
          seenFiles[section.name] = { size: section.count, sha256: sha };
          await onEvent({ kind: 'end-file', path: section.name });
        }
        section = undefined;
      } else {
        throw bad('unexpected record');
      }
    }
  } catch (e) {
    if (e instanceof HandlerFailure) throw e.cause;
    if (e instanceof ArchiveError) throw e;
    throw new ArchiveError(`archive ${file} cannot be read: ${(streamError ?? (e as Error)).message}`);
  } finally {
    lines.close();
    input.destroy();
  }
  if (streamError) throw new ArchiveError(`archive ${file} is corrupted: ${streamError.message}`);
  if (!header) throw new ArchiveError(`${file} is empty or not a voicechat backup`);
  if (!manifest) throw new ArchiveError(`archive ${file} is truncated (no manifest at the end)`);
  return manifest;
}
