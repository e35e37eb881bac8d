/**
 * Serves the built browser client (`dist/web`, made by `vite build`) straight from uWS, beside the
 * Express routes on the same port. The whole build is read into memory at start (it is small), so a
 * request can only ever get one of the files that were there: no path is joined, nothing outside the
 * folder is reachable. Hashed assets (`/assets/…`) are immutable for a year; everything else is
 * `no-cache` with an ETag. Precompressed `.br`/`.gz` siblings are chosen by `Accept-Encoding`.
 * Paths that look like client routes (no file extension) fall back to `index.html`; the API's own
 * prefixes are yielded to the Express router untouched, so they keep their meaning (and their stricter
 * CSP, and a JSON 404 for unknown `/api/...`).
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { HttpRequest, HttpResponse, TemplatedApp } from '../net/uws.js';

/** The page's CSP (DESIGN.md §13), exactly. */
export const WEB_CSP =
  "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; img-src 'self' blob: data:; " +
  "media-src 'self' blob:; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'; " +
  "require-trusted-types-for 'script'";

/** Path prefixes that belong to the server, never to the client. */
export const SERVER_PREFIXES = ['/api', '/auth', '/ws', '/health', '/ready', '/metrics'];

const IMMUTABLE = 'public, max-age=31536000, immutable';
const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.webmanifest': 'application/manifest+json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.wasm': 'application/wasm',
  '.txt': 'text/plain; charset=utf-8',
  '.map': 'application/json',
};

interface WebFile {
  type: string;
  cacheControl: string;
  etag: string;
  body: Buffer;
  br?: Buffer;
  gzip?: Buffer;
}

export interface WebClientOptions {
  /** The built client; default: `dist/web` in the package root. */
  root?: string;
  /** Adds HSTS (the server terminates TLS itself). */
  tls?: boolean;
  /** Told about every answered request (metrics). */
  onServed?: (method: string, status: number) => void;
}

/** `dist/web` of the package this module belongs to (works from `src/` under tsx and from `dist/src/`). */
export function defaultWebRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!existsSync(path.join(dir, 'package.json'))) {
    const up = path.dirname(dir);
    if (up === dir) break;
    dir = up;
  }
  return path.join(dir, 'dist', 'web');
}

/** Reads every file under `root` (URL path → file with its precompressed variants). */
export function loadWebFiles(root: string): Map<string, WebFile> {
  const files = new Map<string, WebFile>();
  const walk = (dir: string) => {
    for (const name of readdirSync(dir)) {
      const full = path.join(dir, name);
      if (statSync(full).isDirectory()) {
        walk(full);
        continue;
      }
      if (name.endsWith('.br') || name.endsWith('.gz')) continue;
      const urlPath = `/${path.relative(root, full).split(path.sep).join('/')}`;
      const body = readFileSync(full);
      const file: WebFile = {
        type: TYPES[path.extname(name).toLowerCase()] ?? 'application/octet-stream',
        cacheControl: urlPath.startsWith('/assets/') ? IMMUTABLE : 'no-cache',
        etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"`,
        body,
      };
      if (existsSync(`${full}.br`)) file.br = readFileSync(`${full}.br`);
      if (existsSync(`${full}.gz`)) file.gzip = readFileSync(`${full}.gz`);
      files.set(urlPath, file);
    }
  };
  if (existsSync(path.join(root, 'index.html'))) walk(root);
  return files;
}

export const isServerPath = (url: string): boolean => SERVER_PREFIXES.some((p) => url === p || url.startsWith(`${p}/`));

/** The encoding to send for an Accept-Encoding header: `br`, `gzip` or identity (''). */
export function pickEncoding(acceptEncoding: string, file: Pick<WebFile, 'br' | 'gzip'>): '' | 'br' | 'gzip' {
  const accepted = new Map<string, number>();
  for (const part of acceptEncoding.split(',')) {
    const [name, ...params] = part.trim().toLowerCase().split(';');
    if (!name) continue;
    const q = params.map((p) => p.trim()).find((p) => p.startsWith('q='));
    accepted.set(name, q ? Number(q.slice(2)) || 0 : 1);
  }
  const ok = (name: string) => (accepted.get(name) ?? accepted.get('*') ?? 0) > 0;
  if (file.br && ok('br')) return 'br';
  if (file.gzip && ok('gzip')) return 'gzip';
  return '';
}

/**
 * Ends a HEAD answer. This uWS build aborts the process when `endWithoutBody` is given a length, so
 * the length goes in as a header and the call takes no argument.
 */
function endHead(res: HttpResponse, length: number): void {
  res.writeHeader('Content-Length', String(length));
  res.endWithoutBody();
}

/**
 * Registers GET and HEAD `/*` on the uWS app. Requests for the server's own prefixes are yielded to
 * the next handler (ultimate-express's router). Returns the number of files served (0: not built).
 */
export function serveWebClient(uwsApp: TemplatedApp, opts: WebClientOptions = {}): number {
  const files = loadWebFiles(opts.root ?? defaultWebRoot());
  const index = files.get('/index.html');
  if (!index) return 0;
  const securityHeaders: [string, string][] = [
    ['Content-Security-Policy', WEB_CSP],
    ['X-Content-Type-Options', 'nosniff'],
    ['X-Frame-Options', 'DENY'],
    ['Referrer-Policy', 'no-referrer'],
    ['Cross-Origin-Opener-Policy', 'same-origin'],
    ['Cross-Origin-Resource-Policy', 'same-origin'],
    ['Permissions-Policy', 'camera=(), geolocation=(), payment=(), usb=()'],
  ];
  if (opts.tls) securityHeaders.push(['Strict-Transport-Security', 'max-age=31536000; includeSubDomains']);

  const handler = (res: HttpResponse, req: HttpRequest) => {
    const url = req.getUrl();
    if (isServerPath(url)) {
      req.setYield(true);
      return;
    }
    const method = req.getMethod().toUpperCase();
    let file = files.get(url === '/' ? '/index.html' : url);
    // A path with a file extension (or under /assets) that is not in the build is a missing file;
    // anything else is a client route and gets the app shell.
    const lastSegment = url.slice(url.lastIndexOf('/') + 1);
    if (!file && !lastSegment.includes('.') && !url.startsWith('/assets/')) file = index;
    if (!file) {
      res.writeStatus('404 Not Found');
      for (const [k, v] of securityHeaders) res.writeHeader(k, v);
      res.writeHeader('Content-Type', 'text/plain; charset=utf-8');
      res.writeHeader('Cache-Control', 'no-store');
      if (method === 'HEAD') endHead(res, 10);
      else res.end('Not found\n');
      opts.onServed?.(method, 404);
      return;
    }
    if (file.cacheControl !== IMMUTABLE && req.getHeader('if-none-match') === file.etag) {
      res.writeStatus('304 Not Modified');
      res.writeHeader('ETag', file.etag);
      res.writeHeader('Cache-Control', file.cacheControl);
      res.endWithoutBody();
      opts.onServed?.(method, 304);
      return;
    }
    const encoding = pickEncoding(req.getHeader('accept-encoding'), file);
    const body = encoding === 'br' ? file.br! : encoding === 'gzip' ? file.gzip! : file.body;
    res.writeStatus('200 OK');
    for (const [k, v] of securityHeaders) res.writeHeader(k, v);
    res.writeHeader('Content-Type', file.type);
    res.writeHeader('Cache-Control', file.cacheControl);
    res.writeHeader('ETag', file.etag);
    if (file.br || file.gzip) res.writeHeader('Vary', 'Accept-Encoding');
    if (encoding) res.writeHeader('Content-Encoding', encoding);
    if (method === 'HEAD') endHead(res, body.length);
    else res.end(body);
    opts.onServed?.(method, 200);
  };
  uwsApp.get('/*', handler);
  uwsApp.head('/*', handler);
  return files.size;
}
