import { networkInterfaces } from 'node:os';
import { describe, expect, it } from 'vitest';
import { api } from '../support/factories.js';
import { useTestServer } from '../support/server.js';

describe('HTTP basics', () => {
  const server = useTestServer();

  it('answers /health with security headers', async () => {
    const res = await api(server, 'GET', '/health');
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ status: 'ok' });
    expect(res.headers.get('content-security-policy')).toContain("default-src 'none'");
    expect(res.headers.get('x-frame-options')).toBe('DENY');
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(res.headers.get('referrer-policy')).toBe('no-referrer');
    expect(res.headers.get('strict-transport-security')).toBeNull(); // plain HTTP: no HSTS
    expect(res.headers.get('set-cookie')).toBeNull();
  });

  it('answers /ready when migrations are current', async () => {
    const res = await api(server, 'GET', '/ready');
    expect(res.status).toBe(200);
  });

  it('maps unknown routes, malformed JSON and oversize bodies to the error model', async () => {
    // Unknown GETs outside the API are the web client's routes (index.html); the API's stay JSON.
    const missing = await api(server, 'GET', '/api/no/such/route');
    expect(missing.status).toBe(404);
    expect(missing.body).toEqual({ error: { code: 'NOT_FOUND', message: expect.any(String) } });
    const bad = await api(server, 'POST', '/no/such/route', {
      body: '{"a":',
      headers: { 'content-type': 'application/json' },
    });
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe('VALIDATION_FAILED');
    const big = await api(server, 'POST', '/no/such/route', { body: JSON.stringify({ a: 'x'.repeat(1024 * 1024) }) });
    expect(big.status).toBe(413);
    expect(big.body.error.code).toBe('PAYLOAD_TOO_LARGE');
  });

  it('serves /metrics to loopback', async () => {
    const res = await fetch(`${server.url}/metrics`);
    expect(res.status).toBe(200);
    expect(await res.text()).toContain('voicechat_http_requests_total');
  });
});

describe('/metrics over IPv6', () => {
  const server = useTestServer({ VOICECHAT_HOST: '::' });
  const metrics = (host: string) => fetch(`http://${host}:${server.port}/metrics`);

  it('serves IPv6 and IPv4 loopback peers on a dual-stack socket', async () => {
    const v6 = await metrics('[::1]');
    expect(v6.status).toBe(200);
    expect(await v6.text()).toContain('voicechat_http_requests_total');
    expect((await metrics('127.0.0.1')).status).toBe(200);
  });

  // A non-loopback address of this machine: the peer is then that address, not loopback.
  const external = Object.values(networkInterfaces())
    .flat()
    .find((a) => a && !a.internal && a.family === 'IPv6' && !a.address.startsWith('fe80'));
  it.runIf(external)('answers 404 to a non-loopback peer without the token', async () => {
    const res = await metrics(`[${external?.address}]`);
    expect(res.status).toBe(404);
  });
});
