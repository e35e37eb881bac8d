/** HTTP helpers for account tests: register and log in through the real /auth API. */
import { api, PASSWORD, uniqueName } from './factories.js';
import type { TestServer } from './server.js';

export { PASSWORD, uniqueName };

export interface Registered {
  id: string;
  username: string;
  password: string;
  access: string;
  refresh: string;
  headers: Record<string, string>;
}

export async function register(
  server: TestServer,
  opts: { username?: string; password?: string; body?: Record<string, unknown>; headers?: Record<string, string> } = {},
): Promise<Registered> {
  const username = opts.username ?? uniqueName();
  const password = opts.password ?? PASSWORD;
  const res = await api(server, 'POST', '/auth/register', {
    body: { username, password, ...opts.body },
    ...(opts.headers ? { headers: opts.headers } : {}),
  });
  if (res.status !== 201) throw new Error(`register failed: ${res.status} ${JSON.stringify(res.body)}`);
  return {
    id: res.body.user.id,
    username,
    password,
    access: res.body.access_token,
    refresh: res.body.refresh_token,
    headers: { authorization: `Bearer ${res.body.access_token}` },
  };
}

export async function login(
  server: TestServer,
  body: { username: string; password: string; mfa_code?: string },
  headers?: Record<string, string>,
) {
  return api(server, 'POST', '/auth/login', { body, ...(headers ? { headers } : {}) });
}

export const bearer = (token: string) => ({ headers: { authorization: `Bearer ${token}` } });

/** The `sid` claim of an access token (the session family id), read without verification. */
export const sidOf = (accessToken: string): string =>
  JSON.parse(Buffer.from(accessToken.split('.')[1] ?? '', 'base64url').toString()).sid;
