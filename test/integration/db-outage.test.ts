/**
 * Issue 14 item 8: a database outage answers 503 SERVICE_UNAVAILABLE with Retry-After — on login,
 * REST and the WebSocket upgrade — not 500 INTERNAL, is logged once rather than per request, and the
 * server recovers by itself. The outage is a TCP proxy in front of the shared Postgres that stops
 * relaying (the shared server is never touched), so this suite runs against Postgres whatever
 * VOICECHAT_TEST_DB says. The mapping of every connection-level error shape is checked in isolation.
 */
import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isDbConnectionError, translateDbError } from '../../src/db/errors.js';
import { toAppError } from '../../src/errors.js';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { api, createSession, createUser, type TestUser } from '../support/factories.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.js';
import { protocolsFor } from '../support/ws.js';

/** A raw upgrade request: its status, Retry-After and body (a refused upgrade is a plain HTTP answer). */
function upgrade(port: number, token: string): Promise<{ status: number; retryAfter?: string; body: string }> {
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
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          body,
          ...(res.headers['retry-after'] ? { retryAfter: String(res.headers['retry-after']) } : {}),
        }),
      );
    });
    req.on('upgrade', (res, socket) => {
      socket.destroy();
      resolve({ status: res.statusCode ?? 101, body: '' });
    });
    req.on('error', reject);
  });
}

describe('database outage → 503', () => {
  let database: TestDatabase;
  let proxy: TcpProxy;
  let server: TestServer;
  let user: TestUser;

  beforeAll(async () => {
    database = await createTestDatabase({ dialect: 'pg' });
    proxy = await startTcpProxy();
    proxy.setTarget(5432);
    const viaProxy = database.databaseUrl.replace(/127\.0\.0\.1:5432/, `127.0.0.1:${proxy.port}`);
    expect(viaProxy).not.toBe(database.databaseUrl);
    server = await startTestServer({ database, env: { VOICECHAT_DATABASE_URL: viaProxy } });
    user = await createUser(server); // through the test's own direct connection
  });

  afterAll(async () => {
    await server?.stop();
    await proxy?.close();
    await database?.drop();
  });

  const login = () =>
    api(server, 'POST', '/auth/login', { body: { username: user.username, password: user.password } });

  it('answers 503 with Retry-After on login, REST and the upgrade while the database is unreachable', async () => {
    expect((await login()).status).toBe(200);
    expect((await api(server, 'GET', '/api/guilds', { user })).status).toBe(200);
    expect((await upgrade(server.port, user.accessToken)).status).toBe(101);
    const logsBefore = server.logs.length;

    proxy.setTarget(null); // every pooled connection is cut, new ones are refused
    for (const r of [await login(), await api(server, 'GET', '/api/guilds', { user }), await login()]) {
      expect(r.status).toBe(503);
      expect(r.body.error.code).toBe('SERVICE_UNAVAILABLE');
      expect(Number(r.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    }
    const post = await api(server, 'POST', '/api/guilds', { user, body: { name: 'during the outage' } });
    expect(post.status).toBe(503);
    // A session the server has not seen yet (a cached one needs no database: that upgrade succeeds).
    const fresh = await createSession(server, user.id);
    const ws = await upgrade(server.port, fresh.accessToken);
    expect(ws.status).toBe(503);
    expect(JSON.parse(ws.body).error.code).toBe('SERVICE_UNAVAILABLE');
    expect(Number(ws.retryAfter)).toBeGreaterThanOrEqual(1);
    // Logged once for the outage, not once per request; never as an unhandled (500) error.
    const lines = server.logs.slice(logsBefore).map((l) => JSON.parse(l) as { msg: string });
    expect(lines.filter((l) => l.msg === 'database unavailable: answering 503')).toHaveLength(1);
    expect(lines.filter((l) => l.msg === 'unhandled error')).toEqual([]);
    // /ready says so too.
    expect((await fetch(`${server.url}/ready`)).status).toBe(503);

    proxy.setTarget(5432); // back: the pool reconnects by itself
    let status = 0;
    for (let i = 0; i < 50 && status !== 200; i++) {
      status = (await login()).status;
      if (status !== 200) await new Promise((r) => setTimeout(r, 100));
    }
    expect(status).toBe(200);
    expect((await api(server, 'GET', '/api/guilds', { user })).status).toBe(200);
    expect((await upgrade(server.port, user.accessToken)).status).toBe(101);
  });

  it('maps every connection-level error shape to 503, and nothing else', () => {
    const unavailable = [
      Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' }),
      Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }),
      Object.assign(new Error('connect ETIMEDOUT'), { code: 'ETIMEDOUT' }),
      new Error('Connection terminated unexpectedly'),
      new Error('select * from "users" where "id" = $1 - Connection terminated unexpectedly'),
      new Error('Connection terminated due to connection timeout'),
      new Error('Client has encountered a connection error and is not queryable'),
      Object.assign(new Error('Knex: Timeout acquiring a connection.'), { name: 'KnexTimeoutError' }),
      Object.assign(new Error('terminating connection due to administrator command'), { code: '57P01' }),
      Object.assign(new Error('the database system is starting up'), { code: '57P03' }),
      Object.assign(new Error('sorry, too many clients already'), { code: '53300' }),
      Object.assign(new Error('connection failure'), { code: '08006' }),
      Object.assign(new Error('unable to open database file'), { code: 'SQLITE_CANTOPEN' }),
    ];
    for (const e of unavailable) {
      expect(isDbConnectionError(e), e.message).toBe(true);
      const app = toAppError(e);
      expect({ m: e.message, code: app.code, status: app.status }).toEqual({
        m: e.message,
        code: 'SERVICE_UNAVAILABLE',
        status: 503,
      });
      expect(app.headers?.['Retry-After']).toMatch(/^\d+$/);
    }
    // Statement errors keep their meaning; an unknown error stays INTERNAL.
    expect(translateDbError(Object.assign(new Error('dup'), { code: '23505' }))?.code).toBe('CONFLICT');
    expect(isDbConnectionError(Object.assign(new Error('syntax'), { code: '42601' }))).toBe(false);
    expect(toAppError(new Error('Connection terminated by the user, said the message')).code).toBe('INTERNAL');
    expect(toAppError(new TypeError('x is undefined')).code).toBe('INTERNAL');
  });
});
