/**
 * Client filenames → a clean display name. Never used as a path (files are stored under random
 * names); cleaned so it is safe to show and to put back into Content-Disposition.
 *
 * `X-Filename` is percent-encoded UTF-8 (an HTTP header cannot carry `é` or `日本`: such bytes never
 * reach us intact), decoded by `headerFilename` BEFORE the cleaning, so what a decoded name contains
 * (`%2e%2e%2f` → `../`, `%00`) meets the same rules as a raw one. A value that is not valid
 * percent-encoded UTF-8 (`50%.png`) is taken literally, as before.
 */

const MAX_BYTES = 255;
// C0/C1 controls (NUL included) and bidi overrides/isolates (extension spoofing like "gnp.exe").
const UNSAFE = /[\p{Cc}\u200e\u200f\u202a-\u202e\u2066-\u2069]/gu;

function truncateUtf8(s: string, maxBytes: number): string {
  if (Buffer.byteLength(s, 'utf8') <= maxBytes) return s;
  const dot = s.lastIndexOf('.');
  const ext = dot > 0 && s.length - dot <= 16 ? s.slice(dot) : '';
  const budget = maxBytes - Buffer.byteLength(ext, 'utf8');
  let base = '';
  let used = 0;
  for (const ch of ext ? s.slice(0, dot) : s) {
    const n = Buffer.byteLength(ch, 'utf8');
    if (used + n > budget) break;
    base += ch;
    used += n;
  }
  return base + ext;
}

/** The raw `X-Filename` value → the client's name (percent-decoded when it is valid UTF-8). */
export function headerFilename(raw: string): string {
  if (!raw.includes('%')) return raw;
  try {
    return decodeURIComponent(raw);
  } catch {
    return raw;
  }
}

export function sanitizeFilename(raw: string): string {
  let s = raw.replace(UNSAFE, '');
  s = s.split(/[/\\]/).pop() ?? '';
  s = s.normalize('NFC').trim();
  s = s.replace(/^[.\s]+/, '');
  s = truncateUtf8(s, MAX_BYTES).trim();
  return s || 'file';
}

/** The lower-cased extension after the last dot, or '' when there is none. */
export function extensionOf(name: string): string {
  const dot = name.lastIndexOf('.');
  return dot > 0 ? name.slice(dot + 1).toLowerCase() : '';
}

/** `Content-Disposition: attachment` with an ASCII fallback and the exact name as RFC 5987 `filename*`. */
export function contentDisposition(name: string): string {
  const fallback = name.replace(/[^\x20-\x7e]|["\\%;]/g, '_');
  const encoded = encodeURIComponent(name).replace(/['()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  return `attachment; filename="${fallback}"; filename*=UTF-8''${encoded}`;
}
