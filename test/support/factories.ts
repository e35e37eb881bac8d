/**
 * Test factories that write straight to the database (for tests of features other than accounts):
 * users and sessions with a real signed access token. Account flows themselves are tested over HTTP.
 */
import argon2 from 'argon2';
import { signAccessToken } from '../../src/auth/tokens.js';
import { hashToken, randomToken } from '../../src/crypto/random.js';
import { newId, nowMs } from '../../src/ids.js';
import type { TestServer } from './server.js';

let counter = 0;
let cachedHash: Promise<string> | undefined;

/** The one password of test accounts (valid under the password rules). */
export const PASSWORD = 'Tr0ub4dor&3 horse';

/** A username unique across test processes and runs (valid under the username rules, ≤ 32). */
export const uniqueName = (prefix = 'u'): string =>
  `${prefix}_${process.pid % 10000}_${++counter}_${Math.random().toString(36).slice(2, 6)}`.slice(0, 32);

export interface TestUser {
  id: string;
  username: string;
  password: string;
  accessToken: string;
  refreshToken: string;
  sessionId: string;
  /** Authorization header for fetch. */
  headers: Record<string, string>;
}

export async function createUser(
  server: TestServer,
  opts: { username?: string; isAdmin?: boolean } = {},
): Promise<TestUser> {
  const username = opts.username ?? uniqueName('user');
  cachedHash ??= argon2.hash(PASSWORD, {
    type: argon2.argon2id,
    memoryCost: 19456,
    timeCost: 2,
    parallelism: 1,
  });
  const id = newId();
  const now = nowMs();
  await server.db('users').insert({
    id,
    username,
    password_hash: await cachedHash,
    is_admin: Boolean(opts.isAdmin),
    created_at: now,
    updated_at: now,
  });
  return { ...(await createSession(server, id)), id, username, password: PASSWORD };
}

export async function createSession(server: TestServer, userId: string) {
  const sessionId = newId();
  const refreshToken = randomToken();
  const now = nowMs();
  await server.db('sessions').insert({
    id: sessionId,
    family_id: sessionId,
    user_id: userId,
    token_hash: hashToken(refreshToken),
    created_at: now,
    last_used_at: now,
    expires_at: now + 30 * 86400_000,
  });
  const accessToken = signAccessToken(server.keyring, { userId, sessionId }, server.config.accessTokenTtlSeconds);
  return {
    sessionId,
    refreshToken,
    accessToken,
    headers: { authorization: `Bearer ${accessToken}`, 'content-type': 'application/json' },
  };
}

/** fetch + JSON with the user's token. */
export async function api(
  server: TestServer,
  method: string,
  path: string,
  opts: { user?: { headers: Record<string, string> }; body?: unknown; headers?: Record<string, string> } = {},
): Promise<{ status: number; body: any; headers: Headers }> {
  const res = await fetch(server.url + path, {
    method,
    headers: {
      ...(opts.body !== undefined ? { 'content-type': 'application/json' } : {}),
      ...(opts.user?.headers ?? {}),
      ...(opts.headers ?? {}),
    },
    body: opts.body === undefined ? undefined : typeof opts.body === 'string' ? opts.body : JSON.stringify(opts.body),
  });
  const text = await res.text();
  let body: unknown = text;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {}
  return { status: res.status, body, headers: res.headers };
}
