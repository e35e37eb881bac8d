/**
 * Upload abuse over real HTTP: spoofed types, extension mismatches, path traversal names, NUL bytes,
 * leading dots, empty bodies, one byte over the limit (with and without Content-Length), the
 * 5-per-minute limit, and safe downloads.
 */
import { existsSync, readdirSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { api, createUser, type TestUser } from '../support/factories.js';
import { type GuildFixture, joinGuild, ok, seedGuild } from '../support/guilds.js';
import { useTestServer } from '../support/server.js';

const LIMIT = 2048;
const PNG = Buffer.from(
  '89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4890000000a49444154789c6300010000050001',
  'hex',
);
const PDF = Buffer.from('%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\ntrailer\n<<>>\n%%EOF\n', 'latin1');
const HTML = Buffer.from('<!DOCTYPE html><html><body><script>alert(document.cookie)</script></body></html>');
const EXE = Buffer.concat([Buffer.from('MZ'), Buffer.alloc(200, 0x90)]);

describe('uploads', () => {
  let fx: GuildFixture;
  let uploadsDir: string;
  const server = useTestServer({ VOICECHAT_UPLOAD_MAX_BYTES: String(LIMIT) });
  beforeAll(async () => {
    fx = await seedGuild(server);
    uploadsDir = path.join(server.config.dataDir, 'uploads');
  });

  /** A member with a fresh upload allowance (5 per minute per user). */
  async function uploader(): Promise<TestUser> {
    const u = await createUser(server);
    await joinGuild(server, fx.owner, fx.guildId, u);
    return u;
  }

  async function upload(
    user: TestUser,
    filename: string | undefined,
    body: Buffer | ReadableStream,
    headers: Record<string, string> = {},
  ) {
    const res = await fetch(`${server.url}/api/channels/${fx.textChannelId}/attachments`, {
      method: 'POST',
      headers: {
        authorization: user.headers.authorization!,
        'content-type': 'application/octet-stream',
        ...(filename === undefined ? {} : { 'x-filename': filename }),
        ...headers,
      },
      body,
      ...(body instanceof ReadableStream ? { duplex: 'half' } : {}),
    } as RequestInit);
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : undefined, headers: res.headers };
  }

  const stored = () => (existsSync(uploadsDir) ? readdirSync(uploadsDir).sort() : []);
  const dataDirEntries = () => readdirSync(server.config.dataDir).sort();

  /** Every file on disk is one of ours: a random name with a row pointing at it. */
  async function assertDiskMatchesRows() {
    const rows = await server.db('attachments').select('storage_name');
    expect(stored()).toEqual(rows.map((r: { storage_name: string }) => r.storage_name).sort());
    for (const f of stored()) expect(f).toMatch(/^[A-Za-z0-9_-]{32}$/);
  }

  it('accepts allowed types whose magic bytes match the extension, and serves them as attachments', async () => {
    const u = await uploader();
    const png = await upload(u, 'photo.png', PNG, { 'content-type': 'text/html' });
    expect(png.status).toBe(201);
    expect(png.body).toMatchObject({ filename: 'photo.png', mime_type: 'image/png', size_bytes: PNG.length });
    const pdf = await upload(u, 'doc.pdf', PDF);
    expect(pdf.body.mime_type).toBe('application/pdf');
    const txt = await upload(u, 'notes.txt', Buffer.from('plain UTF-8 text — ünïcödé ✓\n'));
    expect(txt.body.mime_type).toBe('text/plain');
    const rows = await server.db('audit_log').where({ action: 'upload.create', user_id: u.id });
    expect(rows).toHaveLength(3);
    await assertDiskMatchesRows();

    const dl = await fetch(`${server.url}/api/attachments/${png.body.id}`, { headers: u.headers });
    expect(dl.status).toBe(200);
    expect(dl.headers.get('content-disposition')).toBe(`attachment; filename="photo.png"; filename*=UTF-8''photo.png`);
    expect(dl.headers.get('x-content-type-options')).toBe('nosniff');
    expect(dl.headers.get('content-type')).toBe('image/png');
    expect(Buffer.from(await dl.arrayBuffer()).equals(PNG)).toBe(true);
    const t = await fetch(`${server.url}/api/attachments/${txt.body.id}`, { headers: u.headers });
    expect(t.headers.get('content-type')).toBe('text/plain; charset=utf-8');
    await t.arrayBuffer();
    // An unlinked upload is visible to its uploader only.
    expect((await api(server, 'GET', `/api/attachments/${png.body.id}`, { user: fx.owner })).status).toBe(404);
  });

  it('refuses spoofed types and extension mismatches with 415, leaving nothing on disk', async () => {
    const before = stored();
    const cases: [string, Buffer, Record<string, string>][] = [
      ['x.html', PNG, {}],
      ['x.png', HTML, { 'content-type': 'image/png' }],
      ['x.png', EXE, { 'content-type': 'image/png' }],
      ['x.exe', EXE, {}],
      ['x.png', PDF, {}],
      ['x.pdf', PNG, {}],
      ['x.svg', Buffer.from('<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'), {}],
      ['x.html', HTML, { 'content-type': 'text/html' }],
      ['x.txt', Buffer.from('nul\u0000inside'), {}],
      ['x.txt', Buffer.from([0xc3, 0x28, 0x41]), {}],
      ['x.txt', PNG, {}],
      ['noextension', Buffer.from('text'), {}],
    ];
    for (let i = 0; i < cases.length; i++) {
      const [name, body, headers] = cases[i]!;
      const u = i % 5 === 0 ? await uploader() : undefined;
      const res = await upload(u ?? (await uploader()), name, body, headers);
      expect({ name, status: res.status }).toEqual({ name, status: 415 });
      expect(res.body.error.code).toBe('UNSUPPORTED_MEDIA_TYPE');
    }
    expect(stored()).toEqual(before);
  });

  it('sanitises traversal names, never writing outside the upload directory', async () => {
    const beforeData = dataDirEntries();
    const cases: [string, string | null][] = [
      ['../../etc/passwd', null],
      ['../../etc/passwd.txt', 'passwd.txt'],
      ['..\\..\\x.txt', 'x.txt'],
      // X-Filename is percent-decoded first (issue 14), then cleaned like any name.
      ['%2e%2e%2f%2e%2e%2fx.txt', 'x.txt'],
      ['%2E%2E%5C..%5Cz.txt', 'z.txt'],
      ['...hidden.png', 'hidden.png'],
      ['/absolute/path/y.png', 'y.png'],
    ];
    for (const [name, expected] of cases) {
      const u = await uploader();
      const body = name.endsWith('.png') ? PNG : Buffer.from('harmless text');
      const res = await upload(u, name, body);
      if (expected === null) {
        expect(res.status).toBe(415);
      } else {
        expect(res.status).toBe(201);
        expect(res.body.filename).toBe(expected);
        const row = await server.db('attachments').where({ id: res.body.id }).first();
        expect(row.filename).toBe(expected);
        expect(row.storage_name).not.toContain(expected);
      }
    }
    expect(dataDirEntries()).toEqual(beforeData);
    expect(readdirSync(path.dirname(server.config.dataDir)).some((f) => /passwd|x\.txt/.test(f))).toBe(false);
    await assertDiskMatchesRows();
  });

  /** Sends a hand-made request (fetch refuses control bytes in headers); '' when the server drops it. */
  function rawUpload(user: TestUser, filename: Buffer, body: Buffer): Promise<string> {
    return new Promise((resolve, reject) => {
      let out = '';
      const sock = net.connect(server.port, '127.0.0.1', () => {
        sock.write(
          Buffer.concat([
            Buffer.from(
              `POST /api/channels/${fx.textChannelId}/attachments HTTP/1.1\r\nHost: x\r\nAuthorization: ${user.headers.authorization}\r\n` +
                `Content-Type: application/octet-stream\r\nContent-Length: ${body.length}\r\nConnection: close\r\nX-Filename: `,
            ),
            filename,
            Buffer.from('\r\n\r\n'),
            body,
          ]),
        );
      });
      sock.setTimeout(1000, () => sock.destroy());
      sock.on('data', (d) => {
        out += d.toString();
      });
      sock.on('close', () => resolve(out));
      sock.on('error', reject);
    });
  }

  it('never stores NUL or control bytes from a raw X-Filename header', async () => {
    // uWS drops a request whose header holds a NUL; anything it passes on is cleaned by the sanitiser.
    const nul = await rawUpload(
      await uploader(),
      Buffer.from('..\\\u0000evil.txt', 'latin1'),
      Buffer.from('text body'),
    );
    expect(nul === '' || /^HTTP\/1\.1 400/.test(nul)).toBe(true);
    const ctl = await rawUpload(
      await uploader(),
      Buffer.from('..\\e\u0001v\u007fil\u0008.txt', 'latin1'),
      Buffer.from('text body'),
    );
    if (ctl !== '') {
      expect(ctl).toMatch(/^HTTP\/1\.1 201/);
      expect(ctl).toContain('"filename":"evil.txt"');
    }
    const names = (await server.db('attachments').select('filename')).map((r: { filename: string }) => r.filename);
    for (const n of names) expect(n).not.toMatch(/[\p{Cc}/\\]/u);
    await assertDiskMatchesRows();
  });

  it('refuses an empty body (400) and a missing X-Filename (400)', async () => {
    const u = await uploader();
    const before = stored();
    const empty = await upload(u, 'empty.txt', Buffer.alloc(0));
    expect(empty.status).toBe(400);
    const unnamed = await upload(u, undefined, Buffer.from('x'));
    expect(unnamed.status).toBe(400);
    expect(stored()).toEqual(before);
  });

  it('refuses one byte over the limit with 413, with or without Content-Length, leaving no partial file', async () => {
    const before = stored();
    const exact = Buffer.concat([PNG, Buffer.alloc(LIMIT - PNG.length)]);
    const over = Buffer.concat([PNG, Buffer.alloc(LIMIT - PNG.length + 1)]);
    const declared = await upload(await uploader(), 'big.png', over);
    expect(declared.status).toBe(413);
    expect(declared.body.error.code).toBe('PAYLOAD_TOO_LARGE');
    // Chunked (no Content-Length): the limit is enforced while streaming.
    const streamed = await upload(
      await uploader(),
      'big.png',
      new ReadableStream({
        start(c) {
          for (let i = 0; i < over.length; i += 256) c.enqueue(over.subarray(i, i + 256));
          c.close();
        },
      }),
    );
    expect(streamed.status).toBe(413);
    expect(stored()).toEqual(before);
    const fits = await upload(await uploader(), 'fits.png', exact);
    expect(fits.status).toBe(201);
    expect(fits.body.size_bytes).toBe(LIMIT);
    await assertDiskMatchesRows();
  });

  it('refuses a JSON-typed upload (the JSON parser must not swallow file bodies)', async () => {
    const res = await upload(await uploader(), 'x.txt', Buffer.from('{"a":1}'), { 'content-type': 'application/json' });
    expect(res.status).toBe(415);
  });

  it('allows 5 uploads per minute per user, then 429 with Retry-After', async () => {
    const u = await uploader();
    for (let i = 0; i < 5; i++) expect((await upload(u, `f${i}.txt`, Buffer.from(`file ${i}`))).status).toBe(201);
    const sixth = await upload(u, 'f6.txt', Buffer.from('file 6'));
    expect(sixth.status).toBe(429);
    expect(sixth.body.error.code).toBe('RATE_LIMITED');
    expect(Number(sixth.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(await server.db('attachments').where({ filename: 'f6.txt' }).first()).toBeUndefined();
    await assertDiskMatchesRows();
  });

  it('needs ATTACH_FILES in the channel (403) and a visible channel (404)', async () => {
    const u = await uploader();
    const ch = (
      await ok(
        api(server, 'POST', `/api/guilds/${fx.guildId}/channels`, {
          user: fx.owner,
          body: { name: 'no-files', type: 'text' },
        }),
        201,
      )
    ).id;
    await ok(
      api(server, 'PUT', `/api/channels/${ch}/overrides/${fx.everyoneRoleId}`, {
        user: fx.owner,
        body: { allow: '0', deny: String(1 << 2) },
      }),
    );
    const res = await fetch(`${server.url}/api/channels/${ch}/attachments`, {
      method: 'POST',
      headers: { authorization: u.headers.authorization!, 'x-filename': 'a.txt', 'content-type': 'text/plain' },
      body: 'x',
    });
    expect(res.status).toBe(403);
    const outsider = await fetch(`${server.url}/api/channels/${fx.textChannelId}/attachments`, {
      method: 'POST',
      headers: {
        authorization: fx.outsider.headers.authorization!,
        'x-filename': 'a.txt',
        'content-type': 'text/plain',
      },
      body: 'x',
    });
    expect(outsider.status).toBe(404);
  });
});
