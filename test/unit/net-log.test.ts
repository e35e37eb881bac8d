import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger, scrubErrorMessage } from '../../src/logger.js';
import { ipKey, normalizeIp } from '../../src/net/ip.js';

describe('client addresses', () => {
  it('maps IPv4-mapped IPv6 in any spelling to plain IPv4', () => {
    expect(normalizeIp('0000:0000:0000:0000:0000:ffff:7f00:0001')).toBe('127.0.0.1');
    expect(normalizeIp('::ffff:10.1.2.3')).toBe('10.1.2.3');
    expect(normalizeIp('::FFFF:7f00:2')).toBe('127.0.0.2');
    expect(normalizeIp('192.0.2.7')).toBe('192.0.2.7');
    expect(normalizeIp('0000:0000:0000:0000:0000:0000:0000:0001')).toBe('0:0:0:0:0:0:0:1');
  });

  it('keys IPv4 per address and IPv6 per /64', () => {
    expect(ipKey('0000:0000:0000:0000:0000:ffff:7f00:0001')).toBe('127.0.0.1');
    expect(ipKey('0000:0000:0000:0000:0000:ffff:7f00:0002')).toBe('127.0.0.2');
    expect(ipKey('2001:db8:1:2:aaaa::1')).toBe('2001:db8:1:2::/64');
    expect(ipKey('2001:db8:1:2:bbbb::9')).toBe(ipKey('2001:db8:1:2:aaaa::1'));
    expect(ipKey('2001:db8:1:3::1')).not.toBe(ipKey('2001:db8:1:2::1'));
  });
});

describe('log scrubbing', () => {
  it('removes SQL text with bound values from messages and stacks', () => {
    const e = new Error("insert into `users` (`password_hash`) values ('SECRETVALUE') - UNIQUE constraint failed");
    e.name = 'SqliteError';
    e.stack = `SqliteError: insert into \`users\` (\`a\`) values ('SECRET\nVALUE') - UNIQUE constraint failed\n    at x (y.js:1:1)`;
    const lines: string[] = [];
    const log = createLogger(
      'info',
      new Writable({
        write(c, _e, cb) {
          lines.push(String(c));
          cb();
        },
      }),
    );
    log.error({ err: e }, 'boom');
    expect(lines.join('')).not.toContain('SECRET');
    expect(lines.join('')).toContain('UNIQUE constraint failed');
    expect(scrubErrorMessage('error: update "sessions" set "token_hash" = $1 - deadlock detected')).toBe(
      'error: deadlock detected',
    );
  });
});
