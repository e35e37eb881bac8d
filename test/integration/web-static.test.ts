/**
 * The browser client's static serving (src/http/static-web.ts) on the real server: page CSP and
 * security headers, precompressed variants by Accept-Encoding, cache rules, client-route fallback,
 * the server's own prefixes untouched, and no way out of the build folder.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { brotliCompressSync, brotliDecompressSync, gunzipSync, gzipSync } from 'node:zlib';
import { beforeAll, describe, expect, it } from 'vitest';
import { pickEncoding, WEB_CSP } from '../../src/http/static-web.js';
import { tempDir } from '../support/db.js';
import { useTestServer } from '../support/server.js';

const INDEX = '<!doctype html><title>test shell</title><script type="module" src="/assets/app-abc123.js"></script>';
const APP_JS = `console.log(${JSON.stringify('x'.repeat(2000))});`;

/** A stand-in build: index.html, a hashed asset with .br/.gz, and a secret beside the folder. */
function fakeBuild(): string {
  const dir = tempDir('vc-web-');
  const root = path.join(dir, 'web');
  mkdirSync(path.join(root, 'assets'), { recursive: true });
  writeFileSync(path.join(dir, 'secret.txt'), 'outside the web root');
  writeFileSync(path.join(root, 'index.html'), INDEX);
  writeFileSync(path.join(root, 'assets', 'app-abc123.js'), APP_JS);
  writeFileSync(path.join(root, 'assets', 'app-abc123.js.br'), brotliCompressSync(APP_JS));
  writeFileSync(path.join(root, 'assets', 'app-abc123.js.gz'), gzipSync(APP_JS));
  writeFileSync(path.join(root, 'robots.txt'), 'User-agent: *\n');
  return root;
}

describe('web client static serving', () => {
  let root: string;
  beforeAll(() => {
    root = fakeBuild();
  });
  const server = useTestServer(() => ({ VOICECHAT_WEB_DIR: root }));

  const get = (p: string, headers: Record<string, string> = {}) => fetch(server.url + p, { headers });

  it('serves index.html at / with the page CSP, no-cache and the security headers', async () => {
    const res = await get('/');
    expect(res.status).toBe(200);
    expect(await res.text()).toBe(INDEX);
    expect(res.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(res.headers.get('content-security-policy')).toBe(WEB_CSP);
    expect(WEB_CSP).toBe(
      "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; img-src 'self' blob: data:; " +
        "media-src 'self' blob:; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'; " +
        "require-trusted-types-for 'script'",
    );
    expect(res.headers.get('cache-control')).toBe('no-cache');
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(res.headers.get('x-frame-options')).toBe('DENY');
    expect(res.headers.get('referrer-policy')).toBe('no-referrer');
    expect(res.headers.get('set-cookie')).toBeNull();
  });

  it('answers a matching If-None-Match with 304', async () => {
    const etag = (await get('/')).headers.get('etag')!;
    expect(etag).toMatch(/^"[\w-]+"$/);
    const res = await get('/', { 'if-none-match': etag });
    expect(res.status).toBe(304);
    expect((await get('/', { 'if-none-match': '"other"' })).status).toBe(200);
  });

  it('falls back to index.html for client routes', async () => {
    for (const p of ['/login', '/invite/AbC123xyz', '/channels/a/b', '/channels/a/b/settings', '/settings']) {
      const res = await get(p);
      expect(res.status, p).toBe(200);
      expect(await res.text(), p).toBe(INDEX);
      expect(res.headers.get('content-security-policy'), p).toBe(WEB_CSP);
    }
  });

  it('serves hashed assets immutable, precompressed by Accept-Encoding', async () => {
    const br = await get('/assets/app-abc123.js', { 'accept-encoding': 'gzip, deflate, br' });
    expect(br.status).toBe(200);
    expect(br.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    expect(br.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    expect(br.headers.get('vary')).toBe('Accept-Encoding');
    // fetch decodes bodies itself; read the raw bytes through the encoding header instead.
    expect(br.headers.get('content-encoding')).toBe('br');
    const gz = await get('/assets/app-abc123.js', { 'accept-encoding': 'gzip' });
    expect(gz.headers.get('content-encoding')).toBe('gzip');
    expect(await gz.text()).toBe(APP_JS);
    const plain = await get('/assets/app-abc123.js', { 'accept-encoding': 'identity' });
    expect(plain.headers.get('content-encoding')).toBeNull();
    expect(await plain.text()).toBe(APP_JS);
    const refused = await get('/assets/app-abc123.js', { 'accept-encoding': 'br;q=0, gzip;q=0' });
    expect(refused.headers.get('content-encoding')).toBeNull();
    expect(brotliDecompressSync(brotliCompressSync(APP_JS)).toString()).toBe(APP_JS);
    expect(gunzipSync(gzipSync(APP_JS)).toString()).toBe(APP_JS);
  });

  it('picks encodings by q-values', () => {
    const both = { br: Buffer.from('b'), gzip: Buffer.from('g') };
    expect(pickEncoding('gzip, br', both)).toBe('br');
    expect(pickEncoding('br;q=0, gzip', both)).toBe('gzip');
    expect(pickEncoding('*', both)).toBe('br');
    expect(pickEncoding('', both)).toBe('');
    expect(pickEncoding('gzip;q=0', { br: undefined, gzip: Buffer.from('g') })).toBe('');
  });

  it('answers HEAD without a body', async () => {
    const res = await fetch(`${server.url}/`, { method: 'HEAD' });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-length')).toBe(String(Buffer.byteLength(INDEX)));
    expect(await res.text()).toBe('');
  });

  it('404s a missing file instead of serving the shell', async () => {
    for (const p of ['/assets/missing-123.js', '/favicon.ico', '/nope.txt']) {
      const res = await get(p);
      expect(res.status, p).toBe(404);
      expect(await res.text(), p).not.toContain('test shell');
    }
    expect(await (await get('/robots.txt')).text()).toBe('User-agent: *\n');
  });

  it('never serves anything outside the build folder (path traversal)', async () => {
    const attempts = [
      '/../secret.txt',
      '/assets/../../secret.txt',
      '/%2e%2e/secret.txt',
      '/%2e%2e%2fsecret.txt',
      '/assets/..%2f..%2fsecret.txt',
      '/..%5csecret.txt',
      '/....//secret.txt',
      '/assets/%2e%2e/%2e%2e/secret.txt',
      `/${'../'.repeat(12)}etc/passwd`,
      '/%00index.html',
    ];
    for (const p of attempts) {
      // A raw request: fetch would normalise the dots away before sending.
      const res = await rawGet(server.port, p);
      expect(res.body, p).not.toContain('outside the web root');
      expect(res.body, p).not.toContain('root:x:0:0');
      expect([200, 400, 404], p).toContain(res.status);
    }
  });

  it('leaves the server prefixes to the API: JSON 404 for unknown /api, health, ready', async () => {
    const api = await get('/api/no-such-thing');
    expect(api.status).toBe(404);
    expect(api.headers.get('content-type')).toMatch(/^application\/json/);
    expect(((await api.json()) as any).error.code).toBe('NOT_FOUND');
    expect(api.headers.get('content-security-policy')).toBe("default-src 'none';frame-ancestors 'none'");
    expect((await get('/auth/nope')).headers.get('content-type')).toMatch(/^application\/json/);
    expect(await (await get('/health')).json()).toEqual({ status: 'ok' });
    expect((await get('/ready')).status).toBe(200);
    expect((await get('/metrics')).status).toBe(200);
    expect((await get('/apiary')).status).toBe(200); // not a server prefix: a client route
    const ws = await get('/ws');
    expect(await ws.text()).not.toContain('test shell');
  });
});

async function rawGet(port: number, target: string): Promise<{ status: number; body: string }> {
  const net = await import('node:net');
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => {
      socket.write(`GET ${target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`);
    });
    let data = '';
    socket.setEncoding('latin1');
    socket.on('data', (c: string) => {
      data += c;
    });
    socket.on('error', reject);
    socket.on('close', () => {
      const status = Number(data.split(' ')[1] ?? 0);
      resolve({ status, body: data.slice(data.indexOf('\r\n\r\n') + 4) });
    });
  });
}
