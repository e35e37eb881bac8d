/**
 * WebSocket hijacking defences (SECURITY-TESTS.md): the `/ws` upgrade is refused, and no socket opens,
 * for every way of presenting a bad credential or a foreign Origin; the per-IP upgrade limit holds.
 */
import jwt from 'jsonwebtoken';
import { beforeAll, describe, expect, it } from 'vitest';
import { signAccessToken } from '../../src/auth/tokens.js';
import { Keyring } from '../../src/crypto/keyring.js';
import { nowMs } from '../../src/ids.js';
import { createUser, type TestUser } from '../support/factories.js';
import { startTestServer, useTestServer } from '../support/server.js';
import { GatewayClient, refusedStatus } from '../support/ws.js';

describe('gateway upgrade', () => {
  let alice: TestUser;
  // Refusal tests make many upgrades from 127.0.0.1: raise the per-IP limit (never switch it off).
  const server = useTestServer({ VOICECHAT_RATE_LIMIT_SCALE: '100' });
  beforeAll(async () => {
    alice = await createUser(server);
  });

  it('accepts the access_token subprotocol, selects `access_token` and never echoes the token', async () => {
    const { client, ready } = await GatewayClient.ready(server.wsUrl, alice.accessToken);
    expect(client.ws.protocol).toBe('access_token');
    expect(ready.data.user.id).toBe(alice.id);
    expect(JSON.stringify(server.logs)).not.toContain(alice.accessToken);
    client.close();
    await client.closed;
  });

  it('refuses a missing token with 401', async () => {
    expect((await refusedStatus(server.wsUrl, undefined)).status).toBe(401);
    expect((await refusedStatus(server.wsUrl, undefined, { protocols: ['access_token'] })).status).toBe(401);
  });

  it('refuses a garbage token with 401', async () => {
    const r = await refusedStatus(server.wsUrl, 'not-a-jwt');
    expect(r.status).toBe(401);
    expect(r.body.error.code).toBe('UNAUTHENTICATED');
  });

  it('refuses the token without the bare `access_token` protocol (it would have to be echoed)', async () => {
    const r = await refusedStatus(server.wsUrl, undefined, { protocols: [`access_token.${alice.accessToken}`] });
    expect(r.status).toBe(401);
  });

  it('refuses an expired token with 401 TOKEN_EXPIRED', async () => {
    const { id, key } = server.keyring.active('jwt');
    const expired = jwt.sign({ sid: alice.sessionId, exp: Math.floor(nowMs() / 1000) - 10 }, key, {
      algorithm: 'HS256',
      keyid: id,
      subject: alice.id,
    });
    const r = await refusedStatus(server.wsUrl, expired);
    expect(r.status).toBe(401);
    expect(r.body.error.code).toBe('TOKEN_EXPIRED');
  });

  it('refuses a token signed with another key, and alg none', async () => {
    const other = signAccessToken(Keyring.generate(), { userId: alice.id, sessionId: alice.sessionId }, 900);
    expect((await refusedStatus(server.wsUrl, other)).status).toBe(401);
    const { id } = server.keyring.active('jwt');
    const none = jwt.sign({ sid: alice.sessionId }, '', {
      algorithm: 'none',
      keyid: id,
      subject: alice.id,
      expiresIn: 900,
    });
    expect((await refusedStatus(server.wsUrl, none)).status).toBe(401);
  });

  it('refuses a token whose session was revoked', async () => {
    const bob = await createUser(server);
    await server.db('sessions').where({ family_id: bob.sessionId }).update({ revoked_at: nowMs() });
    server.ctx.sessions.forget(bob.sessionId);
    expect((await refusedStatus(server.wsUrl, bob.accessToken)).status).toBe(401);
  });

  it('refuses any token in the query string, even alongside a valid subprotocol', async () => {
    for (const query of [
      `?access_token=${alice.accessToken}`,
      `?token=${alice.accessToken}`,
      `?x=${encodeURIComponent(alice.accessToken)}`,
    ]) {
      const r = await refusedStatus(server.wsUrl, alice.accessToken, { query });
      expect(r.status).toBe(401);
    }
    // and a URL token alone (browser-style) too
    expect((await refusedStatus(server.wsUrl, undefined, { query: `?access_token=${alice.accessToken}` })).status).toBe(
      401,
    );
  });

  it('ignores a cookie: a cookie-only upgrade is 401', async () => {
    const r = await refusedStatus(server.wsUrl, undefined, {
      headers: { cookie: `access_token=${alice.accessToken}` },
    });
    expect(r.status).toBe(401);
  });

  it('refuses a foreign Origin with 403 and accepts the same origin and no Origin', async () => {
    expect((await refusedStatus(server.wsUrl, alice.accessToken, { origin: 'https://evil.example' })).status).toBe(403);
    expect((await refusedStatus(server.wsUrl, alice.accessToken, { origin: 'null' })).status).toBe(403);
    const same = await GatewayClient.connect(server.wsUrl, alice.accessToken, {
      origin: `http://127.0.0.1:${server.port}`,
    });
    same.ws.terminate();
    const native = await GatewayClient.connect(server.wsUrl, alice.accessToken);
    native.ws.terminate();
  });

  it('honours VOICECHAT_ALLOWED_ORIGINS', async () => {
    const s = await startTestServer({
      env: { VOICECHAT_ALLOWED_ORIGINS: 'https://chat.example.org', VOICECHAT_RATE_LIMIT_SCALE: '10' },
    });
    try {
      const u = await createUser(s);
      const ok = await GatewayClient.connect(s.wsUrl, u.accessToken, { origin: 'https://chat.example.org' });
      ok.ws.terminate();
      expect((await refusedStatus(s.wsUrl, u.accessToken, { origin: `http://127.0.0.1:${s.port}` })).status).toBe(403);
      expect((await refusedStatus(s.wsUrl, u.accessToken, { origin: 'https://chat.example.org.evil.io' })).status).toBe(
        403,
      );
    } finally {
      await s.stop();
    }
  });

  it('opens no socket for refused upgrades', async () => {
    const before = server.app.gateway.connectionCount;
    await refusedStatus(server.wsUrl, 'garbage');
    expect(server.app.gateway.connectionCount).toBe(before);
  });

  it('allows 10 upgrades per minute per IP, the 11th is 429 with Retry-After', async () => {
    const s = await startTestServer();
    try {
      const u = await createUser(s);
      const open: GatewayClient[] = [];
      for (let i = 0; i < 10; i++) open.push(await GatewayClient.connect(s.wsUrl, u.accessToken));
      const r = await refusedStatus(s.wsUrl, u.accessToken);
      expect(r.status).toBe(429);
      expect(r.body.error.code).toBe('RATE_LIMITED');
      for (const c of open) c.ws.terminate();
    } finally {
      await s.stop();
    }
  });
});
