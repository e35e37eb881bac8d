import { createHmac, generateKeyPairSync, randomBytes } from 'node:crypto';
import jwt from 'jsonwebtoken';
import { beforeAll, describe, expect, it } from 'vitest';
import { bearer, register, sidOf } from '../support/auth.js';
import { api } from '../support/factories.js';
import { useTestServer } from '../support/server.js';

const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
/** Builds an HS256-style token by hand, as an attacker would (libraries refuse some of these). */
function craft(header: Record<string, unknown>, payload: Record<string, unknown>, hmacKey?: Buffer | string): string {
  const head = `${b64(header)}.${b64(payload)}`;
  if (hmacKey === undefined) return `${head}.`;
  return `${head}.${createHmac('sha256', hmacKey).update(head).digest('base64url')}`;
}

describe('access-token attacks (all 401)', () => {
  let user: Awaited<ReturnType<typeof register>>;
  let victim: Awaited<ReturnType<typeof register>>;
  let kid: string;
  let key: Buffer;
  const now = () => Math.floor(Date.now() / 1000);
  const claims = () => ({ sub: user.id, sid: sidOf(user.access), iat: now(), exp: now() + 600 });

  const server = useTestServer();
  beforeAll(async () => {
    user = await register(server);
    victim = await register(server);
    ({ id: kid, key } = server.keyring.active('jwt'));
  });

  const me = (token: string) => api(server, 'GET', '/auth/me', bearer(token));
  const expect401 = async (token: string, code = 'UNAUTHENTICATED') => {
    const res = await me(token);
    expect(res.status).toBe(401);
    expect(res.body.error.code).toBe(code);
  };

  it('control: a token made with the right key, alg and claims works', async () => {
    expect((await me(craft({ alg: 'HS256', typ: 'JWT', kid }, claims(), key))).status).toBe(200);
    expect((await me(user.access)).status).toBe(200);
  });

  it('alg none (with and without a kid, any capitalisation)', async () => {
    for (const alg of ['none', 'None', 'NONE']) {
      await expect401(craft({ alg, typ: 'JWT', kid }, claims()));
      await expect401(craft({ alg, typ: 'JWT' }, claims()));
    }
    // alg none with a (valid) signature attached anyway.
    await expect401(`${craft({ alg: 'none', kid }, claims(), key).split('.').slice(0, 2).join('.')}.`);
  });

  it('HS256 signed with a wrong key, and the hex text of the right key', async () => {
    await expect401(jwt.sign(claims(), randomBytes(32), { algorithm: 'HS256', keyid: kid }));
    await expect401(craft({ alg: 'HS256', kid }, claims(), key.toString('hex')));
  });

  it('other algorithms with the right key: HS384, HS512', async () => {
    await expect401(jwt.sign(claims(), key, { algorithm: 'HS512', keyid: kid }));
    await expect401(jwt.sign(claims(), key, { algorithm: 'HS384', keyid: kid }));
  });

  it('RS256/HS256 confusion: HS256 signed with a public key PEM as secret; RS256 with a private key', async () => {
    const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const pem = publicKey.export({ type: 'spki', format: 'pem' }) as string;
    await expect401(craft({ alg: 'HS256', kid }, claims(), pem));
    await expect401(craft({ alg: 'HS256', kid: 'rsa-key' }, claims(), pem));
    await expect401(jwt.sign(claims(), privateKey, { algorithm: 'RS256', keyid: kid }));
    // A JWK-embedded key must not be trusted either.
    await expect401(craft({ alg: 'HS256', kid, jwk: { kty: 'oct', k: 'AAAA' } }, claims(), Buffer.from([0, 0, 0])));
  });

  it('expired → TOKEN_EXPIRED; missing exp → UNAUTHENTICATED', async () => {
    await expect401(
      craft({ alg: 'HS256', kid }, { ...claims(), iat: now() - 1000, exp: now() - 10 }, key),
      'TOKEN_EXPIRED',
    );
    const { exp: _exp, ...noExp } = claims();
    await expect401(craft({ alg: 'HS256', kid }, noExp, key));
    await expect401(craft({ alg: 'HS256', kid }, { ...claims(), exp: 'never' }, key));
  });

  it('tampered payload (sub switched to another user, sid switched) with the original signature', async () => {
    const [h, , s] = user.access.split('.');
    const payload = JSON.parse(Buffer.from(user.access.split('.')[1] as string, 'base64url').toString());
    await expect401(`${h}.${b64({ ...payload, sub: victim.id })}.${s}`);
    await expect401(`${h}.${b64({ ...payload, sid: sidOf(victim.access) })}.${s}`);
    await expect401(`${h}.${b64({ ...payload, exp: payload.exp + 86400 })}.${s}`);
    // A correctly signed token whose sid belongs to someone else's session.
    await expect401(craft({ alg: 'HS256', kid }, { ...claims(), sid: sidOf(victim.access) }, key));
  });

  it('unknown kid, missing kid, garbage', async () => {
    await expect401(craft({ alg: 'HS256', kid: 'jwt_deadbeef' }, claims(), key));
    await expect401(craft({ alg: 'HS256' }, claims(), key));
    await expect401(craft({ alg: 'HS256', kid: '../../etc/passwd' }, claims(), key));
    for (const t of ['garbage', 'a.b.c', '...', `${user.access}x`]) await expect401(t);
    expect((await api(server, 'GET', '/auth/me', { headers: { authorization: `Basic ${user.access}` } })).status).toBe(
      401,
    );
    expect((await api(server, 'GET', `/auth/me?access_token=${user.access}`)).status).toBe(401);
  });

  it('the token of a revoked session stops working at once', async () => {
    const u = await register(server);
    expect((await me(u.access)).status).toBe(200); // cached as live now
    expect((await api(server, 'POST', '/auth/logout', { ...bearer(u.access), body: {} })).status).toBe(204);
    await expect401(u.access);
    // Revoked behind the server's back (another node): the cache lasts at most 2 s.
    const v = await register(server);
    expect((await me(v.access)).status).toBe(200);
    await server
      .db('sessions')
      .where({ family_id: sidOf(v.access) })
      .update({ revoked_at: Date.now() });
    await expect.poll(async () => (await me(v.access)).status, { timeout: 3000, interval: 200 }).toBe(401);
  });
});
