/** Pure gateway rules: subprotocol token, URL tokens, origins, proxy addresses, frame parsing, replay buffer. */
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.js';
import { idleTimeoutSeconds } from '../../src/gateway/Gateway.js';
import { parseFrame } from '../../src/gateway/protocol.js';
import { ReplayBuffer } from '../../src/gateway/replay.js';
import {
  originAllowed,
  refuseTokenInUrl,
  tokenFromProtocols,
  trustedProxyList,
  upgradeClientIp,
} from '../../src/gateway/upgrade.js';

const config = (env: Record<string, string> = {}) => loadConfig({ env: { VOICECHAT_DATA_DIR: '/tmp/x', ...env } });

describe('gateway upgrade rules', () => {
  it('takes the token only with the bare access_token protocol offered', () => {
    expect(tokenFromProtocols('access_token.abc.def.ghi, access_token')).toBe('abc.def.ghi');
    expect(tokenFromProtocols('access_token, access_token.abc')).toBe('abc');
    expect(tokenFromProtocols('access_token.abc')).toBeUndefined();
    expect(tokenFromProtocols('access_token')).toBeUndefined();
    expect(tokenFromProtocols('access_token.a, access_token.b, access_token')).toBeUndefined();
    expect(tokenFromProtocols('')).toBeUndefined();
  });

  it('refuses credentials in the query string', () => {
    expect(() => refuseTokenInUrl('')).not.toThrow();
    expect(() => refuseTokenInUrl('v=2&compress=false')).not.toThrow();
    for (const q of ['access_token=x', 'token=x', 'a=1&jwt=x', 'Authorization=x', 'x=eyJhbGciOi.eyJzdWIi.sig']) {
      expect(() => refuseTokenInUrl(q), q).toThrow(/URL/);
    }
  });

  it('checks Origin against the allowed list, then the public URL, then Host', () => {
    const none = config();
    expect(originAllowed(none, '', 'chat.example.org')).toBe(true);
    expect(originAllowed(none, 'https://chat.example.org', 'chat.example.org')).toBe(true);
    expect(originAllowed(none, 'https://evil.example', 'chat.example.org')).toBe(false);
    expect(originAllowed(none, 'null', 'chat.example.org')).toBe(false);
    const pub = config({ VOICECHAT_PUBLIC_URL: 'https://chat.example.org/app' });
    expect(originAllowed(pub, 'https://chat.example.org', 'internal:8080')).toBe(true);
    expect(originAllowed(pub, 'http://chat.example.org', 'chat.example.org')).toBe(false);
    const list = config({ VOICECHAT_ALLOWED_ORIGINS: 'https://a.example, https://b.example:8443' });
    expect(originAllowed(list, 'https://b.example:8443', 'x')).toBe(true);
    expect(originAllowed(list, 'https://b.example', 'b.example')).toBe(false);
  });

  it('believes X-Forwarded-For only from trusted proxies', () => {
    const direct = trustedProxyList(config().trustedProxies);
    expect(upgradeClientIp(direct, '203.0.113.9', '1.2.3.4')).toBe('203.0.113.9');
    const proxied = trustedProxyList(config({ VOICECHAT_TRUSTED_PROXIES: '10.0.0.0/8, loopback' }).trustedProxies);
    expect(upgradeClientIp(proxied, '10.1.2.3', '198.51.100.7')).toBe('198.51.100.7');
    expect(upgradeClientIp(proxied, '127.0.0.1', 'spoofed, 198.51.100.7, 10.9.9.9')).toBe('198.51.100.7');
    expect(upgradeClientIp(proxied, '203.0.113.9', '198.51.100.7')).toBe('203.0.113.9');
  });
});

describe('gateway frames', () => {
  it('parses valid ops and rejects the rest with a code', () => {
    expect(parseFrame('{"type":"ping"}')).toMatchObject({ ok: true, op: { type: 'ping' } });
    expect(parseFrame('{"type":"typing","request_id":"r","data":{"channel_id":"c"}}')).toMatchObject({ ok: true });
    expect(parseFrame('{')).toMatchObject({ ok: false, requestId: null, error: { code: 'INVALID_JSON' } });
    expect(parseFrame('{"type":"nope","request_id":"r"}')).toMatchObject({
      ok: false,
      requestId: 'r',
      error: { code: 'UNKNOWN_OP' },
    });
    expect(parseFrame('{"type":"typing","data":{"channel_id":1}}')).toMatchObject({
      error: { code: 'VALIDATION_FAILED' },
    });
    expect(parseFrame('{"type":"ping","extra":1}')).toMatchObject({ error: { code: 'VALIDATION_FAILED' } });
    expect(parseFrame('{"type":"resume","data":{"session_id":"s","seq":1e999}}')).toMatchObject({ ok: false });
    expect(parseFrame('{"type":"toString"}')).toMatchObject({ error: { code: 'UNKNOWN_OP' } });
    expect(parseFrame('null')).toMatchObject({ ok: false });
  });
});

describe('replay buffer', () => {
  it('keeps order, bounds entries and refuses ranges it no longer covers', () => {
    const b = new ReplayBuffer({ maxEntries: 3, maxBytes: 1e6, maxAgeMs: 1000 });
    for (let seq = 1; seq <= 5; seq++) b.push({ seq: seq * 2, topic: 't', frame: `f${seq}`, at: 0 });
    expect(b.size).toBe(3);
    expect([...b.range(5, 100)].map((e) => e.seq)).toEqual([6, 8, 10]);
    expect([...b.range(6, 8)].map((e) => e.seq)).toEqual([8]);
    expect(b.covers(4)).toBe(true); // everything after 4 is still there
    expect(b.covers(3)).toBe(false);
    b.prune(5000);
    expect(b.size).toBe(0);
    expect(b.covers(9)).toBe(false);
    expect(b.covers(10)).toBe(true);
  });
});

describe('idle timeout', () => {
  it('is one 4 s uWS tick more than two heartbeat intervals, within uWS bounds for every allowed heartbeat', () => {
    expect(idleTimeoutSeconds(4000)).toBe(12);
    expect(idleTimeoutSeconds(30_000)).toBe(64);
    expect(idleTimeoutSeconds(5000)).toBe(16);
    expect(idleTimeoutSeconds(478_000)).toBeLessThanOrEqual(960);
  });
});
