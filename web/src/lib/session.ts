/**
 * Tokens. The access token lives in memory only; the refresh token is kept in localStorage so a
 * reload stays signed in. Refreshes run under a Web Lock and always use the refresh token as stored
 * at that moment, so several tabs sharing it never present a rotated one (which the server would
 * treat as theft, `TOKEN_REUSED`). Signing out — or the server ending the session — removes the
 * stored token, which signs every other tab out at once (the `storage` event).
 */
import { signal } from '@preact/signals';
import type { TokenAnswer, User } from './types';

const REFRESH_KEY = 'voicechat.refresh_token';

export const accessToken = signal<string | null>(null);
export const currentUser = signal<User | null>(null);
export const authState = signal<'unknown' | 'signed-out' | 'signed-in'>('unknown');
/** Why the person was signed out, shown on the sign-in page. */
export const signOutReason = signal<string | null>(null);

let expiresAt = 0;
let refreshTimer: ReturnType<typeof setTimeout> | undefined;
let inflight: Promise<boolean> | undefined;
const signOutListeners = new Set<() => void>();

export const onSignOut = (fn: () => void) => signOutListeners.add(fn);
export const hasStoredSession = () => Boolean(localStorage.getItem(REFRESH_KEY));
export const accessExpiresInMs = () => expiresAt - Date.now();

export function acceptTokens(t: TokenAnswer): void {
  localStorage.setItem(REFRESH_KEY, t.refresh_token);
  accessToken.value = t.access_token;
  expiresAt = Date.now() + t.expires_in * 1000;
  if (t.user) currentUser.value = t.user;
  signOutReason.value = null;
  authState.value = 'signed-in';
  clearTimeout(refreshTimer);
  // Silent refresh a minute before expiry (or at 80% of a short lifetime).
  const lead = Math.min(60_000, t.expires_in * 200);
  refreshTimer = setTimeout(() => void refreshTokens().catch(() => {}), Math.max(1_000, t.expires_in * 1000 - lead));
}

/** Ends the session in this browser without asking the server (it already ended it, or cannot be reached). */
export function signOutLocally(reason: string | null = null): void {
  clearTimeout(refreshTimer);
  localStorage.removeItem(REFRESH_KEY);
  accessToken.value = null;
  currentUser.value = null;
  expiresAt = 0;
  if (reason) signOutReason.value = reason;
  if (authState.value !== 'signed-out') {
    authState.value = 'signed-out';
    for (const fn of signOutListeners) fn();
  }
}

async function withLock<T>(fn: () => Promise<T>): Promise<T> {
  if (navigator.locks) return navigator.locks.request('voicechat-refresh', fn) as Promise<T>;
  return fn();
}

/** Gets a new token pair; false when the session is gone (and this browser is then signed out). */
export function refreshTokens(): Promise<boolean> {
  inflight ??= withLock(async () => {
    const stored = localStorage.getItem(REFRESH_KEY);
    if (!stored) {
      signOutLocally();
      return false;
    }
    let res: Response;
    try {
      res = await fetch('/auth/refresh', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ refresh_token: stored }),
        credentials: 'omit',
        cache: 'no-store',
      });
    } catch {
      return false; // offline: keep the session, try again later
    }
    if (res.ok) {
      acceptTokens((await res.json()) as TokenAnswer);
      return true;
    }
    if (res.status === 401) {
      const body = await res.json().catch(() => undefined);
      signOutLocally(
        body?.error?.code === 'TOKEN_REUSED'
          ? 'Your session was ended for safety: a sign-in token was used twice. Please sign in again.'
          : 'Your session has ended. Please sign in again.',
      );
    }
    return false;
  }).finally(() => {
    inflight = undefined;
  });
  return inflight;
}

/** Asks the server to end this session, then forgets it here. */
export async function signOut(): Promise<void> {
  const refresh = localStorage.getItem(REFRESH_KEY);
  const token = accessToken.value;
  signOutLocally();
  try {
    await fetch('/auth/logout', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', ...(token ? { Authorization: `Bearer ${token}` } : {}) },
      body: JSON.stringify(refresh ? { refresh_token: refresh } : {}),
      credentials: 'omit',
    });
  } catch {
    // The stored token is gone either way; the server expires it.
  }
}

// Another tab signed out (or was told the session ended): follow at once.
addEventListener('storage', (e) => {
  if (e.key === REFRESH_KEY && !e.newValue && authState.value === 'signed-in')
    signOutLocally('You signed out in another tab.');
  if (e.key === null && authState.value === 'signed-in' && !hasStoredSession()) signOutLocally();
});
