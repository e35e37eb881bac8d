/**
 * Issue 14 item 8: during a Redis outage the WebSocket upgrade limit fails closed like the login
 * limit (it used to fail open), and the outage is logged once — not once per request — and its end
 * once. The outage is a TCP proxy in front of the shared Redis that stops relaying (the shared server
 * is never touched).
 */
import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, createUser, type TestUser } from '../support/factories.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.js';
import { protocolsFor } from '../support/ws.js';

function upgrade(port: number, token: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get({
      host: '127.0.0.1',
      port,
      path: '/ws',
      headers: {
        connection: 'Upgrade',
        upgrade: 'websocket',
        'sec-websocket-version': '13',
        'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==',
        'sec-websocket-protocol': protocolsFor(token).join(', '),
      },
    });
    req.on('response', (res) => {
      let body = '';
      res.on('data', (d) => {
        body += d;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('upgrade', (res, socket) => {
      socket.destroy();
      resolve({ status: res.statusCode ?? 101, body: '' });
    });
    req.on('error', reject);
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('Redis outage', () => {
  let proxy: TcpProxy;
  let server: TestServer;
  let user: TestUser;
  const prefix = `vcout${process.pid}${Math.random().toString(36).slice(2, 8)}`;

  beforeAll(async () => {
    proxy = await startTcpProxy();
    proxy.setTarget(6379);
    server = await startTestServer({
      env: {
        REDIS_URL: `redis://127.0.0.1:${proxy.port}`,
        VOICECHAT_REDIS_PREFIX: prefix,
        VOICECHAT_RATE_LIMIT_SCALE: '100',
      },
    });
    user = await createUser(server);
  });

  afterAll(async () => {
    await server?.stop();
    await proxy?.close();
  });

  const count = (from: number, msg: string) =>
    server.logs.slice(from).filter((l) => (JSON.parse(l) as { msg: string }).msg.startsWith(msg)).length;
  const login = () =>
    api(server, 'POST', '/auth/login', { body: { username: user.username, password: user.password } });

  it('refuses upgrades (like logins) while Redis is down, logs the outage once, and recovers', async () => {
    expect((await upgrade(server.port, user.accessToken)).status).toBe(101);
    expect((await login()).status).toBe(200);
    const from = server.logs.length;

    proxy.setTarget(null);
    await sleep(300); // the client notices the cut connection
    for (let i = 0; i < 15; i++) {
      const ws = await upgrade(server.port, user.accessToken);
      expect(ws.status).toBe(429);
      expect(JSON.parse(ws.body).error.code).toBe('RATE_LIMITED');
    }
    for (let i = 0; i < 5; i++) expect((await login()).status).toBe(429);
    // One line for the outage of the rate-limit connection, however many requests were refused.
    expect(count(from, 'redis (rate limits) unavailable')).toBe(1);
    expect(count(from, 'rate-limit store unavailable')).toBe(0);
    // No component logs per request or per reconnect attempt.
    const errorLines = server.logs.slice(from).filter((l) => (JSON.parse(l) as { level: number }).level >= 40);
    expect(errorLines.length).toBeLessThanOrEqual(3); // rate limits, event bus, key notices: once each

    proxy.setTarget(6379);
    let status = 0;
    for (let i = 0; i < 100 && status !== 101; i++) {
      status = (await upgrade(server.port, user.accessToken)).status;
      if (status !== 101) await sleep(100);
    }
    expect(status).toBe(101);
    expect((await login()).status).toBe(200);
    expect(count(from, 'redis (rate limits) available again')).toBe(1);
    expect(count(from, 'redis (rate limits) unavailable')).toBe(1);
  }, 60_000);
});
