/**
 * Issue 14 items 7 and 8: the per-user upload quota (413 QUOTA_EXCEEDED with the numbers, freed by
 * deleting messages, race-safe under concurrent uploads) and interrupted uploads (an abort or a stall
 * leaves no file; `.part` leftovers of a killed server are swept at start-up and by the job).
 */
import { existsSync, readdirSync, utimesSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { JobDeps } from '../../src/jobs/job.js';
import { orphanUploads } from '../../src/jobs/orphan-uploads.js';
import { newStorageName, uploadDir } from '../../src/uploads/storage.js';
import { api, createUser, type TestUser } from '../support/factories.js';
import { type GuildFixture, joinGuild, ok, seedGuild } from '../support/guilds.js';
import { startTestServer, useTestServer } from '../support/server.js';

const QUOTA = 3000;
const MAX = 2048;
const text = (n: number) => Buffer.alloc(n, 'a');

describe('upload quota and interrupted uploads', () => {
  const server = useTestServer({
    VOICECHAT_UPLOAD_MAX_BYTES: String(MAX),
    VOICECHAT_UPLOAD_QUOTA_BYTES: String(QUOTA),
    VOICECHAT_RATE_LIMIT_SCALE: '100',
  });
  let fx: GuildFixture;
  let dir: string;
  beforeAll(async () => {
    fx = await seedGuild(server);
    dir = uploadDir(server.config.dataDir);
  });

  async function member(): Promise<TestUser> {
    const u = await createUser(server);
    await joinGuild(server, fx.owner, fx.guildId, u);
    return u;
  }

  async function upload(u: TestUser, body: Buffer | ReadableStream, name = 'a.txt') {
    const res = await fetch(`${server.url}/api/channels/${fx.textChannelId}/attachments`, {
      method: 'POST',
      headers: { authorization: u.headers.authorization!, 'content-type': 'text/plain', 'x-filename': name },
      body,
      ...(body instanceof ReadableStream ? { duplex: 'half' } : {}),
    } as RequestInit);
    return { status: res.status, body: (await res.json()) as any };
  }

  const streamOf = (buf: Buffer) =>
    new ReadableStream({
      start(c) {
        c.enqueue(new Uint8Array(buf));
        c.close();
      },
    });

  /** Files on disk are exactly the rows' files: no partial or stray file. */
  async function diskMatchesRows() {
    const rows = await server.db('attachments').select('storage_name');
    expect(readdirSync(dir).sort()).toEqual(rows.map((r: { storage_name: string }) => r.storage_name).sort());
  }

  const usedBy = async (u: TestUser) =>
    Number((await server.db('attachments').where({ uploader_id: u.id }).sum({ t: 'size_bytes' }).first())?.t ?? 0);

  it('refuses an upload past the quota with 413 QUOTA_EXCEEDED and the numbers; deleting messages frees it', async () => {
    const u = await member();
    const first = await upload(u, text(1500));
    expect(first.status).toBe(201);
    expect((await upload(u, text(1400))).status).toBe(201);
    // Declared length: refused before reading.
    const over = await upload(u, text(200));
    expect(over.status).toBe(413);
    expect(over.body.error).toMatchObject({
      code: 'QUOTA_EXCEEDED',
      used_bytes: 2900,
      quota_bytes: QUOTA,
      size_bytes: 200,
    });
    expect(over.body.error.message).toContain('2900 of 3000');
    // No declared length: stopped while streaming, nothing left on disk.
    const streamed = await upload(u, streamOf(text(200)));
    expect(streamed.status).toBe(413);
    expect(streamed.body.error).toMatchObject({ code: 'QUOTA_EXCEEDED', used_bytes: 2900, quota_bytes: QUOTA });
    // Over the size limit is still PAYLOAD_TOO_LARGE (the limit is checked first).
    expect((await upload(u, text(MAX + 1))).body.error.code).toBe('PAYLOAD_TOO_LARGE');
    // Exactly up to the quota is fine; other users have their own.
    expect((await upload(u, text(100))).status).toBe(201);
    expect(await usedBy(u)).toBe(QUOTA);
    expect((await upload(await member(), text(2000))).status).toBe(201);
    await diskMatchesRows();

    // Sent in a message, then the message deleted: its files' bytes are free again.
    const msg = await ok(
      api(server, 'POST', `/api/channels/${fx.textChannelId}/messages`, {
        user: u,
        body: { content: 'file', attachment_ids: [first.body.id] },
      }),
      201,
    );
    expect((await upload(u, text(1000))).status).toBe(413);
    await ok(api(server, 'DELETE', `/api/messages/${msg.id}`, { user: u }), 204);
    expect(await usedBy(u)).toBe(1500);
    expect((await upload(u, text(1000))).status).toBe(201);
    await diskMatchesRows();
  });

  it('holds under concurrent uploads: never more than the quota is stored', async () => {
    const u = await member();
    const results = await Promise.all(Array.from({ length: 8 }, () => upload(u, text(1000))));
    const statuses = results.map((r) => r.status).sort();
    expect(statuses).toEqual([201, 201, 201, 413, 413, 413, 413, 413]);
    for (const r of results.filter((x) => x.status === 413)) expect(r.body.error.code).toBe('QUOTA_EXCEEDED');
    expect(await usedBy(u)).toBe(3000);
    await diskMatchesRows();
  });

  /** Sends headers and part of a body on a raw socket; returns the socket. */
  async function partialUpload(u: TestUser, declared: number, sent: number): Promise<net.Socket> {
    const sock = net.connect(server.port, '127.0.0.1');
    await new Promise<void>((r) => sock.once('connect', () => r()));
    sock.on('error', () => {});
    sock.write(
      `POST /api/channels/${fx.textChannelId}/attachments HTTP/1.1\r\nHost: x\r\n` +
        `Authorization: ${u.headers.authorization}\r\nContent-Type: text/plain\r\nX-Filename: cut.txt\r\n` +
        `Content-Length: ${declared}\r\n\r\n`,
    );
    sock.write(text(sent));
    return sock;
  }

  const waitFor = async (cond: () => boolean | Promise<boolean>, ms: number) => {
    const until = Date.now() + ms;
    while (Date.now() < until) {
      if (await cond()) return true;
      await new Promise((r) => setTimeout(r, 100));
    }
    return cond();
  };

  it('deletes the partial file when the client aborts or stalls mid-upload', async () => {
    const u = await member();
    const aborted = await partialUpload(u, 2000, 700);
    // The partial file exists while the upload runs …
    expect(await waitFor(() => readdirSync(dir).some((f) => f.endsWith('.part')), 5000)).toBe(true);
    aborted.destroy();
    // … and is gone once the client went away.
    expect(await waitFor(() => !readdirSync(dir).some((f) => f.endsWith('.part')), 5000)).toBe(true);

    // A client that stops sending: uWS drops the connection after 10 s of silence.
    const stalled = await partialUpload(u, 2000, 700);
    expect(await waitFor(() => readdirSync(dir).some((f) => f.endsWith('.part')), 5000)).toBe(true);
    expect(await waitFor(() => !readdirSync(dir).some((f) => f.endsWith('.part')), 25_000)).toBe(true);
    stalled.destroy();
    await diskMatchesRows();
    expect(await usedBy(u)).toBe(0);
    // The server is fine afterwards.
    expect((await upload(u, text(10))).status).toBe(201);
  }, 60_000);

  it('sweeps partial files of a killed run at start-up and in the orphan-uploads job', async () => {
    const old = path.join(dir, `${newStorageName()}.part`);
    const fresh = path.join(dir, `${newStorageName()}.part`);
    const notOurs = path.join(dir, 'notes.part'); // not one of our names: never touched
    for (const f of [old, fresh, notOurs]) writeFileSync(f, 'partial bytes');
    const hourAgo = (Date.now() - 3600_000) / 1000;
    utimesSync(old, hourAgo, hourAgo);
    utimesSync(notOurs, hourAgo, hourAgo);

    // A server starting on this data directory (what a restart after a kill does).
    const restarted = await startTestServer({
      database: server.database,
      env: { VOICECHAT_DATABASE_URL: server.database.databaseUrl },
    });
    await restarted.stop();
    expect(existsSync(old)).toBe(false);
    // SQLite: one server per data directory, so every .part is a leftover. Postgres: nodes may share
    // the directory, so a recently written one is left for the job.
    expect(existsSync(fresh)).toBe(server.database.dialect === 'pg');
    expect(existsSync(notOurs)).toBe(true);

    if (existsSync(fresh)) {
      const deps = { db: server.db, config: server.config, logger: server.ctx.logger } as unknown as JobDeps;
      expect(await orphanUploads.run(deps, Date.now())).toMatchObject({ partial_files: 0 });
      expect(existsSync(fresh)).toBe(true);
      expect(await orphanUploads.run(deps, Date.now() + 11 * 60_000)).toMatchObject({ partial_files: 1 });
      expect(existsSync(fresh)).toBe(false);
    }
    writeFileSync(fresh, 'again');
    utimesSync(fresh, hourAgo, hourAgo);
    const deps = { db: server.db, config: server.config, logger: server.ctx.logger } as unknown as JobDeps;
    expect(await orphanUploads.run(deps, Date.now())).toMatchObject({ partial_files: 1 });
    expect(existsSync(fresh)).toBe(false);
    expect(existsSync(notOurs)).toBe(true);
  });
});
