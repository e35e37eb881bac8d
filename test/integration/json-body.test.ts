/** The JSON body reader: only JSON bodies are read, limits hold while reading, errors map cleanly. */
import http from 'node:http';
import { gzipSync } from 'node:zlib';
import { beforeAll, describe, expect, it } from 'vitest';
import { JSON_BODY_LIMIT } from '../../src/http/app.js';
import { api, createUser, type TestUser } from '../support/factories.js';
import { useTestServer } from '../support/server.js';

describe('JSON body reader', () => {
  let user: TestUser;
  const server = useTestServer();
  beforeAll(async () => {
    user = await createUser(server);
  });

  it('parses JSON with a charset parameter and refuses compressed or malformed bodies', async () => {
    const okRes = await api(server, 'POST', '/api/guilds', {
      user,
      body: JSON.stringify({ name: 'charset' }),
      headers: { 'content-type': 'application/json; charset=utf-8' },
    });
    expect(okRes.status).toBe(201);
    const gz = await fetch(`${server.url}/api/guilds`, {
      method: 'POST',
      headers: { ...user.headers, 'content-encoding': 'gzip' },
      body: gzipSync(JSON.stringify({ name: 'zipped' })),
    });
    expect(gz.status).toBe(415);
    const bad = await api(server, 'POST', '/api/guilds', { user, body: '{"name":' });
    expect(bad.status).toBe(400);
    const wrongType = await api(server, 'POST', '/api/guilds', {
      user,
      body: JSON.stringify({ name: 'plain' }),
      headers: { 'content-type': 'text/plain' },
    });
    expect(wrongType.status).toBe(400); // not read as JSON: the body is missing
    expect(await server.db('guilds').whereIn('name', ['zipped', 'plain'])).toEqual([]);
  });

  it('refuses an oversize body while reading (no Content-Length) and keeps the connection usable', async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const send = (chunks: Buffer[]) =>
      new Promise<number>((resolve, reject) => {
        const req = http.request(
          {
            agent,
            host: '127.0.0.1',
            port: server.port,
            method: 'POST',
            path: '/api/guilds',
            headers: { authorization: user.headers.authorization, 'content-type': 'application/json' },
          },
          (res) => {
            res.resume();
            res.on('end', () => resolve(res.statusCode ?? 0));
          },
        );
        req.on('error', reject);
        for (const c of chunks) req.write(c);
        req.end();
      });
    const big = Buffer.from(JSON.stringify({ name: 'x'.repeat(JSON_BODY_LIMIT) }));
    const chunks: Buffer[] = [];
    for (let i = 0; i < big.length; i += 64 * 1024) chunks.push(big.subarray(i, i + 64 * 1024));
    expect(await send(chunks)).toBe(413);
    expect(await send([Buffer.from(JSON.stringify({ name: 'after' }))])).toBe(201);
    agent.destroy();
  });
});
