import { describe, expect, it } from 'vitest';
import { contentDisposition, extensionOf, sanitizeFilename } from '../../src/uploads/filename.js';

describe('sanitizeFilename', () => {
  it.each([
    ['../../etc/passwd', 'passwd'],
    ['../../x.png', 'x.png'],
    ['..\\..\\x.txt', 'x.txt'],
    ['C:\\Windows\\system32\\evil.png', 'evil.png'],
    ['%2e%2e%2fetc%2fpasswd.txt', '%2e%2e%2fetc%2fpasswd.txt'],
    ['a\u0000b.txt', 'ab.txt'],
    ['x.png\u0000.html', 'x.png.html'],
    ['line\r\nbreak.txt', 'linebreak.txt'],
    ['...hidden.txt', 'hidden.txt'],
    ['.htaccess', 'htaccess'],
    ['  . .x.png', 'x.png'],
    ['report\u202egnp.exe', 'reportgnp.exe'],
    ['', 'file'],
    ['../..', 'file'],
    ['/', 'file'],
    ['e\u0301.txt', '\u00e9.txt'],
  ])('%j → %j', (input, expected) => {
    expect(sanitizeFilename(input)).toBe(expected);
  });

  it('keeps names within 255 UTF-8 bytes without splitting characters, keeping the extension', () => {
    const long = `${'é'.repeat(300)}.png`;
    const out = sanitizeFilename(long);
    expect(Buffer.byteLength(out, 'utf8')).toBeLessThanOrEqual(255);
    expect(out.endsWith('.png')).toBe(true);
    expect(out).not.toContain('\ufffd');
    expect(sanitizeFilename('a'.repeat(1000)).length).toBe(255);
  });

  it('never leaves a separator, control character or leading dot', () => {
    const nasty = ['..\\../x', '/\\/\\', '\u0001\u0002..\u0003/..', '.\u0000./.txt', '%00../x'];
    for (const n of nasty) {
      const out = sanitizeFilename(n);
      expect(out).not.toMatch(/[/\\]|\p{Cc}/u);
      expect(out.startsWith('.')).toBe(false);
    }
  });

  it('extracts extensions and builds an RFC 5987 Content-Disposition', () => {
    expect(extensionOf('a.PNG')).toBe('png');
    expect(extensionOf('noext')).toBe('');
    expect(extensionOf('.png')).toBe('');
    expect(contentDisposition('naïve "x";.txt')).toBe(
      `attachment; filename="na_ve _x__.txt"; filename*=UTF-8''na%C3%AFve%20%22x%22%3B.txt`,
    );
  });
});
